//! A Wake-on-LAN listener: receives UDP datagrams (on the
//! [`UdpServer`] skeleton) and optionally raw 0x0842
//! Ethernet frames on chosen interfaces (a receive loop per interface),
//! looks for a magic packet anywhere in each payload as a NIC would, and
//! reports every datagram or frame as a [`Received`] event (with
//! `found: None` for the ones that are not magic).
//!
//! In the server statistics, `accepted` counts magic packets; every
//! datagram's bytes count in; other datagrams are counted in the
//! [`ListenReport`] as `other`, not as refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::wol::Error> {
//! use std::sync::Arc;
//! use sockbox::wol::listen::{ListenConfig, Listener, Received};
//!
//! let mut cfg = ListenConfig::new(9); // as root for port 9 and raw frames
//! cfg.events = Arc::new(|r: &Received| println!("{r:?}"));
//! let listener = Listener::bind(cfg)?;
//! // drop privileges here
//! let report = listener.run(sockbox::Shutdown::new()).await?;
//! println!("{} magic packets", report.magic);
//! # Ok(()) }
//! ```

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use sockbox_wire::mac::MacAddr;
use sockbox_wire::magic::{Found, find};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::Error;
use super::plan::{IfaceRef, iref, named};
use super::send::open_raw;
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::event::{self, Events};
use crate::net::{Answer, Bind, Datagram, DatagramCtx, DatagramHandler, ServerOptions, UdpServer};
use crate::sys::packet::PacketSocket;

/// Largest frame read.
const BUF_LEN: usize = 65_536;

/// What to listen on.
#[derive(Clone)]
pub struct ListenConfig {
    /// UDP address; `None` listens on raw interfaces only. `[::]` listens on
    /// IPv4 and IPv6 (falling back to `0.0.0.0` without IPv6).
    pub udp: Option<SocketAddr>,
    /// Interfaces to receive raw 0x0842 frames on.
    pub raw: Vec<String>,
    /// Stop after this many magic packets (`None`: run until shutdown).
    pub count: Option<u64>,
    /// Where each datagram or frame is reported.
    pub events: Events<Received>,
    /// Statistics (`accepted` counts magic packets), allow/deny lists for
    /// UDP senders, grace.
    pub server: ServerOptions,
}

impl ListenConfig {
    /// UDP on every address (IPv4 and IPv6) at `port`, no raw interfaces,
    /// no count, events dropped.
    pub fn new(port: u16) -> Self {
        Self {
            udp: Some(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)),
            raw: Vec::new(),
            count: None,
            events: event::ignore(),
            server: ServerOptions::default(),
        }
    }
}

impl std::fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConfig")
            .field("udp", &self.udp)
            .field("raw", &self.raw)
            .field("count", &self.count)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Where a datagram came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A UDP datagram from this address.
    Udp(SocketAddr),
    /// A raw 0x0842 frame from this hardware address on this interface.
    Raw {
        /// The interface it arrived on.
        iface: String,
        /// The sender's MAC.
        mac: MacAddr,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Udp(a) => write!(f, "{}", crate::net::canonical(*a)),
            Self::Raw { iface, mac } => write!(f, "{mac} on {iface}"),
        }
    }
}

/// One datagram or frame received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// When it arrived.
    pub time: SystemTime,
    /// Who sent it.
    pub source: Source,
    /// Payload length.
    pub len: usize,
    /// The magic packet in it, if any.
    pub found: Option<Found>,
}

/// What a finished listener received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenReport {
    /// Magic packets.
    pub magic: u64,
    /// Datagrams and frames that hold no magic packet.
    pub other: u64,
    /// UDP datagrams the allow/deny lists dropped.
    pub refused: u64,
}

/// Counts and reports for every socket of one listener.
struct Tally {
    count: Option<u64>,
    magic: AtomicU64,
    other: AtomicU64,
    refused: AtomicU64,
    events: Events<Received>,
    stats: ServerStats,
    stop: OnceLock<Shutdown>,
}

impl Tally {
    fn new(count: Option<u64>, events: Events<Received>, stats: ServerStats) -> Self {
        Self {
            count,
            magic: AtomicU64::new(0),
            other: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            events,
            stats,
            stop: OnceLock::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.get().is_some_and(Shutdown::is_triggered)
    }

    /// Decode, count and report one payload. Nothing is reported once
    /// `count` magic packets came.
    fn received(&self, source: Source, payload: &[u8]) {
        if self.stopped() {
            return;
        }
        self.stats.add_in(payload.len() as u64);
        let found = find(payload);
        if found.is_some() {
            let below = |n: u64| self.count.is_none_or(|c| n < c);
            let Ok(before) = self
                .magic
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    below(n).then_some(n + 1)
                })
            else {
                return;
            };
            drop(self.stats.connection());
            if self.count == Some(before + 1)
                && let Some(stop) = self.stop.get()
            {
                stop.trigger();
            }
        } else {
            self.other.fetch_add(1, Ordering::Relaxed);
        }
        self.events.on_event(&Received {
            time: SystemTime::now(),
            source,
            len: payload.len(),
            found,
        });
    }

    fn report(&self) -> ListenReport {
        ListenReport {
            magic: self.magic.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// The UDP side: every admitted datagram goes to the tally, none is
/// answered.
struct MagicUdp(Arc<Tally>);

impl DatagramHandler for MagicUdp {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, _ctx: &DatagramCtx) -> Answer<'a> {
        self.0.received(Source::Udp(dg.peer), dg.payload);
        Answer::Nothing
    }

    fn denied(&self, _from: SocketAddr, _len: usize) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
        self.0.stats.refused();
    }
}

/// Bound sockets, ready to [`Listener::run`].
pub struct Listener {
    udp: Option<UdpServer<MagicUdp>>,
    raw: Vec<(IfaceRef, PacketSocket)>,
    tally: Arc<Tally>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("udp", &self.local_addr())
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

/// Split `cfg` into the UDP server's options and the tally. The server's
/// statistics stay private, because here `accepted` counts magic packets,
/// not datagrams: the [`Tally`] keeps the caller's.
fn split(cfg: ListenConfig) -> (ServerOptions, Arc<Tally>, Vec<String>) {
    let ListenConfig {
        raw,
        count,
        events,
        server,
        ..
    } = cfg;
    let tally = Arc::new(Tally::new(count, events, server.stats.clone()));
    let opts = ServerOptions {
        stats: ServerStats::new(),
        ..server
    };
    (opts, tally, raw)
}

impl Listener {
    /// Open and bind every socket in `cfg` (do this before dropping
    /// privileges). Must be called inside a tokio runtime.
    pub fn bind(cfg: ListenConfig) -> Result<Self, Error> {
        let addr = cfg.udp;
        let (opts, tally, raw) = split(cfg);
        let udp = match addr {
            None => None,
            Some(addr) => Some(
                UdpServer::bind(&Bind::new(addr), MagicUdp(tally.clone()), opts)
                    .map_err(Error::Bind)?,
            ),
        };
        Self::with_raw(udp, tally, &raw)
    }

    /// Receive UDP on a socket bound elsewhere (`cfg.udp` is not used),
    /// and raw frames on `cfg.raw`. Must be called inside a tokio runtime.
    pub fn from_socket(socket: UdpSocket, cfg: ListenConfig) -> Result<Self, Error> {
        let (opts, tally, raw) = split(cfg);
        let udp =
            UdpServer::from_socket(socket, MagicUdp(tally.clone()), opts).map_err(|source| {
                Error::Socket {
                    what: "cannot set up the UDP socket".to_owned(),
                    source,
                }
            })?;
        Self::with_raw(Some(udp), tally, &raw)
    }

    fn with_raw(
        udp: Option<UdpServer<MagicUdp>>,
        tally: Arc<Tally>,
        names: &[String],
    ) -> Result<Self, Error> {
        let mut raw = Vec::new();
        if !names.is_empty() {
            let all = crate::iface::list()?;
            for i in named(&all, names)? {
                let iface = iref(i);
                let sock = open_raw(&iface)?;
                raw.push((iface, sock));
            }
        }
        Ok(Self { udp, raw, tally })
    }

    /// The bound UDP address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(UdpServer::local_addr)
    }

    /// Receive until `shutdown` fires (or `count` magic packets came),
    /// reporting one [`Received`] per datagram or frame. Fails when
    /// receiving UDP fails for good; a raw socket's errors are logged and
    /// retried.
    pub async fn run(self, shutdown: Shutdown) -> Result<ListenReport, Error> {
        let stop = shutdown.child();
        let _ = self.tally.stop.set(stop.clone());
        let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
        if let Some(server) = self.udp {
            let (stop, addr) = (stop.clone(), server.local_addr());
            tasks.spawn(async move {
                server
                    .run(stop)
                    .await
                    .map(drop)
                    .map_err(|source| Error::Recv { addr, source })
            });
        }
        for (iface, sock) in self.raw {
            tasks.spawn(receive_raw(iface, sock, stop.clone(), self.tally.clone()));
        }
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let r = done.unwrap_or_else(|e| {
                Err(Error::Socket {
                    what: "a receive task failed".to_owned(),
                    source: io::Error::other(e),
                })
            });
            if let Err(e) = r {
                stop.trigger();
                result = result.and(Err(e));
            }
        }
        result.map(|()| self.tally.report())
    }
}

/// Receive raw frames until `stop` fires; errors are logged and retried
/// after a pause. Frames this host sent itself are skipped.
async fn receive_raw(
    iface: IfaceRef,
    sock: PacketSocket,
    stop: Shutdown,
    tally: Arc<Tally>,
) -> Result<(), Error> {
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        let r = tokio::select! {
            () = stop.wait() => return Ok(()),
            r = sock.recv_from(&mut buf) => r,
        };
        match r {
            Ok((_, src)) if src.outgoing => {}
            Ok((n, src)) => {
                let source = Source::Raw {
                    iface: iface.name.clone(),
                    mac: MacAddr(src.mac),
                };
                tally.received(source, &buf[..n]);
            }
            Err(e) => {
                tracing::warn!("raw receive on {} failed: {e}", iface.name);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
