//! `udp send --iface NAME`: out of that interface only (SO_BINDTODEVICE and
//! its address), `broadcast` restricted to its broadcast address, and clear
//! errors for an interface that is missing or down.

use super::{Server, stdout_of};
use crate::util::netns::{Netns, link};
use crate::util::require_root;

/// A with eth0 (10.77.6.1/24, to B at .2) and eth1 (10.77.7.1/24, to C at .2).
fn two_links() -> (Netns, Netns, Netns) {
    let a = Netns::new("a");
    let b = Netns::new("b");
    let c = Netns::new("c");
    link(&a, "eth0", "10.77.6.1/24", &b, "eth0", "10.77.6.2/24");
    link(&a, "eth1", "10.77.7.1/24", &c, "eth0", "10.77.7.2/24");
    (a, b, c)
}

fn responder(ns: &Netns, text: &str) -> Server {
    let mut cmd = ns.sockbox();
    cmd.args(["udp", "listen", "9999", "--reply", text]);
    let s = Server::spawn(cmd);
    s.ready();
    s
}

#[test]
fn iface_restricts_sending_and_broadcast_to_one_interface() {
    if !require_root("iface_restricts_sending_and_broadcast_to_one_interface") {
        return;
    }
    let (a, b, c) = two_links();
    let _rb = responder(&b, "I am B");
    let _rc = responder(&c, "I am C");
    let run = |args: &[&str]| {
        a.sockbox()
            .args(["udp", "send"])
            .args(args)
            .output()
            .unwrap()
    };
    // Without --iface `broadcast` reaches both links; with it, only eth1's.
    let out = run(&["broadcast", "9999", "WHO", "-w", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout_of(&out).lines().count(), 2, "{out:?}");
    let out = run(&[
        "broadcast",
        "9999",
        "WHO",
        "-w",
        "1s",
        "--json",
        "--iface",
        "eth1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout_of(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"from\":\"10.77.7.2:9999\""), "{text}");
    // Unicast out of the right interface is answered...
    let out = run(&["10.77.7.2", "9999", "hi", "-n", "1", "-I", "eth1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout_of(&out).contains("I am C"), "{out:?}");
    // ...and out of the wrong one it never reaches C, which the routing
    // table alone would have picked (eth1): no answer, exit 1.
    let out = run(&[
        "10.77.7.2",
        "9999",
        "hi",
        "-n",
        "1",
        "-w",
        "1s",
        "-I",
        "eth0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout_of(&out), "", "{out:?}");
    // A missing interface and a down one are named, with the fix.
    let out = run(&["10.77.7.2", "9999", "hi", "--iface", "sbxnope0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sbxnope0") && err.contains("sockbox ifaces"),
        "{err}"
    );
    a.ip(&["link", "set", "eth1", "down"]);
    for addr in ["10.77.7.2", "broadcast"] {
        let out = run(&[addr, "9999", "hi", "--iface", "eth1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {err}");
        assert!(
            err.contains("interface eth1 is down") && err.contains("ip link set eth1 up"),
            "{addr}: {err}"
        );
    }
}
