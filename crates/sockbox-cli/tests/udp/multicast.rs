//! Multicast across network namespaces: A linked to B by eth0 and to C by
//! eth1, IPv4 and IPv6, any-source and source-specific.

use super::{Server, stdout_of};
use crate::util::netns::{Netns, link};
use crate::util::require_root;

/// A with two links: eth0 to B (10.77.1.0/24, fd77:1::/64) and eth1 to C
/// (10.77.2.0/24, fd77:2::/64). No routes besides the connected ones, so
/// multicast leaves by the interface sockbox names or not at all.
fn star() -> (Netns, Netns, Netns) {
    let a = Netns::new("a");
    let b = Netns::new("b");
    let c = Netns::new("c");
    for ns in [&a, &b, &c] {
        ns.sh("sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0");
    }
    link(&a, "eth0", "10.77.1.1/24", &b, "eth0", "10.77.1.2/24");
    link(&a, "eth1", "10.77.2.1/24", &c, "eth0", "10.77.2.2/24");
    a.ip(&["addr", "add", "fd77:1::1/64", "dev", "eth0", "nodad"]);
    b.ip(&["addr", "add", "fd77:1::2/64", "dev", "eth0", "nodad"]);
    a.ip(&["addr", "add", "fd77:2::1/64", "dev", "eth1", "nodad"]);
    c.ip(&["addr", "add", "fd77:2::2/64", "dev", "eth0", "nodad"]);
    (a, b, c)
}

fn mcast_listener(ns: &Netns, args: &[&str]) -> Server {
    let mut cmd = ns.sockbox();
    cmd.args(["mcast", "listen"]).args(args);
    let s = Server::spawn(cmd);
    s.ready();
    s
}

fn mcast_send(ns: &Netns, args: &[&str]) -> std::process::Output {
    ns.sockbox()
        .args(["mcast", "send"])
        .args(args)
        .output()
        .unwrap()
}

fn assert_ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn multicast_v4_leaves_by_the_chosen_interface() {
    if !require_root("multicast_v4_leaves_by_the_chosen_interface") {
        return;
    }
    let (a, b, c) = star();
    let lb = mcast_listener(&b, &["239.1.2.3", "5000", "--iface", "eth0"]);
    let lc = mcast_listener(&c, &["239.1.2.3", "5000", "--iface", "10.77.2.2"]);
    // No multicast route in A: without --iface the kernel has nowhere to send.
    let out = mcast_send(&a, &["239.1.2.3", "5000", "lost"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--iface"));
    assert_ok(&mcast_send(
        &a,
        &["239.1.2.3", "5000", "to B", "--iface", "eth0"],
    ));
    assert_ok(&mcast_send(
        &a,
        &[
            "239.1.2.3",
            "5000",
            "to C",
            "--iface",
            "10.77.2.1",
            "--ttl",
            "4",
        ],
    ));
    let l = lb.line(5).unwrap();
    assert!(l.starts_with("10.77.1.1:") && l.ends_with("  to B"), "{l}");
    let l = lc.line(5).unwrap();
    assert!(l.starts_with("10.77.2.1:") && l.ends_with("  to C"), "{l}");
    // Neither got the other's datagram.
    assert!(lb.line(1).is_none());
    assert!(lc.line(0).is_none());
}

#[test]
fn multicast_v6_on_the_chosen_interface_and_replies_come_back() {
    if !require_root("multicast_v6_on_the_chosen_interface_and_replies_come_back") {
        return;
    }
    let (a, b, c) = star();
    let lb = mcast_listener(
        &b,
        &["ff02::1:3", "5000", "--iface", "eth0", "--reply", "B here"],
    );
    let lc = mcast_listener(
        &c,
        &["ff02::1:3", "5000", "--iface", "eth0", "--reply", "C here"],
    );
    // Link scope, out of eth0 only: only B hears it, and its unicast answer
    // (to A's link-local address) is collected.
    let out = mcast_send(
        &a,
        &[
            "ff02::1:3",
            "5000",
            "who?",
            "--iface",
            "eth0",
            "-w",
            "1s",
            "--json",
        ],
    );
    assert_ok(&out);
    let replies: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["text"], "B here");
    assert!(
        replies[0]["from"].as_str().unwrap().starts_with("[fe80::"),
        "{replies:?}"
    );
    let l = lb.line(5).unwrap();
    assert!(l.starts_with("[fe80::") && l.ends_with("  who?"), "{l}");
    assert!(lc.line(1).is_none());
    // The %scope form names the interface too.
    assert_ok(&mcast_send(&a, &["ff02::1:3%eth1", "5000", "to C"]));
    assert!(lc.line(5).unwrap().ends_with("  to C"));
    assert!(lb.line(1).is_none());
}

#[test]
fn source_specific_multicast_v4_and_v6() {
    if !require_root("source_specific_multicast_v4_and_v6") {
        return;
    }
    let (a, b, _c) = star();
    let good4 = mcast_listener(
        &b,
        &["232.1.1.1", "5001", "-i", "eth0", "--source", "10.77.1.1"],
    );
    let bad4 = mcast_listener(
        &b,
        &["232.1.1.1", "5001", "-i", "eth0", "--source", "10.77.1.99"],
    );
    let good6 = mcast_listener(
        &b,
        &[
            "ff3e::8000:1",
            "5002",
            "-i",
            "eth0",
            "--source",
            "fd77:1::1",
        ],
    );
    let bad6 = mcast_listener(
        &b,
        &[
            "ff3e::8000:1",
            "5002",
            "-i",
            "eth0",
            "--source",
            "fd77:1::99",
        ],
    );
    assert_ok(&mcast_send(
        &a,
        &["232.1.1.1", "5001", "ssm4", "-i", "eth0"],
    ));
    assert_ok(&mcast_send(
        &a,
        &["ff3e::8000:1", "5002", "ssm6", "-i", "eth0"],
    ));
    let l = good4.line(5).unwrap();
    assert!(l.starts_with("10.77.1.1:") && l.ends_with("  ssm4"), "{l}");
    let l = good6.line(5).unwrap();
    assert!(
        l.starts_with("[fd77:1::1]:") && l.ends_with("  ssm6"),
        "{l}"
    );
    assert!(bad4.line(1).is_none());
    assert!(bad6.line(0).is_none());
}

#[test]
fn no_loop_keeps_datagrams_off_this_host() {
    if !require_root("no_loop_keeps_datagrams_off_this_host") {
        return;
    }
    let (a, _b, _c) = star();
    let here = mcast_listener(&a, &["239.5.5.5", "5003", "-i", "eth0"]);
    assert_ok(&mcast_send(
        &a,
        &["239.5.5.5", "5003", "muted", "-i", "eth0", "--no-loop"],
    ));
    assert_ok(&mcast_send(
        &a,
        &["239.5.5.5", "5003", "looped", "-i", "eth0", "--loop"],
    ));
    assert!(here.line(5).unwrap().ends_with("  looped"));
}
