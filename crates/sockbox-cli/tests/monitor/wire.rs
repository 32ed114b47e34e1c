//! The RTT histogram against a link of known delay: a userspace wire
//! between two namespaces delays every reply by 20 ms, so the probes land
//! in the (12.8 ms, 25.6 ms] bucket.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{samples, split_response};
use crate::ping::lossy::{Impairment, Wire};
use crate::util::netns::{Netns, wait_until};
use crate::util::require_root;
use crate::util::server::Spawned;

/// Scrape `port` on the namespace's loopback (with `sockbox connect`).
fn scrape_in(ns: &Netns, port: u16) -> String {
    let mut child = ns
        .sockbox()
        .args(["connect", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (status, body) = split_response(&out.stdout);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn rtt_histogram_buckets_match_the_wire_delay() {
    if !require_root("rtt_histogram_buckets_match_the_wire_delay") {
        return;
    }
    let a = Netns::new("ma");
    let b = Netns::new("mb");
    for ns in [&a, &b] {
        ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
    }
    let imp = Impairment {
        loss: 0.0,
        delay: Duration::from_millis(20),
    };
    let _wire = Wire::new(&a, "10.205.0.1", &b, "10.205.0.2", imp);
    assert!(wait_until(5.0, || a
        .sockbox()
        .args(["ping", "-c", "1", "-W", "1", "10.205.0.2"])
        .output()
        .is_ok_and(|o| o.status.success())));
    let mut cmd = a.sockbox();
    cmd.args(["ping", "--serve", "127.0.0.1:0", "-i", "50ms", "10.205.0.2"]);
    let prober = Spawned::start(cmd);
    let port = prober.wait_addr("listen=").port();
    let until = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let t = scrape_in(&a, port);
        let n = samples(&t, "smokeping_response_duration_seconds_count")
            .values()
            .next()
            .copied()
            .unwrap_or(0.0);
        if n >= 40.0 {
            break t;
        }
        assert!(Instant::now() < until, "too few replies: {t}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let buckets = samples(&text, "smokeping_response_duration_seconds_bucket");
    let le = |b: &str| -> u64 {
        let Some((_, v)) = buckets
            .iter()
            .find(|(l, _)| l.ends_with(&format!("le=\"{b}\"")))
        else {
            panic!("no le={b}: {text}");
        };
        *v as u64
    };
    let count = le("+Inf");
    assert!(count >= 40, "{text}");
    // Nothing faster than the wire; (nearly) everything in the bucket of
    // 20 ms; the wire is a thread of this test on a busy machine, so a few
    // replies may leave it late, but never by a whole bucket more.
    assert_eq!(le("0.0128"), 0, "an RTT under the wire's 20 ms: {text}");
    assert!(
        le("0.0256") * 10 >= count * 9,
        "over 10% above 25.6 ms: {text}"
    );
    assert_eq!(le("0.0512"), count, "an RTT over 51.2 ms: {text}");
    let sum = samples(&text, "smokeping_response_duration_seconds_sum")
        .values()
        .next()
        .copied()
        .unwrap();
    let mean = sum / count as f64;
    assert!((0.0195..0.0256).contains(&mean), "mean {mean}");
    drop(prober);
}
