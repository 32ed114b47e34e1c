//! `udp listen --allow/--deny/--allowfile/--denyfile`: refused sources get
//! no answer and are not printed; the files are re-read on SIGHUP.

use std::time::Duration;

use super::{Server, listen_local};
use crate::util::sockbox;

/// Ask the listener on `port` once; true when an answer came within 2s.
fn answered(port: u16) -> bool {
    let out = sockbox()
        .args(["udp", "send", "127.0.0.1", &port.to_string(), "hello"])
        .args(["--replies", "1", "--wait", "2s"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("udp send exited {other:?}: {out:?}"),
    }
}

#[test]
fn denied_sources_are_dropped_and_allowed_ones_answered() {
    let (srv, port) = listen_local(&["--echo", "--deny", "127.0.0.0/8"]);
    assert!(!answered(port), "a denied source was answered");
    assert_eq!(srv.line(1), None, "a denied datagram was printed");
    let (srv, port) = listen_local(&["--echo", "--allow", "10.0.0.0/8,127.0.0.1"]);
    assert!(answered(port));
    assert!(srv.line(5).unwrap().ends_with("  hello"));
}

#[test]
fn bad_entries_are_usage_errors_naming_them() {
    sockbox()
        .args(["udp", "listen", "127.0.0.1", "0", "--allow", "10.0.0.0/33"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("10.0.0.0/33"));
    sockbox()
        .args([
            "udp",
            "listen",
            "0",
            "--denyfile",
            "/nonexistent/sbx-deny.txt",
        ])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("/nonexistent/sbx-deny.txt"));
}

#[test]
fn sighup_rereads_the_allow_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(&file, "# only the lab\n10.1.2.0/24\n").unwrap();
    let (srv, port): (Server, u16) =
        listen_local(&["--echo", "--allowfile", file.to_str().unwrap()]);
    assert!(!answered(port), "127.0.0.1 is not in the allow file yet");
    std::fs::write(&file, "10.1.2.0/24\n127.0.0.1\n").unwrap();
    srv.0.signal(nix::sys::signal::Signal::SIGHUP);
    srv.0
        .wait_for_stderr("re-read the allow/deny files", Duration::from_secs(10));
    assert!(answered(port), "still refused after the reload");
}
