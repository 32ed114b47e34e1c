//! On loopback: reply collection and its bounds, output forms, the
//! program responder, bad input.

use std::time::{Duration, Instant};

use super::{Server, listen_local, stdout_of};
use crate::util::{procs, sockbox, sockbox_std};

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
    let st = srv.0.wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "listener did not exit 0 after -c 2: {st:?}"
    );
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
    let pid = srv.0.child.id();
    let clean = crate::util::netns::wait_until(5.0, || procs::children(pid).is_empty());
    assert!(clean, "children left: {:?}", procs::children(pid));
    assert!(crate::util::netns::wait_until(3.0, || {
        srv.log().contains("was killed")
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
        // Regression: a wait this long overflowed the deadline (a panic).
        (
            vec!["udp", "send", "127.0.0.1", "9", "x", "-w", "584000000000y"],
            "",
            "at most a year",
        ),
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

#[test]
fn port_unreachable_ends_the_wait_early_with_exit_1() {
    // A port nobody listens on: bind one, note it, close it.
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(closed) = std::net::UdpSocket::bind(local) else {
            crate::util::skipped(&format!("cannot bind {local} (no IPv6 loopback?)"));
            continue;
        };
        let to = closed.local_addr().unwrap();
        drop(closed);
        let t = Instant::now();
        sockbox()
            .args([
                "udp",
                "send",
                &to.ip().to_string(),
                &to.port().to_string(),
                "hi",
            ])
            .args(["--wait", "20s"])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(predicates::str::contains(format!(
                "udp send: {to}: port unreachable (nothing listens there)"
            )));
        // Ended, and well before the window (the bound is loose on purpose).
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        // --replies alone (its default 3s window) ends early the same way.
        sockbox()
            .args([
                "udp",
                "send",
                &to.ip().to_string(),
                &to.port().to_string(),
                "hi",
            ])
            .args(["-n", "1"])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(predicates::str::contains("port unreachable"));
        // Without a wait for replies, UDP stays fire-and-forget: every line
        // is sent, and the ICMP errors between them change nothing.
        sockbox()
            .args(["udp", "send", &to.ip().to_string(), &to.port().to_string()])
            .arg("--lines")
            .write_stdin("one\ntwo\nthree\n")
            .timeout(Duration::from_secs(30))
            .assert()
            .success();
    }
}

/// Regression (issue 16 #11): `udp listen --reply-exec ''` and
/// `--exec-timeout 0` were accepted (a responder that never answers),
/// `mcast send --loop --no-loop` too; `listen -e ''` is refused. All are
/// usage errors now, before anything binds.
#[test]
fn empty_reply_program_zero_exec_timeout_and_loop_no_loop_are_refused() {
    for (args, want) in [
        (
            &["udp", "listen", "127.0.0.1", "0", "--reply-exec", ""][..],
            "--reply-exec needs a program",
        ),
        (
            &["udp", "listen", "127.0.0.1", "0", "--reply-exec", "  "],
            "--reply-exec needs a program",
        ),
        (
            &[
                "udp",
                "listen",
                "0",
                "--reply-exec",
                "cat",
                "--exec-timeout",
                "0",
            ],
            "--exec-timeout 0",
        ),
        (
            &["mcast", "listen", "239.1.2.3", "0", "--reply-exec", ""],
            "--reply-exec needs a program",
        ),
        (
            &[
                "mcast",
                "send",
                "239.1.2.3",
                "9",
                "x",
                "--loop",
                "--no-loop",
            ],
            "cannot be used with",
        ),
    ] {
        let out = sockbox()
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert!(!err.contains("listening"), "{args:?}: {err}");
    }
}
