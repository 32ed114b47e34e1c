//! A real Prometheus server (Debian's `prometheus`) scrapes the prober on
//! loopback; its HTTP API then has the series and a rate over them.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{start_prober, try_http_get};
use crate::util::server::Guard;
use crate::util::{in_ci, require_root};

/// A free loopback port (the listener is closed again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encode a query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run a PromQL query; the result vector.
fn query(prom: SocketAddr, q: &str) -> Vec<Value> {
    let Ok((200, body)) = try_http_get(prom, &format!("/api/v1/query?query={}", encode(q))) else {
        return Vec::new(); // not up yet
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Query until the result has `n` series, each with a value above `min`.
fn query_until(prom: SocketAddr, q: &str, n: usize, min: f64, secs: u64) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = query(prom, q);
        let ok = r.len() == n
            && r.iter().all(|s| {
                s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v > min)
            });
        if ok {
            return r;
        }
        assert!(Instant::now() < until, "{q}: {r:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_the_prober_and_computes_rates() {
    if !require_root("prometheus_scrapes_the_prober_and_computes_rates") {
        return;
    }
    if let Err(e) = Command::new("prometheus").arg("--version").output() {
        assert!(
            !in_ci(),
            "the prometheus binary is missing under CI=true: {e}"
        );
        eprintln!(
            "skipping prometheus_scrapes_the_prober_and_computes_rates: no prometheus ({e}); apt-get install prometheus"
        );
        return;
    }
    let (_prober, target) = start_prober(&["-i", "100ms", "127.0.0.1", "::1"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n\
             - job_name: sockbox\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let prom: SocketAddr = ([127, 0, 0, 1], port).into();
    let _server = Guard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Two scrapes at least, both up.
    query_until(
        prom,
        "count_over_time(up{job=\"sockbox\"}[1m]) >= 2",
        1,
        1.5,
        60,
    );
    query_until(prom, "up{job=\"sockbox\"}", 1, 0.5, 10);
    // The series, with smokeping_prober's labels.
    let series = query_until(prom, "smokeping_requests_total", 2, 0.0, 20);
    for s in &series {
        let m = &s["metric"];
        assert_eq!(m["job"], "sockbox");
        assert_eq!(m["host"], m["ip"], "{m}");
    }
    // Probes every 100 ms: about 10 per second per target.
    let rates = query_until(prom, "rate(smokeping_requests_total[5s])", 2, 5.0, 30);
    for r in &rates {
        let v: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v < 15.0, "{r}");
    }
    // The histogram works in PromQL: on loopback the median is below 10 ms.
    let q = "histogram_quantile(0.5, rate(smokeping_response_duration_seconds_bucket[5s]))";
    let med = query_until(prom, q, 2, 0.0, 20);
    for m in &med {
        let v: f64 = m["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v < 0.01, "{m}");
    }
    // The smallest bucket's le is the one smokeping_prober writes.
    let le = query(
        prom,
        "smokeping_response_duration_seconds_bucket{le=\"5e-05\"}",
    );
    assert_eq!(le.len(), 2, "{le:?}");
}
