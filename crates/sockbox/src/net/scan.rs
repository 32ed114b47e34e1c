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

use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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
    /// Must run inside a tokio runtime.
    pub async fn run(&self, ips: &[IpAddr], ports: &[u16], mut report: impl FnMut(Probe)) -> usize {
        let permits = Arc::new(Semaphore::new(self.in_flight()));
        let ips: Arc<[IpAddr]> = ips.into();
        let mut tasks = JoinSet::new();
        let mut done: BTreeMap<usize, Probe> = BTreeMap::new();
        let (mut next, mut open) = (0usize, 0usize);
        let mut deliver = |done: &mut BTreeMap<usize, Probe>, next: &mut usize| {
            while let Some(p) = done.remove(next) {
                open += usize::from(p.state.is_open());
                report(p);
                *next += 1;
            }
        };
        for (i, &port) in ports.iter().enumerate() {
            // Wait for room before spawning, so at most `in_flight` tasks
            // (and sockets) exist; collect what finished meanwhile.
            let permit = loop {
                if let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
                    break p;
                }
                if let Some(Ok((j, probe))) = tasks.join_next().await {
                    done.insert(j, probe);
                    deliver(&mut done, &mut next);
                }
            };
            let (ips, me) = (Arc::clone(&ips), self.clone());
            tasks.spawn(async move {
                let state = me.check(&ips, port).await;
                drop(permit);
                (i, Probe { port, state })
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok((j, probe)) = r {
                done.insert(j, probe);
                deliver(&mut done, &mut next);
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

    /// One port: every address in turn until one is open.
    async fn check(&self, ips: &[IpAddr], port: u16) -> PortState {
        let mut state = PortState::Closed;
        for &ip in ips {
            let addr = SocketAddr::new(ip, port);
            state = match self.proto {
                ScanProto::Tcp => self.tcp(addr).await,
                ScanProto::Udp => self.udp(addr).await,
            };
            if state.is_open() {
                break;
            }
        }
        state
    }

    fn source_for(&self, addr: SocketAddr) -> Option<SocketAddr> {
        self.source
            .filter(|s| s.is_ipv4() == addr.is_ipv4())
            .map(|ip| SocketAddr::new(ip, 0))
    }

    async fn tcp(&self, addr: SocketAddr) -> PortState {
        let attempt = async {
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(src) = self.source_for(addr) {
                sock.bind(src)?;
            }
            sock.connect(addr).await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(stream)) => {
                drop(stream);
                PortState::Open(addr)
            }
            Ok(Err(e)) => refused_or(e),
            Err(_) => PortState::TimedOut,
        }
    }

    async fn udp(&self, addr: SocketAddr) -> PortState {
        let local = self
            .source_for(addr)
            .unwrap_or_else(|| super::wildcard(0, family_of(addr)));
        let attempt = async {
            let sock = UdpSocket::bind(local).await?;
            sock.connect(addr).await?;
            sock.send(&[]).await?;
            let mut buf = [0u8; 1];
            sock.recv(&mut buf).await.map(|_| ())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            // An answer, or silence: nothing refused it.
            Ok(Ok(())) | Err(_) => PortState::Open(addr),
            Ok(Err(e)) => refused_or(e),
        }
    }
}

fn family_of(addr: SocketAddr) -> super::Family {
    if addr.is_ipv4() {
        super::Family::V4
    } else {
        super::Family::V6
    }
}

fn refused_or(e: io::Error) -> PortState {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        PortState::Closed
    } else {
        PortState::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists() {
        assert_eq!(parse_ports("22").unwrap(), vec![22]);
        assert_eq!(parse_ports("20-23").unwrap(), vec![20, 21, 22, 23]);
        assert_eq!(
            parse_ports("80, 22,20-21,22").unwrap(),
            vec![80, 22, 20, 21]
        );
        assert_eq!(parse_ports("1-65535").unwrap().len(), 65_535);
        assert_eq!(parse_ports("7-7").unwrap(), vec![7]);
        for (bad, want) in [
            ("", "empty port"),
            ("22,", "empty port"),
            ("0", "\"0\" is not a port"),
            ("65536", "\"65536\" is not a port"),
            ("ssh", "\"ssh\" is not a port"),
            ("1-", "empty port"),
            ("-5", "empty port"),
            ("1-2-3", "\"2-3\" is not a port"),
        ] {
            let e = parse_ports(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        let e = parse_ports("30-20").unwrap_err();
        assert_eq!(
            e,
            PortsError::Backwards {
                part: "30-20".into(),
                first: 30,
                last: 20
            }
        );
        assert!(e.to_string().contains("write 20-30"), "{e}");
    }

    #[tokio::test]
    async fn finds_exactly_the_open_ports_in_order() {
        let listeners: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut open: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        // Closed ports: bound and released.
        let closed: Vec<u16> = (0..20)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            })
            .filter(|p| !open.contains(p))
            .collect();
        let mut ports: Vec<u16> = closed.iter().chain(&open).copied().collect();
        ports.sort_unstable();
        ports.reverse();
        let mut seen = Vec::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let n = Scanner::new()
            .concurrency(4)
            .run(&[ip], &ports, |p| seen.push(p))
            .await;
        assert_eq!(n, 3);
        assert_eq!(
            seen.iter().map(|p| p.port).collect::<Vec<_>>(),
            ports,
            "reported in the order given"
        );
        let mut found: Vec<u16> = seen
            .iter()
            .filter(|p| p.state.is_open())
            .map(|p| p.port)
            .collect();
        found.sort_unstable();
        open.sort_unstable();
        assert_eq!(found, open);
        assert!(
            seen.iter()
                .filter(|p| !p.state.is_open())
                .all(|p| matches!(p.state, PortState::Closed)),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn every_address_is_tried_and_udp_refusals_are_closed() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // ::1 refuses (nothing there), 127.0.0.1 answers.
        let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let mut got = Vec::new();
        Scanner::new()
            .run(&ips, &[port], |p| got.push(p.state))
            .await;
        assert!(
            matches!(got[..], [PortState::Open(a)] if a.is_ipv4()),
            "{got:?}"
        );

        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let open = u.local_addr().unwrap().port();
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = gone.local_addr().unwrap().port();
        drop(gone);
        let mut got = Vec::new();
        let n = Scanner::new()
            .proto(ScanProto::Udp)
            .timeout(Duration::from_millis(300))
            .run(&ips[1..], &[open, closed], |p| got.push(p))
            .await;
        assert_eq!(n, 1, "{got:?}");
        assert!(got[0].state.is_open() && matches!(got[1].state, PortState::Closed));
    }
}
