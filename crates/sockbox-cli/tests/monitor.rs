//! Integration tests: `sockbox ping --serve` (the Prometheus prober) on
//! loopback, scraped by a real Prometheus server, reloaded with SIGHUP,
//! split into shards, and behind a slow userspace link in namespaces.

mod daemon;
mod prometheus;
mod shape;
mod wire;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::server::Spawned;
use crate::util::sockbox_std;

/// Start a prober with these arguments (after `ping --serve 127.0.0.1:0`)
/// and return it with its metrics address.
fn start_prober(args: &[&str]) -> (Spawned, SocketAddr) {
    let mut cmd = sockbox_std();
    cmd.args(["ping", "--serve", "127.0.0.1:0"]).args(args);
    let p = Spawned::start(cmd);
    let addr = p.wait_addr("listen=");
    (p, addr)
}

/// A test's HTTP GET (HTTP/1.0, the server closes): status and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// [`http_get`], failing with the error instead of panicking.
fn try_http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(split_response(&raw))
}

/// Status and body of a raw HTTP/1.x response.
fn split_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// The samples of `name` in an exposition: label text → value.
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.rsplit_once("} ") {
                Some((l, v)) => (l.to_owned(), v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => (String::new(), v),
                None => continue,
            },
        };
        out.insert(labels, value.trim().parse().unwrap());
    }
    out
}

/// The value of `name` for the series whose labels contain `host="HOST"`.
fn for_host(text: &str, name: &str, host: &str) -> Option<f64> {
    let want = format!("host=\"{host}\"");
    samples(text, name)
        .into_iter()
        .find(|(l, _)| l.split(',').any(|p| p == want))
        .map(|(_, v)| v)
}

/// Scrape until `cond` holds on the exposition (at most `secs`).
fn scrape_until(addr: SocketAddr, secs: u64, cond: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = http_get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        if cond(&body) {
            return body;
        }
        assert!(
            Instant::now() < until,
            "condition never held; last scrape:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
