//! Flags: usage errors exit 2 with one line; durations, nicknames and
//! listen addresses are checked and reported as given.

use super::*;

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["chat", "70000"],
        &["chat", "7000", "--allow", "not..a-net"],
        &[
            "chat",
            "7000",
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.pem",
        ],
        &["chat", "7000", "--max-line", "0"],
        &["broker", "7000", "--queue-limit", "lots"],
        &[
            "chat",
            "7000",
            "--queue-limit",
            "1MiB",
            "--queue-ceiling",
            "64KiB",
        ],
    ];
    for args in cases {
        let out = sockbox_std().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// Regression: `--max-line 99999999999999999999` said "is not a size" (it
/// is too large) and `--max-line 1E` (1 EiB) was accepted. Both are usage
/// errors that give the valid range.
#[test]
fn max_line_out_of_range_is_refused_with_the_range() {
    for (value, says) in [
        ("99999999999999999999", "is too large"),
        ("1E", "(1 EiB) is too large"),
    ] {
        let out = sockbox_std()
            .args(["chat", "127.0.0.1", "0", "--max-line", value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains("--max-line"), "{err}");
        assert!(err.contains(says), "{value}: {err}");
        assert!(err.contains("the valid range is 1 byte to 16 MiB"), "{err}");
    }
}

/// Regression: `--stdin --nick 'bad nick'` was accepted and shown raw as
/// `<bad nick> …`; now it is a usage error naming the flag.
#[test]
fn invalid_operator_nick_exits_2() {
    for nick in ["bad nick", "1st", "\x1b[2J"] {
        let out = sockbox_std()
            .args(["chat", "127.0.0.1", "0", "--stdin", "--nick", nick])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{nick:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--nick"), "{err}");
    }
}

/// Regression: `--idle-timeout 2` (plain seconds, as every other duration
/// flag takes) was refused with "time unit needed", and a huge value such
/// as 1000000000y was accepted.
#[test]
fn idle_timeout_takes_plain_seconds_and_refuses_huge_values() {
    let out = sockbox_std()
        .args(["chat", "127.0.0.1", "0", "--idle-timeout", "1000000000y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let srv = Server::start("chat", &["--idle-timeout", "1"]);
    let mut a = Client::connect(srv.addr);
    assert!(a.line().starts_with("*** welcome"));
    let started = Instant::now();
    assert_eq!(a.line(), "*** idle for 1s, disconnecting");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Regression: with the port taken, `sockbox chat PORT` fell back from
/// `[::]` to `0.0.0.0` and blamed that address, not the one it tried first.
#[test]
fn port_in_use_names_the_dual_stack_address() {
    let Ok(taken) = std::net::TcpListener::bind("[::]:0") else {
        crate::util::skipped("no IPv6 on this host");
        return;
    };
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sockbox_std().args(["chat", &port]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("[::]:{port}")), "{err}");
}
