//! Load generator for `bench/chat.sh`: drives any line chat server that
//! prefixes messages with `<nick> ` (sockbox chat, `ncat --chat`).
//!
//! ```text
//! chatload fanout HOST PORT --receivers 100 --lines 20000 [--size 64]
//! chatload idle HOST PORT --clients 10000 [--hold 5]
//! ```
//!
//! `fanout` connects the receivers, then one sender that writes `--lines`
//! numbered lines as fast as it can; every receiver checks every line it
//! gets. A line counts as delivered when it arrives whole, with its `<nick> `
//! prefix, in order; anything else that is not a server notice counts as
//! corrupted. One JSON object with the totals is printed.
//!
//! `idle` connects `--clients` clients that only read, prints `ready` with
//! the number connected, holds them `--hold` seconds, and exits.
//!
//! `cluster` spreads receivers and senders over the nodes of a clustered
//! room (see `cluster.rs`):
//!
//! ```text
//! chatload cluster --nodes H:P,H:P,H:P --receivers 300 --senders 1 --lines 20000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cluster;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Debug, clap::Parser)]
enum Cmd {
    /// One sender, many receivers.
    Fanout {
        host: String,
        port: u16,
        #[arg(long, default_value_t = 100)]
        receivers: usize,
        #[arg(long, default_value_t = 20_000)]
        lines: usize,
        /// Bytes per line sent, newline included.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Give up when nothing arrives for this many seconds.
        #[arg(long, default_value_t = 3.0)]
        idle: f64,
        /// Write each line with its own write call (like an interactive
        /// client) instead of 64 KiB at a time (like `cat file | nc`).
        #[arg(long)]
        per_line: bool,
    },
    /// Receivers and senders on every node of a clustered room.
    Cluster {
        /// The nodes, `HOST:PORT` separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// Receivers per node.
        #[arg(long, default_value_t = 300)]
        receivers: usize,
        /// Senders per node.
        #[arg(long, default_value_t = 1)]
        senders: usize,
        /// Lines per sender.
        #[arg(long, default_value_t = 20_000)]
        lines: usize,
        /// Bytes per line sent, newline included.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Lines per write (each write is stamped with its time).
        #[arg(long, default_value_t = 64)]
        chunk: usize,
        /// Give up when nothing arrives for this many seconds.
        #[arg(long, default_value_t = 5.0)]
        idle: f64,
        /// Lines per second per sender (default: as fast as the server takes them).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Many clients that only read.
    Idle {
        host: String,
        port: u16,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
    },
}

/// The body of line `seq`: `m SEQ PAYLOAD`, `size - 1` bytes long.
fn body(seq: usize, size: usize) -> Vec<u8> {
    let mut v = format!("m {seq:08} ").into_bytes();
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut i = seq;
    while v.len() < size.max(13) - 1 {
        v.push(alphabet[i % alphabet.len()]);
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    v
}

#[derive(Default)]
struct Totals {
    delivered: AtomicUsize,
    corrupted: AtomicUsize,
    bytes: AtomicU64,
    /// Time of the last delivered line, in µs since the start.
    last_us: AtomicU64,
    /// Time of the last byte received, in µs since the start.
    last_byte_us: AtomicU64,
}

/// Check one received line against the expected bodies: `Ok(true)` for a
/// whole message in order (gaps are lost lines, not corruption), `Ok(false)`
/// for a server notice, `Err` for anything else.
fn check(line: &[u8], bodies: &[Vec<u8>], next: &mut usize) -> Result<bool, ()> {
    if line.starts_with(b"***") || line.starts_with(b"<announce>") || line.is_empty() {
        return Ok(false); // server notice
    }
    let Some(rest) = line.strip_prefix(b"<") else {
        return Err(());
    };
    let Some(gt) = rest.windows(2).position(|w| w == b"> ") else {
        return Err(());
    };
    let text = &rest[gt + 2..];
    if text.len() < 11 || !text.starts_with(b"m ") {
        return Err(());
    }
    let seq: usize = std::str::from_utf8(&text[2..10])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(())?;
    if seq < *next || bodies.get(seq).is_none_or(|b| text != b.as_slice()) {
        return Err(());
    }
    *next = seq + 1;
    Ok(true)
}

async fn receiver(
    mut s: TcpStream,
    bodies: Arc<Vec<Vec<u8>>>,
    lines: usize,
    totals: Arc<Totals>,
    start: Arc<std::sync::OnceLock<Instant>>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0;
    let mut next = 0;
    loop {
        if have == buf.len() {
            // A "line" longer than the buffer: corrupt, drop it.
            totals.corrupted.fetch_add(1, Ordering::Relaxed);
            have = 0;
        }
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(t0) = start.get() {
            totals
                .last_byte_us
                .fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        have += n;
        let mut start_of_line = 0;
        let mut delivered = 0;
        while let Some(i) = buf[start_of_line..have].iter().position(|&b| b == b'\n') {
            let mut line = &buf[start_of_line..start_of_line + i];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            match check(line, &bodies, &mut next) {
                Ok(true) => delivered += 1,
                Ok(false) => {}
                Err(()) => {
                    totals.corrupted.fetch_add(1, Ordering::Relaxed);
                }
            }
            start_of_line += i + 1;
        }
        buf.copy_within(start_of_line..have, 0);
        have -= start_of_line;
        if delivered > 0 {
            totals.delivered.fetch_add(delivered, Ordering::Relaxed);
            if let Some(t0) = start.get() {
                totals
                    .last_us
                    .fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        }
        if next >= lines && have == 0 {
            // Everything arrived; keep draining so the server never sees us as slow.
            let mut sink = vec![0u8; 64 * 1024];
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    return;
                }
            }
            return;
        }
    }
}

/// Wait until `bytes` stops changing for `quiet`, at most `max`.
async fn settle(bytes: &AtomicU64, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    let mut last = bytes.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = bytes.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

async fn connect_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let sem = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.ok()?;
            tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
                .await
                .ok()?
                .ok()
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Some(s)) = t.await {
            out.push(s);
        }
    }
    out
}

async fn fanout(
    addr: SocketAddr,
    receivers: usize,
    lines: usize,
    size: usize,
    idle: f64,
    per_line: bool,
) {
    let totals = Arc::new(Totals::default());
    let start = Arc::new(std::sync::OnceLock::new());
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..lines).map(|i| body(i, size)).collect());
    let conns = connect_many(addr, receivers).await;
    let connected = conns.len();
    let mut tasks = Vec::new();
    for s in conns {
        tasks.push(tokio::spawn(receiver(
            s,
            bodies.clone(),
            lines,
            totals.clone(),
            start.clone(),
        )));
    }
    settle(
        &totals.bytes,
        Duration::from_millis(500),
        Duration::from_secs(60),
    )
    .await;
    let sender = TcpStream::connect(addr).await.expect("sender connects");
    let (mut sr, mut sw) = sender.into_split();
    // The sender drains what it is sent, so it is never the slow one.
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        while let Ok(n) = sr.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    });
    settle(
        &totals.bytes,
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .await;
    let mut data = Vec::with_capacity(lines * size);
    for b in bodies.iter() {
        data.extend_from_slice(b);
        data.push(b'\n');
    }
    let t0 = Instant::now();
    let _ = start.set(t0);
    let chunk = if per_line { size } else { 64 * 1024 };
    for c in data.chunks(chunk) {
        if sw.write_all(c).await.is_err() {
            break;
        }
    }
    let sent_s = t0.elapsed().as_secs_f64();
    let expected = receivers * lines;
    // Wait for everything, or until nothing arrives for `idle` seconds.
    let mut last = totals.bytes.load(Ordering::Relaxed);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if totals.delivered.load(Ordering::Relaxed) >= connected * lines {
            break;
        }
        let now = totals.bytes.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed().as_secs_f64() >= idle {
            break;
        }
    }
    let delivered = totals.delivered.load(Ordering::Relaxed);
    // Throughput over the time until the last byte arrived, so a server
    // that mangles lines is not credited with a short run.
    let elapsed = totals.last_byte_us.load(Ordering::Relaxed) as f64 / 1e6;
    let last_line = totals.last_us.load(Ordering::Relaxed) as f64 / 1e6;
    let out = serde_json::json!({
        "receivers": receivers,
        "connected": connected,
        "lines": lines,
        "size": size,
        "per_line": per_line,
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered.min(expected),
        "corrupted": totals.corrupted.load(Ordering::Relaxed),
        "send_s": sent_s,
        "elapsed_s": elapsed,
        "last_line_s": last_line,
        "msgs_per_s": if elapsed > 0.0 { delivered as f64 / elapsed } else { 0.0 },
    });
    println!("{out}");
    drop(sw);
    drain.abort();
    for t in tasks {
        t.abort();
    }
}

async fn idle_clients(addr: SocketAddr, clients: usize, hold: f64) {
    let bytes = Arc::new(AtomicU64::new(0));
    let conns = connect_many(addr, clients).await;
    let connected = conns.len();
    let alive = Arc::new(AtomicUsize::new(connected));
    let mut tasks = Vec::new();
    for mut s in conns {
        let bytes = bytes.clone();
        let alive = alive.clone();
        tasks.push(tokio::spawn(async move {
            let mut sink = vec![0u8; 4096];
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    break;
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            alive.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    settle(&bytes, Duration::from_secs(1), Duration::from_secs(120)).await;
    println!("ready {connected} {}", alive.load(Ordering::Relaxed));
    let _ = tokio::io::stdout().flush().await;
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    let out = serde_json::json!({
        "clients": clients,
        "connected": connected,
        "alive": alive.load(Ordering::Relaxed),
        "bytes_received": bytes.load(Ordering::Relaxed),
    });
    println!("{out}");
    for t in tasks {
        t.abort();
    }
}

fn resolve(host: &str, port: u16) -> SocketAddr {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .expect("resolvable host")
        .next()
        .expect("an address")
}

fn main() {
    use clap::Parser;
    let cmd = Cmd::parse();
    sockbox::sys::rlimit::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        match cmd {
            Cmd::Fanout {
                host,
                port,
                receivers,
                lines,
                size,
                idle,
                per_line,
            } => fanout(resolve(&host, port), receivers, lines, size, idle, per_line).await,
            Cmd::Idle {
                host,
                port,
                clients,
                hold,
            } => idle_clients(resolve(&host, port), clients, hold).await,
            Cmd::Cluster {
                nodes,
                receivers,
                senders,
                lines,
                size,
                chunk,
                idle,
                rate,
            } => {
                let nodes = nodes
                    .iter()
                    .map(|n| {
                        let (h, p) = n.rsplit_once(':').expect("HOST:PORT");
                        resolve(h, p.parse().expect("a port"))
                    })
                    .collect();
                cluster::run(cluster::Plan {
                    nodes,
                    receivers,
                    senders,
                    lines,
                    size,
                    idle,
                    chunk: chunk.max(1),
                    rate: rate.filter(|r| *r > 0.0),
                })
                .await;
            }
        }
    });
    // Do not wait for the runtime to wind down thousands of sockets.
    std::process::exit(0);
}
