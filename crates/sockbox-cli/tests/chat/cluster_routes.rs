//! `--cluster` over a NATS cluster: nodes on different NATS servers share a
//! room through the servers' routes, and a node whose server dies moves to
//! another server of its `--cluster` list and rejoins.

use super::cluster::{Nats, free_port};
use super::cluster_access::bytes_cross;
use super::*;

/// A `nats-server` on `port` (no JetStream: the broker needs none), routed
/// to the cluster port `other` and listening for routes on `own`.
fn routed(test: &str, port: u16, own: u16, other: u16) -> Option<Nats> {
    let args = [
        format!("--cluster=nats://127.0.0.1:{own}"),
        format!("--routes=nats://127.0.0.1:{other}"),
        "--cluster_name=sockbox".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nats::start_on(test, port, false, &args)
}

/// A broker node of room `routes` on these NATS URLs, once it has joined.
fn broker(urls: &str, name: &str) -> Server {
    let mut cmd = sockbox_std();
    cmd.args(["broker", "127.0.0.1", "0", "--cluster", urls])
        .args(["--heartbeat", "250ms", "--dead-after", "1500ms"])
        .args([
            "--max-per-addr",
            "0",
            "--room",
            "routes",
            "--node-name",
            name,
        ]);
    let srv = Server::spawn(cmd, false);
    let joined = || {
        srv.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("joined room"))
    };
    assert!(
        wait_until(10.0, joined),
        "node {name} did not join: {:?}",
        srv.stderr.lock().unwrap()
    );
    srv
}

#[test]
fn cluster_over_two_routed_nats_servers_fails_over_when_one_dies() {
    let (p1, p2, c1, c2) = (free_port(), free_port(), free_port(), free_port());
    let Some(mut s2) = routed("cluster_routes", p2, c2, c1) else {
        return;
    };
    let url = |p: u16| format!("nats://127.0.0.1:{p}");
    // n2 lists both servers; only s2 runs yet, so n2 is on s2.
    let n2 = broker(&format!("{},{}", url(p2), url(p1)), "n2");
    let Some(_s1) = routed("cluster_routes", p1, c1, c2) else {
        return;
    };
    let n1 = broker(&url(p1), "n1");
    let mut a = Client::connect(n1.addr);
    let mut b = Client::connect(n2.addr);
    // n1 on s1 to n2 on s2: through the route between the servers.
    bytes_cross(&mut a, &mut b);
    s2.down();
    let log = || n2.stderr.lock().unwrap().join("\n");
    assert!(
        wait_until(20.0, || log().contains("the room is whole again")),
        "n2 did not move to s1: {}",
        log()
    );
    assert!(log().contains("the room is split"), "{}", log());
    bytes_cross(&mut a, &mut b);
}
