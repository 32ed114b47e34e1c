//! Integration tests: `sockbox ping` (loopback, and hosts in network
//! namespaces: a missing host, unprivileged datagram sockets, a lossy slow
//! link, a router sending ICMP errors) and `sockbox checksum`.

mod checksum;
mod fping_compat;
pub mod lossy;
mod progress;
mod regressions;
mod sweep;
mod timing;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use predicates::str::contains;
use serde_json::Value;

use crate::util::netns::{Netns, link, wait_until};
use crate::util::{require_root, sockbox, sockbox_std};

/// Parse JSON lines; panics on a line that is not JSON.
fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn of_type<'a>(v: &'a [Value], ty: &str) -> Vec<&'a Value> {
    v.iter().filter(|o| o["type"] == ty).collect()
}

/// Kills a spawned process when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn single_target_prints_like_iputils() {
    if !require_root("single_target_prints_like_iputils") {
        return;
    }
    let out = sockbox()
        .args(["ping", "-c", "3", "-i", "0.05", "127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.starts_with("PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n"),
        "{text}"
    );
    for seq in 1..=3 {
        let line = format!("64 bytes from 127.0.0.1: icmp_seq={seq} ttl=64 time=");
        assert!(text.contains(&line), "{text}");
    }
    assert!(text.contains("--- 127.0.0.1 ping statistics ---"), "{text}");
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss, time "),
        "{text}"
    );
    assert!(text.contains("rtt min/avg/max/mdev = "), "{text}");

    sockbox()
        .args(["ping", "-c", "1", "::1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(contains("PING ::1(::1) 56 data bytes"))
        .stdout(contains("64 bytes from ::1: icmp_seq=1"));
}

#[test]
fn many_targets_print_like_fping() {
    if !require_root("many_targets_print_like_fping") {
        return;
    }
    sockbox()
        .args(["ping", "-c", "2", "-p", "50", "127.0.0.1", "127.0.0.2"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(contains("127.0.0.1 : [0], 64 bytes, "))
        .stdout(contains("127.0.0.2 : [1], 64 bytes, "))
        .stderr(contains(
            "127.0.0.1 : xmt/rcv/%loss = 2/2/0%, min/avg/max = ",
        ));
    let out = sockbox()
        .args(["ping", "-C", "3", "-p", "20", "-q", "127.0.0.1", "::1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let line = err.lines().find(|l| l.starts_with("::1")).unwrap_or("");
    // name padded to the longest, then three RTT columns
    assert!(line.starts_with("::1       : "), "{err}");
    assert_eq!(
        line.split(" : ").nth(1).unwrap().split(' ').count(),
        3,
        "{err}"
    );
    sockbox()
        .args(["ping", "-e", "127.0.0.3", "::1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(contains("127.0.0.3 is alive ("))
        .stdout(contains("::1 is alive ("));
}

#[test]
fn sweep_a_range_reports_every_address_alive() {
    if !require_root("sweep_a_range_reports_every_address_alive") {
        return;
    }
    let out = sockbox()
        .args([
            "ping",
            "-g",
            "127.0.0.0/24",
            "-i",
            "0",
            "-r",
            "0",
            "-a",
            "-q",
        ])
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), 254);
    assert!(lines.contains(&"127.0.0.1") && lines.contains(&"127.0.0.254"));

    let out = sockbox()
        .args(["ping", "-g", "127.0.1.10-127.0.1.29", "-i", "0", "--json"])
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    let v = json_lines(&out.get_output().stdout);
    let totals = of_type(&v, "totals")[0];
    assert_eq!(totals["targets"], 20);
    assert_eq!(totals["received"], 20);
    assert_eq!(totals["counters"]["foreign"], 0);
    assert_eq!(of_type(&v, "reply").len(), 20);
    assert_eq!(of_type(&v, "summary").len(), 20);
}

/// -I (interface or source address), --ttl, --rate, -w deadline, -f file.
#[test]
fn interface_source_rate_deadline_and_file() {
    if !require_root("interface_source_rate_deadline_and_file") {
        return;
    }
    sockbox()
        .args(["ping", "-c", "1", "-I", "lo", "--ttl", "9", "127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(contains("icmp_seq=1 ttl=64"));
    // Bound to 127.0.0.7, the reply to 127.0.0.5 comes back to it.
    sockbox()
        .args(["ping", "-c", "1", "-I", "127.0.0.7", "127.0.0.5"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    // An interface that does not exist is a usage error naming it.
    sockbox()
        .args(["ping", "-c", "1", "-I", "nosuchif0", "127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(contains("nosuchif0"));
    // 20 probes at 100 per second over two targets: about 0.1 s of sending.
    let t0 = std::time::Instant::now();
    sockbox()
        .args(["ping", "-c", "10", "-p", "1ms", "--rate", "100", "-q"])
        .args(["127.0.0.1", "127.0.0.2"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stderr(contains("127.0.0.2 : xmt/rcv/%loss = 10/10/0%"));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(180), "{took:?}");
    // -w stops a run that would go on forever, with the summary.
    sockbox()
        .args(["ping", "-i", "0.1", "-w", "0.55", "127.0.0.1"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(contains("6 packets transmitted, 6 received"));
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("hosts.txt");
    std::fs::write(&list, "# lab\n127.0.0.1\n\n127.0.0.2 # second\n").unwrap();
    sockbox()
        .args(["ping", "-f"])
        .arg(&list)
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout("127.0.0.1 is alive\n127.0.0.2 is alive\n");
}

#[test]
fn unresolvable_names_exit_2_and_the_rest_go_on() {
    if !require_root("unresolvable_names_exit_2_and_the_rest_go_on") {
        return;
    }
    sockbox()
        .args(["ping", "127.0.0.1", "no-such-host..invalid"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stdout(contains("127.0.0.1 is alive"))
        .stderr(contains("no-such-host..invalid"));
}

/// Usage errors exit 2 in ping style and 3 (fping's documented code) in
/// fping style. None of these sends anything.
#[test]
fn bad_arguments_exit_2_or_3_in_fping_style() {
    for (args, code) in [
        (&["ping", "-s", "4", "127.0.0.1"][..], 2),
        (&["ping", "-i", "fast", "127.0.0.1"], 2),
        (&["ping", "bad host!"], 2),
        (&["ping", "-c", "0", "127.0.0.1"], 2),
        (&["ping", "-W", "99999y", "127.0.0.1"], 2),
        (&["ping", "-w", "99999y", "127.0.0.1"], 2),
        (&["ping", "--ttl", "0", "127.0.0.1"], 2),
        (&["ping", "--ttl", "256", "127.0.0.1"], 2),
        (&["ping", "-I", "300.1.1.1", "127.0.0.1"], 2),
        (&["ping", "-6", "127.0.0.1"], 2),
        (&["ping", "-4", "::1"], 2),
        (&["ping", "--baffle", "127.0.0.1"], 2),
        (&["ping"], 3),
        (&["ping", "-g", "10.0.0.9-10.0.0.1"], 3),
        (&["ping", "-B", "nan", "127.0.0.1"], 3),
        (&["ping", "-B", "1e308", "127.0.0.1"], 3),
        (&["ping", "-B", "9", "127.0.0.1"], 3),
        (&["ping", "-a", "-u", "127.0.0.1"], 3),
        (&["ping", "-H", "256", "127.0.0.1"], 3),
        (&["ping", "-S", "300.1.1.1", "127.0.0.1"], 3),
        (&["ping", "-O", "256", "127.0.0.1"], 3),
        (&["ping", "-N", "127.0.0.1"], 3),
        (&["ping", "-t", "99999y", "127.0.0.1", "127.0.0.2"], 3),
        (&["ping", "--baffle", "127.0.0.1", "127.0.0.2"], 3),
        (&["ping", "-l", "-c", "3", "127.0.0.1"], 3),
    ] {
        let out = sockbox()
            .args(args)
            .timeout(Duration::from_secs(10))
            .assert()
            .code(code);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_lowercase();
        assert!(!err.trim().is_empty(), "{args:?}: no message");
        if let Some(v) = args.get(2).filter(|_| args.len() > 3) {
            let named = err.contains(&v.to_lowercase()) || err.contains("unexpected");
            assert!(named || err.contains("cannot be used"), "{args:?}: {err}");
        }
    }
}

/// Ctrl-C prints the statistics so far; capabilities are gone while it runs.
#[test]
fn interrupt_prints_summary_and_capabilities_are_dropped() {
    if !require_root("interrupt_prints_summary_and_capabilities_are_dropped") {
        return;
    }
    let mut child = Guard(
        sockbox_std()
            .args(["ping", "-i", "0.05", "127.0.0.1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // Header, then wait for a second reply (bounded: read returns per line).
    let mut seen = Vec::new();
    for _ in 0..3 {
        if let Some(Ok(l)) = lines.next() {
            seen.push(l);
        }
    }
    assert!(seen.iter().any(|l| l.contains("icmp_seq=2")), "{seen:?}");
    let pid = child.0.id();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for t in tasks {
        let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
        for key in ["CapEff:", "CapPrm:"] {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            assert!(line.ends_with("0000000000000000"), "{line}");
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).take(200).collect();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        rest.iter()
            .any(|l| l == "--- 127.0.0.1 ping statistics ---"),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("0% packet loss")),
        "{rest:?}"
    );
}

/// Two namespaces on a veth pair: a host that exists and one that does not.
#[test]
fn missing_host_times_out_with_exit_1() {
    if !require_root("missing_host_times_out_with_exit_1") {
        return;
    }
    let a = Netns::new("pa");
    let b = Netns::new("pb");
    link(&a, "eth0", "10.201.1.1/24", &b, "eth0", "10.201.1.2/24");
    let st = a
        .sockbox()
        .args(["ping", "-c", "1", "-W", "0.5", "10.201.1.99"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("1 packets transmitted, 0 received, 100% packet loss"),
        "{text}"
    );

    let st = a
        .sockbox()
        .args(["ping", "-t", "300", "-r", "1", "10.201.1.2", "10.201.1.99"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("10.201.1.2 is alive"), "{text}");
    assert!(text.contains("10.201.1.99 is unreachable"), "{text}");
}

/// The datagram socket is used first where ping_group_range allows it,
/// also for an unprivileged user; where it does not and there is no
/// privilege, the error gives all three fixes.
#[test]
fn unprivileged_datagram_socket_and_the_denied_message() {
    if !require_root("unprivileged_datagram_socket_and_the_denied_message") {
        return;
    }
    let open = Netns::new("pd");
    open.sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    let bin = assert_cmd::cargo::cargo_bin("sockbox");
    let as_nobody = |ns: &Netns, args: &[&str]| {
        ns.command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .output()
            .unwrap()
    };
    for target in ["127.0.0.1", "::1"] {
        let out = as_nobody(&open, &["ping", "-c", "2", "-i", "0.05", "--json", target]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v = json_lines(&out.stdout);
        let totals = of_type(&v, "totals")[0];
        let key = if target.contains(':') {
            "socket_v6"
        } else {
            "socket_v4"
        };
        assert_eq!(totals[key], "dgram", "{totals}");
        assert_eq!(totals["received"], 2);
    }
    // Root in the same namespace also prefers the datagram socket.
    let out = open
        .sockbox()
        .args(["ping", "-c", "1", "--json", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(
        of_type(&json_lines(&out.stdout), "totals")[0]["socket_v4"],
        "dgram"
    );

    let closed = Netns::new("pc");
    closed.sh("sysctl -qw net.ipv4.ping_group_range='1 0'");
    let out = as_nobody(&closed, &["ping", "-c", "1", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for fix in ["run as root", "setcap cap_net_raw+ep", "ping_group_range"] {
        assert!(err.contains(fix), "{err}");
    }
    // fping style: fping's "system call failure", 4.
    let out = as_nobody(&closed, &["ping", "127.0.0.1", "127.0.0.2"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("setcap"),
        "{out:?}"
    );
}

/// A router that sends ICMP errors: they quote our probes and are reported
/// against the right target and sequence, on raw and on datagram sockets.
#[test]
fn icmp_errors_from_a_router_are_reported() {
    if !require_root("icmp_errors_from_a_router_are_reported") {
        return;
    }
    let a = Netns::new("pe");
    let r = Netns::new("pr");
    link(&a, "eth0", "10.203.0.1/24", &r, "eth0", "10.203.0.2/24");
    // No ICMP rate limit on the router: every expired probe gets its error.
    // (Errors from `prohibit` routes have a limiter of their own, 5 in a
    // burst, so those are used sparingly below.)
    r.sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0");
    r.ip(&["route", "add", "prohibit", "10.203.9.0/24"]);
    // Sent back out of the same link: a TTL of 1 expires at r.
    r.ip(&["route", "add", "10.203.5.0/24", "dev", "eth0"]);
    a.ip(&["route", "add", "default", "via", "10.203.0.2"]);
    // Raw sockets read the errors as packets; datagram sockets from the
    // socket's error queue.
    a.sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    // Prohibit errors first: the router's limiters share one bucket per
    // peer, which the (unlimited) TTL errors below leave empty.
    let args = ["ping", "--socket", "dgram", "-c", "1", "-W", "0.5"];
    let out = a.sockbox().args(args).arg("10.203.9.9").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let want = "From 10.203.0.2 icmp_seq=1 Communication prohibited by filter";
    assert!(text.contains(want), "{text}");
    // fping style reports errors on stderr.
    let args = ["ping", "--socket", "raw", "-t", "300", "-r", "0"];
    let out = a
        .sockbox()
        .args(args)
        .args(["10.203.9.9", "10.203.9.10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = "ICMP Unreachable (Communication Administratively Prohibited) from 10.203.0.2 \
                for ICMP Echo sent to 10.203.9.10";
    assert!(err.contains(want), "{err}");
    for kind in ["raw", "dgram"] {
        let args = [
            "ping", "--socket", kind, "--ttl", "1", "-c", "3", "-i", "0.1",
        ];
        let out = a
            .sockbox()
            .args(args)
            .args(["-W", "0.5", "10.203.5.5"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{kind}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for seq in 1..=3 {
            let line = format!("From 10.203.0.2 icmp_seq={seq} Time to live exceeded");
            assert!(text.contains(&line), "{kind}: {text}");
        }
        assert!(text.contains("+3 errors"), "{kind}: {text}");
    }
}

/// The "second host with 30% loss and 20 ms delay", built with a userspace
/// wire (no netem here): the reported loss and RTT match what the wire did.
#[test]
fn lossy_link_loss_and_rtt_match_the_emulation() {
    if !require_root("lossy_link_loss_and_rtt_match_the_emulation") {
        return;
    }
    let a = Netns::new("pl");
    let b = Netns::new("pm");
    for ns in [&a, &b] {
        // No IPv6 chatter on the wire: only our probes cross it.
        ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
    }
    let imp = lossy::Impairment {
        loss: 0.30,
        delay: Duration::from_millis(20),
    };
    let wire = lossy::Wire::new(&a, "10.204.0.1", &b, "10.204.0.2", imp);
    assert!(wait_until(5.0, || a
        .sockbox()
        .args(["ping", "-c", "1", "-W", "1", "10.204.0.2"])
        .output()
        .is_ok_and(|o| o.status.success())));
    let out = a
        .sockbox()
        .args([
            "ping",
            "-c",
            "300",
            "-i",
            "0.01",
            "-W",
            "1",
            "--json",
            "10.204.0.2",
        ])
        .output()
        .unwrap();
    let (seen, dropped) = wire.finish();
    let v = json_lines(&out.stdout);
    let s = of_type(&v, "summary")[0];
    let loss = s["loss_pct"].as_f64().unwrap();
    let wire_loss = dropped as f64 * 100.0 / seen as f64;
    // What we report is what the wire did (the warm-up probe is one extra
    // packet on the wire), and near what it was told.
    assert!(
        (loss - wire_loss).abs() < 1.5,
        "reported {loss}%, wire {wire_loss}% of {seen}"
    );
    assert!((20.0..=40.0).contains(&loss), "{loss}");
    let (min, avg) = (s["min_ms"].as_f64().unwrap(), s["avg_ms"].as_f64().unwrap());
    assert!(min >= 19.5, "min {min}");
    assert!((19.5..=40.0).contains(&avg), "avg {avg}");
    assert_eq!(s["sent"], 300);
    assert_eq!(out.status.code(), Some(0));
}
