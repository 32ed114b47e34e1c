//! The listener on loopback, and `--wait` pinging the woken host.

use super::*;

#[test]
fn listener_on_loopback_decodes_magic_after_junk() {
    // No root needed: a high port on loopback.
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut cmd = crate::util::sockbox_std();
    cmd.args([
        "wake",
        "listen",
        "--json",
        "--bind",
        "127.0.0.1",
        "--count",
        "1",
    ])
    .args(["--port", &port.to_string()]);
    let mut l = Spawned::start(cmd);
    let ready = l.wait_for_stderr("listening for magic packets", Duration::from_secs(20));
    assert!(ready.contains("udp 127.0.0.1:"), "{ready}");
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut payload = b"\xff\xffjunk".to_vec();
    payload.extend_from_slice(&Repr::new(MacAddr([2, 0, 0, 0, 0, 7])).to_bytes());
    payload.extend_from_slice(b"tail");
    tx.send_to(&payload, ("127.0.0.1", port)).unwrap();
    let line = l.line(Duration::from_secs(10)).expect("a JSON line");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["mac"].as_str(), v["offset"].as_u64()),
        (Some("02:00:00:00:00:07"), Some(6))
    );
    assert!(l.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn wait_needs_a_host_address_not_a_broadcast() {
    let err = usage_error(&["wake", "-n", "--wait", MAC]);
    assert!(
        err.contains("--wait needs") && err.contains("--wait-addr"),
        "{err}"
    );
    let err = usage_error(&[
        "wake",
        "-n",
        "--wait=3s",
        "--wait-addr",
        "255.255.255.255",
        MAC,
    ]);
    assert!(err.contains("broadcast"), "{err}");
    // A bad timeout is clap's usage error.
    sockbox().args(["wake", "--wait=5x", MAC]).assert().code(2);
    // `--wait 2m` hands "2m" to the targets: say what to write instead.
    let err = usage_error(&["wake", "-n", "--wait", "2m", MAC]);
    assert!(err.contains("write --wait=2m"), "{err}");
}

#[test]
fn wait_pings_until_up_and_times_out_with_exit_1() {
    if !require_root("wait_pings_until_up_and_times_out_with_exit_1") {
        return;
    }
    let (a, _b) = pair("ww");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(
        &file,
        format!("{MAC} 10.77.1.2 b\n00:11:22:33:44:99 10.77.1.99 ghost\n"),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // B answers ping: exit 0, one "is up" line after the sent lines. (The
    // file's address replaces the broadcast; -b keeps it too.)
    let (code, out, err) = run_in(&a, &["wake", "-f", f, "-b", "--wait=10s", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("sent b ({MAC}) to udp 10.77.1.255:9 on wa")),
        "{out}"
    );
    assert!(out.contains("udp 10.77.1.2:9"), "{out}");
    assert!(
        out.contains(&format!("b ({MAC}) is up: 10.77.1.2 answered after")),
        "{out}"
    );
    assert!(err.contains("waiting up to 10s for b"), "{err}");
    // Nobody at 10.77.1.99: exit 1 after the timeout.
    let t = Instant::now();
    let (code, out, err) = run_in(&a, &["wake", "-f", f, "--wait=2s", "ghost"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("ghost (00:11:22:33:44:99): 10.77.1.99 did not answer within 2s"),
        "{out}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

/// Regression (issue 16 #20): after four magic packets and one other
/// datagram the listener stopped with `accepted=0 refused=1`. Magic
/// packets are the accepted ones; the other datagram is counted as
/// ignored, not refused.
#[test]
fn listen_statistics_count_magic_packets_accepted_and_nothing_refused() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut cmd = crate::util::sockbox_std();
    cmd.args(["wake", "listen", "--bind", "127.0.0.1", "--count", "4"])
        .args(["--port", &port.to_string()]);
    let mut l = Spawned::start(cmd);
    l.wait_for_stderr("listening for magic packets", Duration::from_secs(20));
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(b"not a magic packet", ("127.0.0.1", port))
        .unwrap();
    for i in 1..=4 {
        let p = Repr::new(MacAddr([2, 0, 0, 0, 0, i])).to_bytes();
        tx.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
    assert!(
        l.wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    let log = l.log();
    assert!(
        log.contains("4 magic packets, 1 other datagram ignored"),
        "{log}"
    );
    assert!(log.contains("accepted=4 "), "{log}");
    assert!(log.contains("refused=0 "), "{log}");
}
