//! Regression tests, named after the behaviour they pin: issue 17 (#3
//! one-target ping and fping's flags, #4 fping's -c/-C output) and issue
//! 13 (send errors, signals, absurd requests).

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{json_lines, of_type};
use crate::util::netns::{Netns, link};
use crate::util::{require_root, sockbox};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn one_target_quiet_prints_only_the_header_and_the_statistics() {
    if !require_root("one_target_quiet_prints_only_the_header_and_the_statistics") {
        return;
    }
    let out = sockbox()
        .args(["ping", "-q", "-c", "3", "-i", "0.05", "127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    let l: Vec<&str> = t.lines().collect();
    assert_eq!(l[0], "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.");
    assert_eq!(l[1], "");
    assert_eq!(l[2], "--- 127.0.0.1 ping statistics ---");
    assert!(
        l[3].starts_with("3 packets transmitted, 3 received, 0% packet loss"),
        "{t}"
    );
    assert!(l[4].starts_with("rtt min/avg/max/mdev = "), "{t}");
    assert_eq!(l.len(), 5, "{t}");
}

/// `-t`, `-r` and `-B` are fping's: with one silent target they give up
/// after the retries (100+200+400+800 ms) with "is unreachable" and exit 1,
/// instead of pinging for ever.
#[test]
fn one_target_with_fping_timeout_retries_and_backoff_gives_up_like_fping() {
    if !require_root("one_target_with_fping_timeout_retries_and_backoff_gives_up_like_fping") {
        return;
    }
    let a = Netns::new("ra");
    let b = Netns::new("rb");
    link(&a, "eth0", "10.207.0.1/24", &b, "eth0", "10.207.0.2/24");
    let t0 = Instant::now();
    let out = a
        .sockbox()
        .args(["ping", "-t", "100", "-r", "3", "-B", "2", "10.207.0.77"])
        .output()
        .expect("run");
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), "10.207.0.77 is unreachable\n");
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn count_summary_starts_with_a_blank_line_only_after_per_probe_lines() {
    if !require_root("count_summary_starts_with_a_blank_line_only_after_per_probe_lines") {
        return;
    }
    let out = sockbox()
        .args(["ping", "-c", "2", "-p", "20", "127.0.0.1", "127.0.0.2"])
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("\n127.0.0.1 : xmt/rcv/%loss = 2/2/0%"),
        "{err:?}"
    );
    let out = sockbox()
        .args([
            "ping",
            "-c",
            "2",
            "-p",
            "20",
            "-q",
            "127.0.0.1",
            "127.0.0.2",
        ])
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("127.0.0.1 : xmt/rcv/%loss = 2/2/0%"),
        "{err:?}"
    );
}

#[test]
fn alive_or_unreachable_with_count_prints_no_bare_name() {
    if !require_root("alive_or_unreachable_with_count_prints_no_bare_name") {
        return;
    }
    for flag in ["-a", "-u"] {
        let out = sockbox()
            .args(["ping", flag, "-c", "1", "127.0.0.1", "127.0.0.2"])
            .timeout(Duration::from_secs(20))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout), "", "{flag}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("127.0.0.1 : xmt/rcv/%loss = 1/1/0%"),
            "{flag}: {err:?}"
        );
    }
}

#[test]
fn timeout_zero_reports_unreachable() {
    if !require_root("timeout_zero_reports_unreachable") {
        return;
    }
    let out = sockbox()
        .args(["ping", "-t", "0", "127.0.0.1", "127.0.0.2"])
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "127.0.0.1 is unreachable\n127.0.0.2 is unreachable\n"
    );
}

/// With no route every send fails: no "timed out" lines, nothing counted
/// as sent, the target ends without waiting for timeouts, and the JSON
/// per-target and total counters agree.
#[test]
fn failed_sends_are_send_errors_without_timed_out_lines() {
    if !require_root("failed_sends_are_send_errors_without_timed_out_lines") {
        return;
    }
    // Only loopback in this namespace: 10.255.255.1 has no route.
    let ns = Netns::new("nr");
    let args = ["ping", "-c", "3", "-p", "100", "-t", "5000"];
    let t0 = Instant::now();
    let out = ns
        .sockbox()
        .args(args)
        .args(["10.255.255.1", "127.0.0.1"])
        .output()
        .expect("run");
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(!o.contains("timed out"), "{o}");
    assert!(o.contains(" : [2], 64 bytes"), "{o}");
    assert_eq!(
        e.matches("10.255.255.1: error while sending ping: ")
            .count(),
        3,
        "{e}"
    );
    // fping counts a send that failed as sent: 3 sent, all lost.
    assert!(
        e.contains("\n10.255.255.1 : xmt/rcv/%loss = 3/0/100%"),
        "{e}"
    );
    // Ended with the period of the other target, not after its timeout.
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Ping style: nothing transmitted, three errors.
    let out = ns
        .sockbox()
        .args(["ping", "-c", "3", "-i", "0.1", "10.255.255.1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let o = text(&out.stdout);
    assert!(
        o.contains("0 packets transmitted, 0 received, +3 errors, 100% packet loss"),
        "{o}"
    );
    // JSON: per-target and total counters agree.
    let out = ns
        .sockbox()
        .args([
            "ping",
            "-c",
            "2",
            "-p",
            "50",
            "--json",
            "10.255.255.1",
            "127.0.0.1",
        ])
        .output()
        .expect("run");
    let v = json_lines(&out.stdout);
    assert_eq!(of_type(&v, "timeout").len(), 0);
    assert_eq!(of_type(&v, "send_error").len(), 2);
    let per: u64 = of_type(&v, "summary")
        .iter()
        .map(|s| s["send_errors"].as_u64().unwrap_or(0))
        .sum();
    let totals = of_type(&v, "totals")[0];
    assert_eq!(totals["counters"]["send_errors"].as_u64(), Some(per));
    assert_eq!(per, 2);
    assert_eq!(totals["sent"], 2);
}

/// SIGTERM ends a sweep of 16.7 million addresses within a second, with
/// what it found so far; a /104 of IPv6 likewise (in a namespace with only
/// loopback, so nothing leaves it).
#[test]
fn a_term_signal_stops_a_huge_sweep_at_once() {
    if !require_root("a_term_signal_stops_a_huge_sweep_at_once") {
        return;
    }
    let ns = Netns::new("tg");
    for range in ["127.0.0.0/8", "::/104"] {
        let child = ns
            .command(assert_cmd::cargo::cargo_bin("sockbox"))
            .args(["ping", "-g", range, "-i", "0", "-r", "0", "-a", "-q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(800));
        let t0 = Instant::now();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let out = child.wait_with_output().expect("wait");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{range}: {took:?}");
        assert_eq!(out.status.code(), Some(1), "{range}");
        if range.starts_with("127") {
            assert!(text(&out.stdout).lines().count() > 1000, "{range}");
        }
    }
}

/// Interrupted, a count sweep's totals hold only the targets it probed:
/// targets = alive + unreachable + unresolved, as many as the summaries
/// (found by review: targets taken in but never probed were counted).
#[test]
fn an_interrupted_sweep_totals_only_the_targets_it_probed() {
    if !require_root("an_interrupted_sweep_totals_only_the_targets_it_probed") {
        return;
    }
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sockbox"))
        .args(["ping", "-c", "3", "--json", "-g", "127.0.0.0/16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().expect("wait");
    let v = json_lines(&out.stdout);
    let totals = of_type(&v, "totals")[0];
    let n = |k: &str| totals[k].as_u64().unwrap_or(u64::MAX);
    assert!(n("targets") > 0 && n("targets") < 65534, "{totals}");
    assert_eq!(
        n("targets"),
        n("alive") + n("unreachable") + n("unresolved"),
        "{totals}"
    );
    assert_eq!(
        of_type(&v, "summary").len() as u64,
        n("targets"),
        "{totals}"
    );
}

/// `-f` on a pipe (`-f /dev/stdin`, `-f <(…)`) reads it once, as it
/// comes, and takes the first word of each line as fping does (found by
/// review: the pipe was read once for widths and came back empty).
#[test]
fn a_target_file_that_is_a_pipe_is_read_once() {
    if !require_root("a_target_file_that_is_a_pipe_is_read_once") {
        return;
    }
    sockbox()
        .args(["ping", "-f", "/dev/stdin"])
        .write_stdin("127.0.0.1\n127.0.0.2 127.0.0.3 # comment\n")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(0)
        .stdout("127.0.0.1 is alive\n127.0.0.2 is alive\n");
}

/// A report interval so short that reports could never catch up is a
/// usage error (found by review: `-Q 1ns` never ended).
#[test]
fn a_tiny_report_interval_is_refused() {
    sockbox()
        .args(["ping", "-Q", "1ns", "-c", "2", "127.0.0.1", "127.0.0.2"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("10ms or more"));
}

/// Requests whose per-target results cannot fit in memory fail at once
/// with a message, never with an allocation abort. (In a namespace with
/// only loopback: were one accepted, nothing could leave.)
#[test]
fn absurd_requests_fail_with_a_message() {
    if !require_root("absurd_requests_fail_with_a_message") {
        return;
    }
    let ns = Netns::new("ab");
    for args in [
        &["ping", "-C", "1000000", "-q", "-g", "10.0.0.0/8"][..],
        &["ping", "-C", "4000000000", "127.0.0.1", "127.0.0.2"],
        &["ping", "-l", "-g", "::/64"],
        // A loop keeps every target in the engine whatever the output.
        &["ping", "-l", "--json", "-g", "::/64"],
        &["ping", "-l", "-a", "-g", "::/64"],
    ] {
        let out = ns.sockbox().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        assert!(err.contains("MB available"), "{args:?}: {err}");
    }
}
