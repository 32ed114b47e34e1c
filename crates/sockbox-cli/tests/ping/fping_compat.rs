//! fping drop-in: for each fping option, the output has fping's
//! documented shape (fping(8) and the format strings of fping 5.x:
//! `%-*s : [%d], %d bytes, %s ms (%s avg, %d%% loss)` and the like), on
//! loopback. Numbers are masked (`#`), so the text around them must match
//! exactly. fping itself is not run here.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{require_root, sockbox, sockbox_std};

/// Exit code, stdout and stderr of `sockbox ping ARGS`.
fn ping(args: &[&str]) -> (i32, String, String) {
    let out = sockbox()
        .arg("ping")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("run sockbox");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every run of digits becomes one `#` (so "0.030 ms" is "#.# ms").
fn shape(text: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(shape).collect()
}

#[test]
fn default_alive_and_unreachable_lines() {
    if !require_root("default_alive_and_unreachable_lines") {
        return;
    }
    let (code, out, _) = ping(&["127.0.0.1", "::1"]);
    assert_eq!(code, 0);
    assert_eq!(out, "127.0.0.1 is alive\n::1 is alive\n");
    // -t 0: no reply can be in time, so loopback is unreachable (fping).
    let (code, out, _) = ping(&["-t", "0", "-r", "0", "127.0.0.1", "::1"]);
    assert_eq!(code, 1);
    assert_eq!(out, "127.0.0.1 is unreachable\n::1 is unreachable\n");
}

#[test]
fn alive_unreachable_elapsed_quiet() {
    if !require_root("alive_unreachable_elapsed_quiet") {
        return;
    }
    assert_eq!(
        ping(&["-a", "127.0.0.1", "127.0.0.2"]).1,
        "127.0.0.1\n127.0.0.2\n"
    );
    let (code, out, _) = ping(&["-u", "-t", "0", "-r", "0", "127.0.0.1", "127.0.0.2"]);
    assert_eq!((code, out.as_str()), (1, "127.0.0.1\n127.0.0.2\n"));
    assert_eq!(ping(&["-u", "127.0.0.1"]).1, "");
    assert_eq!(
        lines(&ping(&["-e", "127.0.0.1"]).1),
        ["#.#.#.# is alive (#.# ms)"]
    );
    assert_eq!(
        lines(&ping(&["-e", "-a", "127.0.0.1"]).1),
        ["#.#.#.# (#.# ms)"]
    );
    let (code, out, err) = ping(&["-q", "127.0.0.1", "nosuch..invalid"]);
    assert_eq!((code, out.as_str(), err.as_str()), (2, "", ""));
}

#[test]
fn count_lines_then_a_blank_line_and_the_summary() {
    if !require_root("count_lines_then_a_blank_line_and_the_summary") {
        return;
    }
    let (code, out, err) = ping(&["-c", "2", "-p", "20", "127.0.0.1", "::1"]);
    assert_eq!(code, 0);
    let mut got = lines(&out);
    got.sort();
    assert_eq!(
        got,
        [
            "#.#.#.# : [#], # bytes, #.# ms (#.# avg, #% loss)",
            "#.#.#.# : [#], # bytes, #.# ms (#.# avg, #% loss)",
            "::#       : [#], # bytes, #.# ms (#.# avg, #% loss)",
            "::#       : [#], # bytes, #.# ms (#.# avg, #% loss)",
        ]
    );
    assert_eq!(
        lines(&err),
        [
            "",
            "#.#.#.# : xmt/rcv/%loss = #/#/#%, min/avg/max = #.#/#.#/#.#",
            "::#       : xmt/rcv/%loss = #/#/#%, min/avg/max = #.#/#.#/#.#",
        ]
    );
    // -o adds the outage; -b sets the size (100 bytes of data: 108).
    let (_, out, err) = ping(&["-c", "1", "-o", "-b", "100", "127.0.0.1", "127.0.0.2"]);
    assert!(out.contains(", 108 bytes, "), "{out}");
    assert_eq!(
        lines(&err)[1],
        "#.#.#.# : xmt/rcv/%loss = #/#/#%, outage(ms) = #, min/avg/max = #.#/#.#/#.#"
    );
    // A target that never answers: timed-out lines and a loss-only summary.
    let (code, out, err) = ping(&["-c", "2", "-p", "20", "-t", "0", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(code, 1);
    assert!(
        lines(&out)
            .iter()
            .all(|l| l == "#.#.#.# : [#], timed out (NaN avg, #% loss)"),
        "{out}"
    );
    assert_eq!(lines(&err)[1], "#.#.#.# : xmt/rcv/%loss = #/#/#%");
    assert!(err.contains("2/0/100%"), "{err}");
}

#[test]
fn vcount_columns_and_timestamps() {
    if !require_root("vcount_columns_and_timestamps") {
        return;
    }
    let (code, out, err) = ping(&["-C", "3", "-p", "20", "-q", "127.0.0.1", "::1"]);
    assert_eq!((code, out.as_str()), (0, ""));
    // No per-probe lines: no blank line before the columns.
    assert_eq!(
        lines(&err),
        ["#.#.#.# : #.# #.# #.#", "::#       : #.# #.# #.#"]
    );
    let (_, out, _) = ping(&["-C", "1", "-D", "127.0.0.1", "127.0.0.2"]);
    for l in lines(&out) {
        assert_eq!(l, "[#.#] #.#.#.# : [#], # bytes, #.# ms (#.# avg, #% loss)");
    }
    let (_, out, err) = ping(&["-C", "2", "-p", "20", "-t", "0", "127.0.0.1", "127.0.0.2"]);
    assert!(!out.is_empty());
    assert_eq!(lines(&err)[1], "#.#.#.# : - -");
}

#[test]
fn global_statistics() {
    if !require_root("global_statistics") {
        return;
    }
    let (code, out, err) = ping(&["-s", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2);
    assert_eq!(
        lines(&err),
        [
            "",
            "       # targets",
            "       # alive",
            "       # unreachable",
            "       # unknown addresses",
            "",
            "       # timeouts (waiting for response)",
            "       # ICMP Echos sent",
            "       # ICMP Echo Replies received",
            "       # other ICMP received",
            "",
            " #.# ms (min round trip time)",
            " #.# ms (avg round trip time)",
            " #.# ms (max round trip time)",
            "        #.# sec (elapsed real time)",
            "",
        ]
    );
    assert!(err.contains("       2 ICMP Echos sent"), "{err}");
}

#[test]
fn reachable_counts() {
    if !require_root("reachable_counts") {
        return;
    }
    let (code, out, _) = ping(&["-x", "2", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Enough hosts reachable (required: 2, reachable: 2)\n")
    );
    let (code, out, _) = ping(&["-x", "3", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "Not enough hosts reachable (required: 3, reachable: 2)\n"
        )
    );
    // -X stops at the first N alive: a long list ends at once.
    let (code, out, _) = ping(&["-X", "1", "-g", "127.0.0.0/16", "-i", "10"]);
    assert_eq!(code, 0);
    assert_eq!(out, "Enough hosts reachable (required: 1, reachable: 1)\n");
}

#[test]
fn names_and_addresses() {
    if !require_root("names_and_addresses") {
        return;
    }
    assert_eq!(
        ping(&["-A", "localhost", "127.0.0.2"]).1,
        "127.0.0.1 is alive\n127.0.0.2 is alive\n"
    );
    // -n / -d: reverse lookups (/etc/hosts names 127.0.0.1 localhost).
    // Only 127.0.0.1 is looked up: any other address would be asked of
    // the DNS server, off this machine.
    assert_eq!(
        ping(&["-d", "127.0.0.1"]).1.lines().next(),
        Some("localhost is alive")
    );
    assert_eq!(
        ping(&["-n", "-c", "1", "-q", "127.0.0.1", "localhost"])
            .2
            .lines()
            .next()
            .map(shape),
        Some("localhost : xmt/rcv/%loss = #/#/#%, min/avg/max = #.#/#.#/#.#".into())
    );
    assert_eq!(
        ping(&["-A", "-d", "localhost"]).1.lines().next(),
        Some("localhost (127.0.0.1) is alive")
    );
}

#[test]
fn socket_options_ttl_source_dontfrag_tos_random() {
    if !require_root("socket_options_ttl_source_dontfrag_tos_random") {
        return;
    }
    for args in [
        &["-H", "9"][..],
        &["-S", "127.0.0.7"],
        &["-M"],
        &["-O", "0x10"],
        &["-R"],
        &["-R", "-b", "1000"],
    ] {
        let mut all = args.to_vec();
        all.extend(["-c", "1", "127.0.0.1", "127.0.0.2"]);
        let (code, out, err) = ping(&all);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert_eq!(out.lines().count(), 2, "{args:?}: {out}");
    }
    // A source address that is not ours: fping's "invalid argument".
    let (code, _, err) = ping(&["-S", "10.9.9.9", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("10.9.9.9"), "{err}");
}

#[test]
fn loop_interval_reports_and_netdata() {
    if !require_root("loop_interval_reports_and_netdata") {
        return;
    }
    let run = |args: &[&str]| {
        let child = sockbox_std()
            .arg("ping")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(1300));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["-l", "-p", "200", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(code, Some(0));
    assert!(
        lines(&out)
            .iter()
            .all(|l| l == "#.#.#.# : [#], # bytes, #.# ms (#.# avg, #% loss)"),
        "{out}"
    );
    assert!(out.lines().count() >= 8, "{out}");
    assert_eq!(lines(&err)[0], "");
    assert_eq!(
        lines(&err)[1],
        "#.#.#.# : xmt/rcv/%loss = #/#/#%, min/avg/max = #.#/#.#/#.#"
    );
    // -Q 1: a report after a second, then the final statistics.
    let (code, out, err) = run(&["-l", "-Q", "1", "-p", "200", "127.0.0.1"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    let l = lines(&err);
    assert_eq!(l[0], "[#:#:#]");
    assert_eq!(
        l[1],
        "#.#.#.# : xmt/rcv/%loss = #/#/#%, min/avg/max = #.#/#.#/#.#"
    );
    // -N: netdata's chart protocol on stdout.
    let (code, out, _) = run(&["-l", "-Q", "1", "-N", "-p", "200", "127.0.0.1"]);
    assert_eq!(code, Some(0));
    let first: Vec<String> = out.lines().take(5).map(shape).collect();
    assert_eq!(
        first,
        [
            "CHART fping.#_#_#_#_packets '' 'FPing Packets for host #.#.#.#' packets '#.#.#.#' fping.packets line # #",
            "DIMENSION xmt sent absolute # #",
            "DIMENSION rcv received absolute # #",
            "BEGIN fping.#_#_#_#_packets",
            "SET xmt = #",
        ]
    );
    assert!(
        out.contains("BEGIN fping.127_0_0_1_latency\nSET min = "),
        "{out}"
    );
}

#[test]
fn targets_from_stdin_files_and_ranges() {
    if !require_root("targets_from_stdin_files_and_ranges") {
        return;
    }
    let mut child = sockbox_std()
        .args(["ping", "-a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(b"127.0.0.1\n# comment\n::1 127.0.0.3\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    // The first word of each line only, as fping 5.1 reads its input.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "127.0.0.1\n::1\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("hosts");
    std::fs::write(&list, "127.0.0.1\nnosuch..invalid\n").expect("write");
    let (code, out, err) = ping(&["-f", list.to_str().unwrap_or("hosts")]);
    assert_eq!(code, 2);
    assert_eq!(out, "127.0.0.1 is alive\n");
    assert_eq!(err, "nosuch..invalid: Name or service not known\n");
    // -g START END, IPv6 ranges.
    let (code, out, _) = ping(&["-a", "-g", "127.0.0.1", "127.0.0.3"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "127.0.0.1\n127.0.0.2\n127.0.0.3\n")
    );
    let (code, out, _) = ping(&["-a", "-g", "::1/128"]);
    assert_eq!((code, out.as_str()), (0, "::1\n"));
}

#[test]
fn family_flags_refuse_the_other_family() {
    if !require_root("family_flags_refuse_the_other_family") {
        return;
    }
    let (code, out, err) = ping(&["-6", "127.0.0.1", "::1"]);
    assert_eq!(code, 2);
    assert_eq!(out, "::1 is alive\n");
    assert_eq!(
        err,
        "127.0.0.1: Address family for hostname not supported\n"
    );
    let (code, _, err) = ping(&["-4", "-g", "::1/128"]);
    assert_eq!(code, 3, "{err}");
}
