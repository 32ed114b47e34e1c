//! Answers leave from the address the datagram was sent to: a listener on
//! every address of a host with two addresses answers a client that wrote
//! to the second from the second (the kernel alone would pick the first),
//! and a broadcast from the receiving interface's address.

use super::{Server, stdout_of};
use crate::util::netns::{Netns, link};
use crate::util::require_root;

/// Server at 10.77.5.1/24 and 10.77.5.2/24 on one link; client 10.77.5.9.
fn two_address_host() -> (Netns, Netns) {
    let srv = Netns::new("s");
    let cli = Netns::new("c");
    link(&srv, "eth0", "10.77.5.1/24", &cli, "eth0", "10.77.5.9/24");
    srv.ip(&["addr", "add", "10.77.5.2/24", "dev", "eth0"]);
    (srv, cli)
}

/// Ask `addr` from the client; the source of the one reply (what a client
/// with a socket connected to `addr` would insist on).
fn reply_source(cli: &Netns, addr: &str, extra: &[&str]) -> String {
    let out = cli
        .sockbox()
        .args([
            "udp", "send", addr, "9999", "who?", "-n", "1", "-w", "10s", "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{addr}: {out:?}");
    let text = stdout_of(&out);
    let first = text.lines().next().unwrap_or_default();
    let j: serde_json::Value = serde_json::from_str(first).unwrap();
    j["from"].as_str().unwrap().to_owned()
}

#[test]
fn wildcard_listener_answers_from_the_address_written_to() {
    if !require_root("wildcard_listener_answers_from_the_address_written_to") {
        return;
    }
    let (srv, cli) = two_address_host();
    for (bind, answer) in [
        (Some("0.0.0.0"), ["--reply", "hi"]),
        (None, ["--reply-exec", "cat"]),
        (Some("0.0.0.0"), ["--echo", "--json"]),
    ] {
        let mut cmd = srv.sockbox();
        cmd.args(["udp", "listen"])
            .args(bind)
            .arg("9999")
            .args(answer);
        let s = Server::spawn(cmd);
        s.ready();
        assert_eq!(
            reply_source(&cli, "10.77.5.2", &[]),
            "10.77.5.2:9999",
            "{answer:?}"
        );
        assert_eq!(
            reply_source(&cli, "10.77.5.1", &[]),
            "10.77.5.1:9999",
            "{answer:?}"
        );
        // A broadcast is answered from the receiving interface's address.
        assert_eq!(
            reply_source(&cli, "10.77.5.255", &["--broadcast"]),
            "10.77.5.1:9999",
            "{answer:?}"
        );
        drop(s);
    }
}
