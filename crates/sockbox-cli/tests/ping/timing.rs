//! Round-trip times under bursts: each probe's send time is its own (the
//! kernel's transmit timestamp) and the receive time is the kernel's, so
//! the place of a target in a burst does not show in its RTT.

use std::time::Duration;

use super::lossy::{Impairment, Wire};
use crate::util::netns::{Netns, wait_until};
use crate::util::require_root;

/// The RTT columns of `-C 1 -q` output (stderr), in ms; `-` is an error.
fn columns(err: &[u8]) -> Vec<Result<f64, String>> {
    String::from_utf8_lossy(err)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v = l.split(" : ").nth(1).unwrap_or("").trim();
            v.parse::<f64>().map_err(|_| l.to_owned())
        })
        .collect()
}

#[test]
fn a_loopback_burst_of_a_20_reports_every_rtt_below_1ms() {
    if !require_root("a_loopback_burst_of_a_20_reports_every_rtt_below_1ms") {
        return;
    }
    // Its own loopback: no other test's traffic in the way.
    let ns = Netns::new("lb");
    let out = ns
        .sockbox()
        .args(["ping", "-C", "1", "-q", "-i", "0", "-g", "127.0.0.0/20"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let rtts = columns(&out.stderr);
    assert_eq!(rtts.len(), 4094);
    for r in &rtts {
        let ms = r.as_ref().unwrap_or_else(|l| panic!("no reply: {l}"));
        assert!(*ms < 1.0, "{ms} ms");
    }
}

/// 1022 targets behind a link that delays every reply by 20 ms (a wire
/// in this test process between two namespaces, at real-time priority so
/// the burst does not starve it): sent in one burst, each reports 20 ms,
/// within 1 ms, wherever it was in the burst. The wire also notes the
/// round trip it really gave each echo, shown when the test fails.
#[test]
fn a_burst_over_a_20ms_link_reports_every_rtt_within_1ms_of_20ms() {
    if !require_root("a_burst_over_a_20ms_link_reports_every_rtt_within_1ms_of_20ms") {
        return;
    }
    let a = Netns::new("ta");
    let b = Netns::new("tb");
    for ns in [&a, &b] {
        ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
    }
    let imp = Impairment {
        loss: 0.0,
        delay: Duration::from_millis(20),
    };
    let wire = Wire::new(&a, "10.208.0.1", &b, "10.208.0.2", imp);
    // b answers for a whole /22; a routes it over the wire.
    b.ip(&["addr", "add", "10.209.0.0/22", "dev", "lo"]);
    a.ip(&["route", "add", "10.209.0.0/22", "dev", &wire.a_if]);
    assert!(wait_until(5.0, || a
        .sockbox()
        .args(["ping", "-c", "1", "-W", "1", "10.209.0.5"])
        .output()
        .is_ok_and(|o| o.status.success())));
    let out = a
        .sockbox()
        .args(["ping", "-C", "1", "-q", "-i", "0", "-t", "2000"])
        .args([
            "-g",
            &std::env::var("SBX_RANGE").unwrap_or_else(|_| "10.209.0.0/22".into()),
        ])
        .output()
        .expect("run");
    let truth = wire.truth();
    let (seen, _) = wire.finish();
    let rtts = columns(&out.stderr);
    assert!(seen >= 1022, "the wire saw {seen} replies");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(rtts.len(), 1022);
    let mut ms: Vec<f64> = rtts
        .iter()
        .map(|r| *r.as_ref().unwrap_or_else(|l| panic!("no reply: {l}")))
        .collect();
    let in_order = ms.clone();
    ms.sort_by(f64::total_cmp);
    let worst = ms.iter().map(|v| (v - 20.0).abs()).fold(0.0, f64::max);
    let (lo, mid, hi) = (ms[0], ms[ms.len() / 2], ms[ms.len() - 1]);
    let off: Vec<(usize, f64)> = in_order
        .iter()
        .enumerate()
        .filter(|(_, v)| (*v - 20.0).abs() > 1.0)
        .map(|(i, v)| (i, *v))
        .take(10)
        .collect();
    let wire: Vec<f64> = truth.values().map(|d| d.as_secs_f64() * 1000.0).collect();
    let wire_max = wire.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "reported: min {lo}, median {mid}, max {hi}; the wire gave {} echoes at most {wire_max} ms",
        wire.len()
    );
    assert!(
        worst <= 1.0,
        "an RTT is {worst} ms off 20 ms (min {lo}, median {mid}, max {hi}; first off: {off:?}; \
         the wire's own round trips were at most {wire_max} ms)"
    );
}
