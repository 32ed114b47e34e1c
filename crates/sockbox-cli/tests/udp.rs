//! `sockbox udp` and `sockbox mcast`: on loopback, and across network
//! namespaces (A and B on a veth pair, B and C behind one bridge with A).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::util::netns::{Netns, bridge, link};
use crate::util::{require_root, sockbox, sockbox_std};

/// A spawned sockbox server: its output lines arrive on channels; killed and
/// reaped on drop, even when the test fails.
struct Server {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

impl Server {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockbox");
        let (otx, out) = channel();
        let (etx, err) = channel();
        let so = child.stdout.take().unwrap();
        let se = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(so).lines().map_while(Result::ok) {
                let _ = otx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(se).lines().map_while(Result::ok) {
                let _ = etx.send(l);
            }
        });
        Self { child, out, err }
    }

    /// Wait for the "listening on udp ADDR:PORT" line; return the port.
    fn ready(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.err.recv_timeout(left) {
                Ok(l) if l.contains("listening on udp") => {
                    return l.rsplit(':').next().unwrap().trim().parse().unwrap();
                }
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("server did not report that it listens: {seen:?}");
    }

    fn line(&self, secs: u64) -> Option<String> {
        self.out.recv_timeout(Duration::from_secs(secs)).ok()
    }

    fn stderr_now(&self) -> String {
        self.err.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen_local(extra: &[&str]) -> (Server, u16) {
    let mut c = sockbox_std();
    c.args(["udp", "listen", "127.0.0.1", "0"]).args(extra);
    let s = Server::spawn(c);
    let p = s.ready();
    (s, p)
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn send_collects_a_reply_with_source_and_time() {
    let (srv, port) = listen_local(&["--reply", "pong"]);
    let out = sockbox()
        .args(["udp", "send", "127.0.0.1", &port.to_string(), "ping"])
        .args(["--wait", "5s", "--replies", "1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout_of(&out);
    let line = text.lines().next().unwrap();
    let fields: Vec<&str> = line.split("  ").collect();
    assert_eq!(fields[0], format!("127.0.0.1:{port}"), "{line}");
    assert!(fields[1].ends_with(" ms"), "{line}");
    assert_eq!(fields[2], "pong", "{line}");
    // The listener printed the datagram with its source.
    let seen = srv.line(5).unwrap();
    assert!(
        seen.starts_with("127.0.0.1:") && seen.ends_with("  ping"),
        "{seen}"
    );
}

#[test]
fn replies_bound_the_run_before_wait_does() {
    let (_srv, port) = listen_local(&["--echo"]);
    let t = Instant::now();
    let out = sockbox()
        .args(["udp", "send", "127.0.0.1", &port.to_string(), "--lines"])
        .args(["--replies", "2", "--wait", "30s", "--json"])
        .write_stdin("one\ntwo\nthree\n")
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let lines: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["text"], "one");
    assert_eq!(lines[0]["from"], format!("127.0.0.1:{port}"));
    assert!(lines[0]["time_ms"].as_f64().unwrap() >= 0.0);
}

#[test]
fn wait_bounds_the_run_and_no_reply_exits_1() {
    let (srv, port) = listen_local(&[]);
    let t = Instant::now();
    sockbox()
        .args(["udp", "send", "127.0.0.1", &port.to_string(), "anyone?"])
        .args(["--wait", "300ms"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no reply within 300ms"));
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(srv.line(5).unwrap().ends_with("anyone?"));
    // Without --wait/--replies it only sends, and that is success.
    sockbox()
        .args([
            "udp",
            "send",
            "127.0.0.1",
            &port.to_string(),
            "fire and forget",
        ])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn hexdump_of_replies_and_json_of_datagrams() {
    let (srv, port) = listen_local(&["--echo", "--json"]);
    let out = sockbox()
        .args(["udp", "send", "127.0.0.1", &port.to_string()])
        .args(["00 41 ff 0a", "--hex", "-x", "-n", "1", "-w", "5s"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout_of(&out);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with("  4 bytes"), "{text}");
    assert_eq!(
        lines.next().unwrap(),
        "00000000  00 41 ff 0a                                       |.A..|"
    );
    assert_eq!(lines.next().unwrap(), "00000004");
    let v: serde_json::Value = serde_json::from_str(&srv.line(5).unwrap()).unwrap();
    assert_eq!(v["hex"], "0041ff0a");
    assert_eq!(v["len"], 4);
    assert!(v.get("text").is_none(), "{v}");
    assert!(v["ts"].as_f64().unwrap() > 1.0e9);
}

#[test]
fn listen_count_exits_after_n_datagrams_and_raw_prints_payloads() {
    let mut c = sockbox_std();
    c.args(["udp", "listen", "127.0.0.1", "0", "--raw", "-c", "2"]);
    let mut srv = Server::spawn(c);
    let port = srv.ready().to_string();
    for m in ["first\n", "second\n"] {
        sockbox()
            .args(["udp", "send", "127.0.0.1", &port, m])
            .assert()
            .success();
    }
    assert_eq!(srv.line(5).unwrap(), "first");
    assert_eq!(srv.line(5).unwrap(), "second");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Some(st) = srv.child.try_wait().unwrap() {
            assert!(st.success());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("listener did not exit after -c 2");
}

/// Child processes of `pid` (from /proc), to check nothing is left running
/// or unreaped.
fn children_of(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(c.split_whitespace().map(str::to_owned));
            }
        }
    }
    v
}

#[test]
fn reply_exec_answers_and_kills_and_reaps_slow_programs() {
    let script =
        r#"read x; if [ "$x" = slow ]; then sleep 30; fi; echo "got $x from $SOCKBOX_PEER_ADDR""#;
    let (srv, port) = listen_local(&["--reply-exec", script, "--exec-timeout", "300ms"]);
    let port = port.to_string();
    let out = sockbox()
        .args([
            "udp",
            "send",
            "127.0.0.1",
            &port,
            "fast\n",
            "-n",
            "1",
            "-w",
            "5s",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout_of(&out).ends_with("  got fast from 127.0.0.1\n"),
        "{}",
        stdout_of(&out)
    );
    sockbox()
        .args(["udp", "send", "127.0.0.1", &port, "slow\n", "-w", "1s"])
        .assert()
        .code(1);
    // The killed program is reported and reaped: no children remain.
    let pid = srv.child.id();
    let clean = crate::util::netns::wait_until(5.0, || children_of(pid).is_empty());
    assert!(clean, "children left: {:?}", children_of(pid));
    assert!(crate::util::netns::wait_until(3.0, || {
        srv.stderr_now().contains("was killed")
    }));
}

#[test]
fn bad_inputs_exit_2_with_a_clear_line() {
    let big = "x".repeat(65_508);
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["mcast", "listen", "10.0.0.1", "5000"],
            "",
            "not a multicast group",
        ),
        (
            vec!["mcast", "send", "10.0.0.1", "5000", "x"],
            "",
            "not a multicast group",
        ),
        (
            vec!["mcast", "send", "ff02:1", "5000", "x"],
            "",
            "not a multicast group",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "9", "x", "--broadcast"],
            "",
            "must be a broadcast address",
        ),
        (
            vec!["udp", "send", "::1", "9", "x", "--broadcast"],
            "",
            "IPv6, which has no broadcast",
        ),
        (
            vec!["udp", "send", "239.1.2.3", "9", "x", "-b"],
            "",
            "mcast send",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "70000", "x"],
            "",
            "out of range",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "0", "x"],
            "",
            "out of range",
        ),
        (vec!["udp", "listen", "70000"], "", "out of range"),
        (
            vec!["mcast", "listen", "239.1.2.3", "99999"],
            "",
            "out of range",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "9", "-"],
            big.as_str(),
            "over the UDP datagram limit",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "9", "--lines"],
            big.as_str(),
            "over the UDP datagram limit",
        ),
        (
            vec!["udp", "send", "127.0.0.1", "9", "zz", "--hex"],
            "",
            "not a hex digit",
        ),
        (
            vec!["mcast", "listen", "239.1.2.3", "5000", "--source", "::1"],
            "",
            "both be IPv4 or both IPv6",
        ),
        (
            vec![
                "mcast",
                "send",
                "239.1.2.3",
                "5000",
                "x",
                "--iface",
                "sbxnope0",
            ],
            "",
            "sbxnope0",
        ),
        (
            vec![
                "mcast",
                "send",
                "239.1.2.3",
                "5000",
                "x",
                "--iface",
                "192.0.2.99",
            ],
            "",
            "no interface has address",
        ),
        (
            vec!["udp", "listen", "9", "--reply", "a", "--echo"],
            "",
            "cannot be used with",
        ),
    ];
    for (args, stdin, want) in cases {
        let out = sockbox()
            .args(&args)
            .write_stdin(stdin)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert!(err.lines().count() <= 6, "{args:?}: terse please: {err}");
    }
}

#[test]
fn port_in_use_is_a_system_error_with_the_fix() {
    let (_srv, port) = listen_local(&[]);
    sockbox()
        .args(["udp", "listen", "127.0.0.1", &port.to_string()])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("ss -ulpn"));
}

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
