//! Zero-I/O port checks (`nc -z`): which ports of a host accept a
//! connection, many at once.
//!
//! [`parse_ports`] reads the port lists people type (`22`, `20-30`,
//! `22,80,8000-8100`); [`Scanner::run`] connects to each port (every
//! address of the host in turn, as a client would), closes at once what
//! answered, and reports each port **in the order given**, as soon as it
//! and every port before it are known. At most
//! [`Scanner::concurrency`] attempts are in flight, each bounded by
//! [`Scanner::timeout`].
//!
//! UDP has no handshake: an empty datagram is sent and the port counts as
//! closed when the host answers with ICMP port unreachable within the
//! timeout, as open otherwise (it may also be filtered).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sockbox::net::scan::{Scanner, parse_ports};
//! let ports = parse_ports("20-30,80")?;
//! let addrs = sockbox::net::resolve_async("127.0.0.1", 0, Default::default()).await?;
//! let ips: Vec<_> = addrs.iter().map(|a| a.ip()).collect();
//! let open = Scanner::new().run(&ips, &ports, |p| {
//!     if p.state.is_open() {
//!         println!("{} open", p.port);
//!     }
//! }).await;
//! println!("{open} open");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

mod probe;

/// Why a port list is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    /// The list (or one of its comma-separated parts) is empty.
    #[error("empty port in {list:?}: give ports such as 22, 20-30 or 22,80,443")]
    Empty {
        /// The whole list.
        list: String,
    },
    /// A part is not a number from 1 to 65535.
    #[error("{part:?} is not a port (1-65535)")]
    NotAPort {
        /// The part.
        part: String,
    },
    /// A range whose first port is larger than its last.
    #[error("{part:?}: the first port of a range must not exceed the last (write {last}-{first})")]
    Backwards {
        /// The part.
        part: String,
        /// Its first port.
        first: u16,
        /// Its last port.
        last: u16,
    },
}

fn one_port(part: &str, whole: &str) -> Result<u16, PortsError> {
    let t = part.trim();
    if t.is_empty() {
        return Err(PortsError::Empty {
            list: whole.to_owned(),
        });
    }
    match t.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortsError::NotAPort { part: t.to_owned() }),
    }
}

/// Parse a port list: ports and inclusive ranges separated by commas
/// (`22`, `20-30`, `1-1024`, `22,80,8000-8100`). Ports come out in the
/// order given, each once.
pub fn parse_ports(list: &str) -> Result<Vec<u16>, PortsError> {
    let mut seen = vec![false; 65_536];
    let mut out = Vec::new();
    let mut add = |p: u16, out: &mut Vec<u16>| {
        if !std::mem::replace(&mut seen[usize::from(p)], true) {
            out.push(p);
        }
    };
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (one_port(a, list)?, one_port(b, list)?);
                if lo > hi {
                    return Err(PortsError::Backwards {
                        part: part.trim().to_owned(),
                        first: lo,
                        last: hi,
                    });
                }
                for p in lo..=hi {
                    add(p, &mut out);
                }
            }
            None => add(one_port(part, list)?, &mut out),
        }
    }
    Ok(out)
}

/// TCP or UDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScanProto {
    /// A TCP handshake.
    #[default]
    Tcp,
    /// An empty datagram, then a wait for ICMP port unreachable.
    Udp,
}

/// What one port said.
#[derive(Debug)]
pub enum PortState {
    /// It accepted the connection (UDP: no ICMP port unreachable came back).
    Open(SocketAddr),
    /// Refused (TCP reset, ICMP port unreachable).
    Closed,
    /// No answer within the timeout.
    TimedOut,
    /// Another error (no route, out of file descriptors…), from the last
    /// address tried.
    Failed(io::Error),
}

impl PortState {
    /// True for [`PortState::Open`].
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open(_))
    }
}

/// The result for one port.
#[derive(Debug)]
pub struct Probe {
    /// The port.
    pub port: u16,
    /// What it said.
    pub state: PortState,
}

/// How to check ports.
#[derive(Clone, Debug)]
pub struct Scanner {
    timeout: Duration,
    concurrency: usize,
    proto: ScanProto,
    source: Option<IpAddr>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// TCP, 2 s per attempt, up to 256 attempts at once (fewer when the
    /// process may open fewer files).
    pub fn new() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            concurrency: 256,
            proto: ScanProto::Tcp,
            source: None,
        }
    }

    /// Give up on one address of one port after `t` (UDP: wait this long
    /// for a refusal).
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// At most `n` attempts in flight (at least 1; never more than the
    /// open-files limit allows, with room to spare).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// TCP or UDP.
    #[must_use]
    pub fn proto(mut self, p: ScanProto) -> Self {
        self.proto = p;
        self
    }

    /// Connect from this local address (port chosen by the system).
    #[must_use]
    pub fn source(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// Check `ports` on the host with addresses `ips`, calling `report`
    /// for each port in the order of `ports`; returns how many were open.
    /// Must run inside a tokio runtime; uses up to 4 worker tasks (one per
    /// core), so the system calls of a loopback scan spread over the cores.
    pub async fn run(&self, ips: &[IpAddr], ports: &[u16], mut report: impl FnMut(Probe)) -> usize {
        let workers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, 4)
            .min(ports.len().max(1));
        let cap = (self.in_flight() / workers).max(1);
        let ips: Arc<[IpAddr]> = ips.into();
        let ports: Arc<[u16]> = ports.into();
        let (tx, mut rx) = mpsc::unbounded_channel();
        for first in 0..workers {
            let job = Job {
                scanner: self.clone(),
                ips: Arc::clone(&ips),
                ports: Arc::clone(&ports),
                first,
                step: workers,
                cap,
                tx: tx.clone(),
            };
            tokio::spawn(job.run());
        }
        drop(tx);
        let mut done: BTreeMap<usize, Probe> = BTreeMap::new();
        let (mut next, mut open) = (0usize, 0usize);
        while let Some(batch) = rx.recv().await {
            done.extend(batch);
            while let Some(p) = done.remove(&next) {
                open += usize::from(p.state.is_open());
                report(p);
                next += 1;
            }
        }
        open
    }

    /// How many attempts may run at once: the asked concurrency, within
    /// the open-files limit.
    fn in_flight(&self) -> usize {
        let files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| {
                usize::try_from(soft).unwrap_or(usize::MAX)
            });
        self.concurrency.min(files.saturating_sub(64).max(1))
    }
}

/// One worker's share of a scan: ports `first`, `first + step`, …
struct Job {
    scanner: Scanner,
    ips: Arc<[IpAddr]>,
    ports: Arc<[u16]>,
    first: usize,
    step: usize,
    cap: usize,
    tx: mpsc::UnboundedSender<Vec<(usize, Probe)>>,
}

/// Results sent to the collector in batches of this many (one wake-up of
/// the collector per batch, not per port).
const BATCH: usize = 256;

impl Job {
    async fn run(self) {
        let mut pending = JoinSet::new();
        let mut batch = Vec::with_capacity(BATCH);
        for i in (self.first..self.ports.len()).step_by(self.step) {
            let port = self.ports[i];
            // A connect that the kernel answers at once (loopback, a
            // local refusal) needs no task and no wait.
            match probe::quick(&self.scanner, &self.ips, port) {
                probe::Quick::Done(state) => batch.push((i, Probe { port, state })),
                probe::Quick::Wait(first) => {
                    // Waiting may take a while: hand over what is settled.
                    self.flush(&mut batch);
                    while pending.len() >= self.cap {
                        collect(&mut batch, pending.join_next().await);
                    }
                    let (me, ips) = (self.scanner.clone(), Arc::clone(&self.ips));
                    pending.spawn(
                        async move { (i, port, probe::finish(&me, &ips, port, first).await) },
                    );
                }
            }
            while let Some(r) = pending.try_join_next() {
                collect(&mut batch, Some(r));
            }
            if batch.len() >= BATCH {
                self.flush(&mut batch);
                tokio::task::yield_now().await;
            }
        }
        while let Some(r) = pending.join_next().await {
            collect(&mut batch, Some(r));
            self.flush(&mut batch);
        }
        self.flush(&mut batch);
    }

    fn flush(&self, batch: &mut Vec<(usize, Probe)>) {
        if !batch.is_empty() {
            let _ = self
                .tx
                .send(std::mem::replace(batch, Vec::with_capacity(BATCH)));
        }
    }
}

type Finished = Result<(usize, u16, PortState), tokio::task::JoinError>;

fn collect(batch: &mut Vec<(usize, Probe)>, r: Option<Finished>) {
    if let Some(Ok((i, port, state))) = r {
        batch.push((i, Probe { port, state }));
    }
}

#[cfg(test)]
mod tests;
