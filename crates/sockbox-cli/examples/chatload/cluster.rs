//! `chatload cluster`: receivers and senders spread over the nodes of a
//! room (or one node), every line stamped with its sender, sequence number
//! and send time, so each receiver checks delivery, order and integrity per
//! sender and measures latency, same-node and cross-node apart.
//!
//! A line's body is `c SENDER SEQ SENT_US PAD`: `SENDER` is `NODE.INDEX`,
//! `SENT_US` microseconds since the run's start when its chunk was written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{connect_many, settle};

/// Latency buckets: bucket `i` holds values up to `1.05^i` µs.
const BUCKETS: usize = 480;

fn bucket(us: u64) -> usize {
    let b = ((us.max(1) as f64).ln() / 1.05f64.ln()).ceil() as usize;
    b.min(BUCKETS - 1)
}

/// A latency histogram.
#[derive(Clone)]
struct Hist(Vec<u64>);

impl Hist {
    fn new() -> Self {
        Self(vec![0; BUCKETS])
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    /// The `q` quantile in ms.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= want {
                return 1.05f64.powi(i as i32) / 1000.0;
            }
        }
        0.0
    }
}

/// What one run is.
pub struct Plan {
    pub nodes: Vec<SocketAddr>,
    pub receivers: usize,
    pub senders: usize,
    pub lines: usize,
    pub size: usize,
    pub idle: f64,
    pub chunk: usize,
    /// Lines per second per sender (`None`: as fast as the server takes them).
    pub rate: Option<f64>,
}

#[derive(Default)]
struct Totals {
    delivered: AtomicUsize,
    corrupted: AtomicUsize,
    out_of_order: AtomicUsize,
    bytes: AtomicU64,
    last_us: AtomicU64,
}

struct Shared {
    t0: Instant,
    totals: Totals,
    /// (same-node, cross-node) histograms merged by finished receivers.
    hists: std::sync::Mutex<(Hist, Hist)>,
    lines: usize,
    /// Lines each receiver expects (every sender's but its own node's
    /// senders are other clients: all of them).
    expected_each: usize,
}

/// Parse `<nick> c N.I SEQ US ...`: (sender node, sender key, seq, sent µs).
fn parse(line: &[u8]) -> Option<(usize, String, usize, u64)> {
    let rest = line.strip_prefix(b"<")?;
    let gt = rest.windows(2).position(|w| w == b"> ")?;
    let text = std::str::from_utf8(&rest[gt + 2..]).ok()?;
    let mut f = text.split(' ');
    if f.next()? != "c" {
        return None;
    }
    let sender = f.next()?;
    let node: usize = sender.split('.').next()?.parse().ok()?;
    let seq = f.next()?.parse().ok()?;
    let us = f.next()?.parse().ok()?;
    let pad = f.next()?;
    if f.next().is_some() || !pad.bytes().all(|b| b == b'x') {
        return None;
    }
    Some((node, sender.to_owned(), seq, us))
}

async fn receiver(mut s: TcpStream, me: usize, sh: Arc<Shared>) {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut have, mut got) = (0, 0);
    let mut next: HashMap<String, usize> = HashMap::new();
    let (mut same, mut cross) = (Hist::new(), Hist::new());
    while got < sh.expected_each {
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = sh.t0.elapsed().as_micros() as u64;
        sh.totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
        have += n;
        let mut start = 0;
        let mut delivered = 0;
        while let Some(i) = buf[start..have].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + i];
            start += i + 1;
            if line.starts_with(b"***") || line.is_empty() {
                continue;
            }
            let Some((node, key, seq, us)) = parse(line) else {
                sh.totals.corrupted.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let want = next.entry(key).or_insert(0);
            if seq < *want || seq >= sh.lines {
                sh.totals.out_of_order.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            *want = seq + 1;
            delivered += 1;
            let h = if node == me { &mut same } else { &mut cross };
            h.0[bucket(now.saturating_sub(us))] += 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            sh.totals.corrupted.fetch_add(1, Ordering::Relaxed);
            have = 0;
        }
        if delivered > 0 {
            got += delivered;
            sh.totals.delivered.fetch_add(delivered, Ordering::Relaxed);
            sh.totals.last_us.fetch_max(now, Ordering::Relaxed);
        }
    }
    {
        let mut h = sh.hists.lock().unwrap();
        h.0.add(&same);
        h.1.add(&cross);
    }
    // Keep reading so the server never sees this client as slow.
    let mut sink = vec![0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// One sender: `lines` lines in chunks of `chunk`, each chunk stamped
/// when it is written.
async fn sender(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    key: String,
    p: Arc<Shared>,
    (size, chunk, rate): (usize, usize, Option<f64>),
) {
    let mut seq = 0;
    let start = tokio::time::Instant::now();
    while seq < p.lines {
        if let Some(r) = rate {
            tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / r)).await;
        }
        let mut data = Vec::with_capacity(chunk * (size + 1));
        let us = p.t0.elapsed().as_micros() as u64;
        for s in seq..(seq + chunk).min(p.lines) {
            let head = format!("c {key} {s:08} {us:012} ");
            data.extend_from_slice(head.as_bytes());
            data.resize(
                data.len() + size.saturating_sub(head.len() + 1).max(1),
                b'x',
            );
            data.push(b'\n');
        }
        seq = (seq + chunk).min(p.lines);
        if w.write_all(&data).await.is_err() {
            return;
        }
    }
}

/// Run the plan; prints one JSON object.
pub async fn run(p: Plan) {
    let n_nodes = p.nodes.len();
    let expected_each = n_nodes * p.senders * p.lines;
    let sh = Arc::new(Shared {
        t0: Instant::now(),
        totals: Totals::default(),
        hists: std::sync::Mutex::new((Hist::new(), Hist::new())),
        lines: p.lines,
        expected_each,
    });
    let mut tasks = Vec::new();
    let mut connected = 0;
    for (i, addr) in p.nodes.iter().enumerate() {
        for s in connect_many(*addr, p.receivers).await {
            connected += 1;
            tasks.push(tokio::spawn(receiver(s, i, sh.clone())));
        }
    }
    settle(
        &sh.totals.bytes,
        Duration::from_millis(800),
        Duration::from_secs(60),
    )
    .await;
    let mut writers = Vec::new();
    let mut drains = Vec::new();
    for (i, addr) in p.nodes.iter().enumerate() {
        for j in 0..p.senders {
            let s = TcpStream::connect(addr).await.expect("sender connects");
            let (mut r, w) = s.into_split();
            drains.push(tokio::spawn(async move {
                let mut sink = vec![0u8; 64 * 1024];
                while let Ok(n) = r.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            }));
            writers.push((w, format!("{i}.{j}")));
        }
    }
    settle(
        &sh.totals.bytes,
        Duration::from_millis(800),
        Duration::from_secs(30),
    )
    .await;
    let start_us = sh.t0.elapsed().as_micros() as u64;
    let sends: Vec<_> = writers
        .into_iter()
        .map(|(w, key)| tokio::spawn(sender(w, key, sh.clone(), (p.size, p.chunk, p.rate))))
        .collect();
    let expected = connected * expected_each;
    let mut last = 0;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let d = sh.totals.delivered.load(Ordering::Relaxed);
        if d >= expected {
            break;
        }
        let b = sh.totals.bytes.load(Ordering::Relaxed);
        if b != last {
            last = b;
            since = Instant::now();
        } else if since.elapsed().as_secs_f64() >= p.idle {
            break;
        }
    }
    report(&p, &sh, connected, expected, start_us);
    for t in sends.into_iter().chain(drains).chain(tasks) {
        t.abort();
    }
}

fn report(p: &Plan, sh: &Shared, connected: usize, expected: usize, start_us: u64) {
    let delivered = sh.totals.delivered.load(Ordering::Relaxed);
    let elapsed = (sh
        .totals
        .last_us
        .load(Ordering::Relaxed)
        .saturating_sub(start_us)) as f64
        / 1e6;
    let (same, cross) = sh.hists.lock().unwrap().clone();
    let out = serde_json::json!({
        "nodes": p.nodes.len(),
        "receivers_per_node": p.receivers,
        "senders_per_node": p.senders,
        "lines_per_sender": p.lines,
        "rate_per_sender": p.rate,
        "connected": connected,
        "expected": expected,
        "delivered": delivered,
        "lost": expected.saturating_sub(delivered),
        "corrupted": sh.totals.corrupted.load(Ordering::Relaxed),
        "out_of_order": sh.totals.out_of_order.load(Ordering::Relaxed),
        "elapsed_s": elapsed,
        "deliveries_per_s": if elapsed > 0.0 { delivered as f64 / elapsed } else { 0.0 },
        "sent_lines_per_s": if elapsed > 0.0 { (p.nodes.len() * p.senders * p.lines) as f64 / elapsed } else { 0.0 },
        "same_node_p50_ms": same.quantile_ms(0.5),
        "same_node_p99_ms": same.quantile_ms(0.99),
        "cross_node_p50_ms": cross.quantile_ms(0.5),
        "cross_node_p99_ms": cross.quantile_ms(0.99),
    });
    println!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_buckets_order() {
        let l = b"<user1> c 2.0 00000012 000000001234 xxxx";
        assert_eq!(parse(l), Some((2, "2.0".into(), 12, 1234)));
        assert_eq!(parse(b"<u> c 2.0 1 2 xxyx"), None);
        assert!(bucket(10) < bucket(1000));
        let mut h = Hist::new();
        h.0[bucket(1000)] += 99;
        h.0[bucket(50_000)] += 1;
        assert!((h.quantile_ms(0.5) - 1.0).abs() < 0.06);
        assert!(h.quantile_ms(0.999) > 40.0);
    }
}
