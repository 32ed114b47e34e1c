//! What the prober exports, reloads and shards, on loopback.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{for_host, http_get, samples, scrape_until, start_prober};
use crate::util::{require_root, sockbox};

#[test]
fn serves_smokeping_metrics_for_every_target() {
    if !require_root("serves_smokeping_metrics_for_every_target") {
        return;
    }
    let (p, addr) = start_prober(&[
        "-i",
        "100ms",
        "127.0.0.1",
        "::1",
        "localhost",
        "127.0.0.0/30",
    ]);
    let text = scrape_until(addr, 10, |t| {
        ["127.0.0.1", "::1", "localhost", "127.0.0.2"]
            .iter()
            .all(|h| {
                for_host(t, "smokeping_response_duration_seconds_count", h).unwrap_or(0.0) >= 3.0
            })
    });
    // 127.0.0.1 twice: on its own and from the range; one series.
    assert_eq!(
        samples(&text, "smokeping_requests_total").len(),
        4,
        "{text}"
    );
    let le = r#"host="127.0.0.1",ip="127.0.0.1",source="",le="5e-05""#;
    assert!(
        samples(&text, "smokeping_response_duration_seconds_bucket").contains_key(le),
        "{text}"
    );
    assert_eq!(for_host(&text, "smokeping_response_ttl", "::1"), Some(64.0));
    assert_eq!(for_host(&text, "sockbox_target_up", "localhost"), Some(1.0));
    assert_eq!(
        for_host(&text, "sockbox_target_lost_total", "127.0.0.2"),
        Some(0.0)
    );
    assert_eq!(
        for_host(&text, "sockbox_target_late_replies_total", "127.0.0.2"),
        Some(0.0)
    );
    for (labels, v) in samples(&text, "smokeping_requests_total") {
        let count = samples(&text, "smokeping_response_duration_seconds_count")[&labels];
        // Loopback loses nothing: every settled probe was answered.
        assert!(
            (v - count).abs() < 0.5,
            "{labels}: {v} requests, {count} replies"
        );
    }
    let (status, page) = http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("/metrics"));
    assert_eq!(http_get(addr, "/nope").0, 404);
    // promtool, from the prometheus package, accepts the output.
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "promtool: {out:?}");
        }
        Err(e) => {
            assert!(
                !crate::util::in_ci(),
                "promtool is missing under CI=true: {e}"
            );
            eprintln!("skipping the promtool check: {e} (apt-get install prometheus)");
        }
    }
    drop(p);
}

#[test]
fn sighup_reload_keeps_the_counters_of_targets_that_stay() {
    if !require_root("sighup_reload_keeps_the_counters_of_targets_that_stay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("targets.yml");
    let write = |hosts: &str| {
        std::fs::write(
            &cfg,
            format!("targets:\n- hosts: [{hosts}]\n  interval: 100ms\n  labels: {{dc: lab}}\n"),
        )
        .unwrap();
    };
    write("127.0.0.1, 127.0.0.2");
    let (p, addr) = start_prober(&["--config", cfg.to_str().unwrap()]);
    let before = scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.1").unwrap_or(0.0) >= 10.0
    });
    let kept = for_host(&before, "smokeping_requests_total", "127.0.0.1").unwrap();
    assert!(before.contains(r#"dc="lab",host="127.0.0.2""#), "{before}");

    write("127.0.0.1, 127.0.0.3");
    p.signal(Signal::SIGHUP);
    let after = scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.3").unwrap_or(0.0) >= 1.0
    });
    let now = for_host(&after, "smokeping_requests_total", "127.0.0.1").unwrap();
    assert!(now >= kept, "counter went back from {kept} to {now}");
    assert_eq!(
        for_host(&after, "smokeping_requests_total", "127.0.0.2"),
        None
    );

    // A broken file: the configuration in force stays, the failure shows.
    std::fs::write(&cfg, "targets: [").unwrap();
    p.signal(Signal::SIGHUP);
    let broken = scrape_until(addr, 10, |t| {
        samples(t, "smokeping_prober_config_last_reload_successful").get("") == Some(&0.0)
    });
    assert!(for_host(&broken, "smokeping_requests_total", "127.0.0.3").is_some());
    assert_eq!(
        samples(&broken, "sockbox_config_reload_failures_total").get(""),
        Some(&1.0)
    );
    p.wait_for_stderr("reload failed", Duration::from_secs(5));

    // A file that reads well but names a host that cannot be one fails
    // the reload too, and the metrics say so as for a syntax error.
    write("127.0.0.1, 127.0.0.3");
    p.signal(Signal::SIGHUP);
    scrape_until(addr, 10, |t| {
        samples(t, "smokeping_prober_config_last_reload_successful").get("") == Some(&1.0)
    });
    write("\"bad host!\"");
    p.signal(Signal::SIGHUP);
    let bad = scrape_until(addr, 10, |t| {
        samples(t, "smokeping_prober_config_last_reload_successful").get("") == Some(&0.0)
    });
    assert_eq!(
        samples(&bad, "sockbox_config_reload_failures_total").get(""),
        Some(&2.0)
    );
    assert!(for_host(&bad, "smokeping_requests_total", "127.0.0.3").is_some());
}

/// Under --serve, ping's flags keep their units: -p and -t as fping (a
/// bare number is milliseconds), so `-p 200` probes five times a second.
#[test]
fn serve_takes_fping_units_for_p_and_t() {
    if !require_root("serve_takes_fping_units_for_p_and_t") {
        return;
    }
    let (_p, addr) = start_prober(&["-p", "200", "-t", "150", "127.0.0.1"]);
    let text = scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.1").unwrap_or(0.0) >= 5.0
    });
    assert!(for_host(&text, "smokeping_requests_total", "127.0.0.1").is_some());
}

#[test]
fn shards_cover_every_target_exactly_once() {
    if !require_root("shards_cover_every_target_exactly_once") {
        return;
    }
    let probers: Vec<_> = (1..=3)
        .map(|i| {
            let shard = format!("{i}/3");
            start_prober(&[
                "--shard",
                &shard,
                "-i",
                "200ms",
                "-g",
                "127.0.1.0/26",
                "a..invalid",
            ])
        })
        .collect();
    let mut union = BTreeSet::new();
    let mut total = 0;
    for (_, addr) in &probers {
        let text = http_get(*addr, "/metrics").1;
        let hosts: BTreeSet<String> = samples(&text, "sockbox_target_up")
            .keys()
            .filter_map(|l| {
                l.split(',').find_map(|p| {
                    p.strip_prefix("host=\"")?
                        .strip_suffix('"')
                        .map(str::to_owned)
                })
            })
            .collect();
        assert!(!hosts.is_empty(), "a shard with nothing: {text}");
        total += hosts.len();
        union.extend(hosts);
    }
    // 62 addresses of the /26 and one name that does not resolve.
    assert_eq!(union.len(), 63, "{union:?}");
    assert_eq!(total, 63, "a target in two shards");
    assert!(union.contains("a..invalid"));
}

#[test]
fn prober_usage_errors_exit_2() {
    for args in [
        &["ping", "--serve", "127.0.0.1:0"][..],
        &["ping", "--serve", "nonsense", "127.0.0.1"],
        &[
            "ping",
            "--serve",
            "127.0.0.1:0",
            "--shard",
            "4/3",
            "127.0.0.1",
        ],
        &[
            "ping",
            "--serve",
            "127.0.0.1:0",
            "--buckets",
            "1,0.5",
            "127.0.0.1",
        ],
        &["ping", "--serve", "127.0.0.1:0", "-c", "3", "127.0.0.1"],
        &[
            "ping",
            "--serve",
            "127.0.0.1:0",
            "--config",
            "/nonexistent.yml",
        ],
        &["ping", "--shard", "1/2", "127.0.0.1"],
    ] {
        let out = sockbox()
            .args(args)
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

/// A scraper that accepts gzip (Prometheus sends `Accept-Encoding: gzip`)
/// gets the same exposition compressed, as from Go's client; `q=0` or no
/// header gets plain text.
#[test]
fn metrics_are_gzipped_for_a_scraper_that_accepts_it() {
    if !require_root("metrics_are_gzipped_for_a_scraper_that_accepts_it") {
        return;
    }
    let (_p, addr) = start_prober(&["-i", "100ms", "127.0.0.1", "127.0.0.2"]);
    scrape_until(addr, 20, |t| t.contains("smokeping_requests_total{"));
    let get = |accept: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nAccept-Encoding: {accept}\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        (head, raw[end + 4..].to_vec())
    };
    let (head, body) = get("deflate, gzip;q=0.8");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("a whole gzip stream");
    // The same smokeping series as a plain scrape (the values move on).
    let names = |t: &str| -> BTreeSet<String> {
        t.lines()
            .filter(|l| l.starts_with("smokeping_"))
            .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| k.to_owned()))
            .collect()
    };
    let (plain_head, plain) = get("gzip;q=0, identity");
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(names(&text), names(&plain));
    assert!(
        text.contains("smokeping_response_duration_seconds_bucket{"),
        "{text}"
    );
    let (_, status_plain) = http_get(addr, "/metrics");
    assert!(status_plain.starts_with("# HELP"), "{status_plain}");
}

/// An empty label value is no label: a host in a group with `dc: ""` and
/// in one without `dc` is one series, not two with the same labels (found
/// by review: Prometheus would drop one as a duplicate sample).
#[test]
fn an_empty_label_value_makes_no_second_series() {
    if !require_root("an_empty_label_value_makes_no_second_series") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("targets.yml");
    std::fs::write(
        &cfg,
        "targets:\n- hosts: [127.0.0.3]\n  interval: 100ms\n  labels: {dc: \"\"}\n\
         - hosts: [127.0.0.3, 127.0.0.4]\n  interval: 100ms\n  labels: {dc: lab}\n\
         - hosts: [127.0.0.3]\n  interval: 100ms\n",
    )
    .unwrap();
    let (_p, addr) = start_prober(&["--config", cfg.to_str().unwrap()]);
    let text = scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.4").unwrap_or(0.0) >= 1.0
    });
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("smokeping_requests_total{") && l.contains("\"127.0.0.3\""))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(r#"dc="""#)), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains(r#"dc="lab""#)),
        "{lines:#?}"
    );
}
