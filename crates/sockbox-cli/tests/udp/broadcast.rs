//! Broadcast across network namespaces: A, B and C on one bridge; plus the
//! system errors that need a namespace (no route, privileged port).

use std::time::{Duration, Instant};

use super::{Server, stdout_of};
use crate::util::netns::{Netns, bridge};
use crate::util::require_root;

/// Hub with a bridge; A, B, C on it at 10.77.9.1-3/24.
fn three_hosts() -> (Netns, Netns, Netns, Netns) {
    let hub = Netns::new("h");
    let a = Netns::new("a");
    let b = Netns::new("b");
    let c = Netns::new("c");
    bridge(
        &hub,
        &[
            (&a, "eth0", "10.77.9.1/24"),
            (&b, "eth0", "10.77.9.2/24"),
            (&c, "eth0", "10.77.9.3/24"),
        ],
    );
    (hub, a, b, c)
}

fn responder(ns: &Netns, text: &str) -> Server {
    let mut cmd = ns.sockbox();
    cmd.args(["udp", "listen", "9999", "--reply", text]);
    let s = Server::spawn(cmd);
    s.ready();
    s
}

#[test]
fn broadcast_collects_replies_from_two_responders() {
    if !require_root("broadcast_collects_replies_from_two_responders") {
        return;
    }
    let (_hub, a, b, c) = three_hosts();
    let _rb = responder(&b, "I am B");
    let _rc = responder(&c, "I am C");
    let sorted_replies = |args: &[&str]| {
        let out = a.sockbox().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let mut v: Vec<(String, String)> = stdout_of(&out)
            .lines()
            .map(|l| {
                let j: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    j["from"].as_str().unwrap().to_owned(),
                    j["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let want = vec![
        ("10.77.9.2:9999".to_owned(), "I am B".to_owned()),
        ("10.77.9.3:9999".to_owned(), "I am C".to_owned()),
    ];
    // `broadcast`: every interface's directed broadcast, collected for a time.
    let t = Instant::now();
    let got = sorted_replies(&[
        "udp",
        "send",
        "broadcast",
        "9999",
        "WHO",
        "--wait",
        "1s",
        "--json",
    ]);
    assert_eq!(got, want);
    assert!(t.elapsed() >= Duration::from_secs(1));
    // The directed broadcast with --broadcast, bounded by a count: returns
    // as soon as both replied, long before the wait.
    let t = Instant::now();
    let got = sorted_replies(&[
        "udp",
        "send",
        "10.77.9.255",
        "9999",
        "WHO",
        "--broadcast",
        "-n",
        "2",
        "-w",
        "30s",
        "--json",
    ]);
    assert_eq!(got, want);
    assert!(t.elapsed() < Duration::from_secs(15));
    // The limited broadcast leaves by the default route: without one it is
    // unreachable, and the error says what to use instead.
    let out = a
        .sockbox()
        .args(["udp", "send", "255.255.255.255", "9999", "WHO"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`broadcast`"));
    // With a default route, and without --broadcast: SO_BROADCAST is set
    // anyway, so the PHP notes' "Permission denied" never happens.
    a.ip(&["route", "add", "default", "dev", "eth0"]);
    let got = sorted_replies(&[
        "udp",
        "send",
        "255.255.255.255",
        "9999",
        "WHO",
        "-w",
        "1s",
        "--json",
    ]);
    assert_eq!(got, want);
}

#[test]
fn unreachable_network_is_reported_with_the_fix() {
    if !require_root("unreachable_network_is_reported_with_the_fix") {
        return;
    }
    let lonely = Netns::new("u");
    let out = lonely
        .sockbox()
        .args(["udp", "send", "10.99.0.1", "9", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("unreachable") && err.contains("ip route"),
        "{err}"
    );
    let out = lonely
        .sockbox()
        .args(["udp", "send", "broadcast", "9", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no interface that is up has an IPv4 broadcast"),
        "{err}"
    );
}

#[test]
fn low_port_without_privilege_names_the_fix() {
    if !require_root("low_port_without_privilege_names_the_fix") {
        return;
    }
    // Drop to nobody with no capabilities, inside a namespace where ports
    // below 1024 are privileged whatever the host says.
    let ns = Netns::new("p");
    ns.sh("sysctl -qw net.ipv4.ip_unprivileged_port_start=1024");
    let out = ns
        .command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(assert_cmd::cargo::cargo_bin("sockbox"))
        .args(["udp", "listen", "80"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("Permission denied") && err.contains("cap_net_bind_service"),
        "{err}"
    );
}
