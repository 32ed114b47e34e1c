//! The listening side: report what arrives, and optionally answer each
//! datagram (fixed text, echo, or a program's output) — a discovery
//! responder. Also the receiving end of multicast (`membership`).
//!
//! Built like every server: [`Listener::bind`] (or [`Listener::from_socket`])
//! opens and binds the socket and joins the group; [`Listener::run`] serves
//! until shutdown on the [`UdpServer`] skeleton, which checks the allow/deny
//! lists, counts, answers from the address each datagram was sent to, and
//! gives running programs the grace period.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::udp::Error> {
//! use std::sync::Arc;
//! use sockbox::udp::{ListenConfig, ListenEvent, Listener, ReplyMode};
//!
//! let cfg = ListenConfig {
//!     port: 9999,
//!     reply: ReplyMode::Text(b"I am here".to_vec()),
//!     events: Arc::new(|e: &ListenEvent| println!("{e:?}")),
//!     ..ListenConfig::default()
//! };
//! let listener = Listener::bind(cfg)?;
//! let report = listener.run(sockbox::Shutdown::new()).await?;
//! println!("{} datagrams", report.datagrams);
//! # Ok(()) }
//! ```

mod responder;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::Bytes;
use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use super::Error;
use super::exec::ExecConfig;
use super::mcast::{Membership, ResolvedIface};
use crate::Shutdown;
use crate::event::{self, Events};
use crate::net::{Bind, ServerOptions, UdpServer};
use responder::Responder;

/// How a listener answers each datagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    /// Do not answer.
    #[default]
    None,
    /// Send the datagram back to its sender.
    Echo,
    /// Send these bytes back.
    Text(Vec<u8>),
    /// Run a program with the payload on stdin; its stdout is the answer.
    Exec(ExecConfig),
}

/// How to set up a [`Listener`].
#[derive(Clone)]
pub struct ListenConfig {
    /// Local address; `None` listens on every address, IPv4 and IPv6
    /// (dual-stack `[::]`, or `0.0.0.0` where IPv6 is missing). Ignored when
    /// `membership` is set: the socket binds the group.
    pub addr: Option<IpAddr>,
    /// Interface index for an IPv6 link-local `addr` (`fe80::1%eth0`); 0 for none.
    pub scope_id: u32,
    /// Local port (0: any free port).
    pub port: u16,
    /// Join this multicast group.
    pub membership: Option<Membership>,
    /// How to answer.
    pub reply: ReplyMode,
    /// How many `Exec` programs may run at once; datagrams beyond that get
    /// no answer and are counted as refused.
    pub max_children: usize,
    /// Stop after this many datagrams (`None`: run until shutdown).
    pub count: Option<u64>,
    /// Where datagrams, answers and drops are reported.
    pub events: Events<ListenEvent>,
    /// Allow/deny lists (refused datagrams are dropped unanswered and
    /// counted refused), grace period for running programs, statistics.
    pub server: ServerOptions,
}

impl Default for ListenConfig {
    /// Every address, any free port, no answers, 16 programs at once,
    /// events dropped, the default [`ServerOptions`].
    fn default() -> Self {
        Self {
            addr: None,
            scope_id: 0,
            port: 0,
            membership: None,
            reply: ReplyMode::None,
            max_children: 16,
            count: None,
            events: event::ignore(),
            server: ServerOptions::default(),
        }
    }
}

impl std::fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConfig")
            .field("addr", &self.addr)
            .field("scope_id", &self.scope_id)
            .field("port", &self.port)
            .field("membership", &self.membership)
            .field("reply", &self.reply)
            .field("max_children", &self.max_children)
            .field("count", &self.count)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Something that happened while serving, for the caller to print or log.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenEvent {
    /// A datagram arrived (and the allow/deny lists admit its sender).
    Datagram {
        /// Its sender (IPv4-mapped addresses shown as IPv4).
        from: SocketAddr,
        /// The address it was sent to (a broadcast or group address too),
        /// when the socket reports it.
        to: Option<IpAddr>,
        /// Its payload.
        payload: Bytes,
    },
    /// An answer went out.
    Replied {
        /// To whom.
        to: SocketAddr,
        /// Its length.
        len: usize,
    },
    /// No answer went out for a datagram, and why ([`Error::Send`] or
    /// [`Error::Exec`]).
    ReplyFailed {
        /// The sender of the datagram.
        to: SocketAddr,
        /// What went wrong.
        error: Error,
    },
    /// Every program slot was taken: the datagram got no answer.
    Busy {
        /// Its sender.
        from: SocketAddr,
    },
    /// The allow/deny lists refuse the sender: the datagram was dropped
    /// (not reported as a [`ListenEvent::Datagram`], not answered).
    Denied {
        /// Its sender.
        from: SocketAddr,
        /// Its length.
        len: usize,
    },
}

/// What a finished listener did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenReport {
    /// Datagrams admitted and reported.
    pub datagrams: u64,
    /// Datagrams the allow/deny lists dropped.
    pub refused: u64,
    /// Datagrams left unanswered because every program slot was taken.
    pub busy: u64,
    /// Programs still running when the grace period ended (killed).
    pub cut_at_grace: usize,
}

/// A bound UDP listener, ready to [`run`](Listener::run).
#[derive(Debug)]
pub struct Listener {
    server: UdpServer<Responder>,
    iface: Option<ResolvedIface>,
}

/// The listener builder for a plain (not multicast) listener.
fn plain(cfg: &ListenConfig) -> Bind {
    match cfg.addr {
        None => Bind::new(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), cfg.port)),
        Some(IpAddr::V6(v6)) => Bind::new(SocketAddr::V6(SocketAddrV6::new(
            v6,
            cfg.port,
            0,
            cfg.scope_id,
        )))
        // `::` given explicitly is IPv6 only, as any other IPv6 address.
        .only_v6(true)
        .v4_fallback(false),
        Some(ip) => Bind::new(SocketAddr::new(ip, cfg.port)).v4_fallback(false),
    }
    .broadcast(true)
}

/// A socket bound to the group address with the membership joined, so it
/// sees this group's datagrams and not every datagram to the port.
fn bind_group(m: &Membership, port: u16) -> Result<(UdpSocket, Option<ResolvedIface>), Error> {
    m.validate()?;
    let iface = m.resolve()?;
    let at = m.bind_addr(port, iface.as_ref());
    // Several listeners on one host may share a group and port.
    let bind = Bind::new(at)
        .reuse_address(true)
        .only_v6(true)
        .v4_fallback(false)
        .broadcast(true);
    let sock = bind
        .socket(Type::DGRAM, Protocol::UDP)
        .map_err(Error::Bind)?;
    // Only this socket's own memberships, not every group the host joined
    // (best effort: older kernels lack the option).
    if at.is_ipv6() {
        let _ = sock.set_multicast_all_v6(false);
    } else {
        let _ = sock.set_multicast_all_v4(false);
    }
    bind.finish(&sock).map_err(Error::Bind)?;
    m.join(&sock, iface.as_ref())?;
    let socket = UdpSocket::from_std(sock.into()).map_err(Error::Socket)?;
    Ok((socket, iface))
}

impl Listener {
    /// Open, bind and (for multicast) join. Must be called inside a tokio
    /// runtime.
    pub fn bind(cfg: ListenConfig) -> Result<Self, Error> {
        let (socket, iface) = match &cfg.membership {
            Some(m) => bind_group(m, cfg.port)?,
            None => (plain(&cfg).udp().map_err(Error::Bind)?, None),
        };
        let mut l = Self::from_socket(socket, cfg)?;
        l.iface = iface;
        Ok(l)
    }

    /// Serve on a socket bound elsewhere (`addr`, `port` and `membership`
    /// of `cfg` are not used). Must be called inside a tokio runtime.
    pub fn from_socket(socket: UdpSocket, cfg: ListenConfig) -> Result<Self, Error> {
        let responder = Responder::new(&cfg);
        let server =
            UdpServer::from_socket(socket, responder, cfg.server).map_err(Error::Socket)?;
        Ok(Self {
            server,
            iface: None,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The interface a multicast membership was joined on, when one was named.
    pub fn iface(&self) -> Option<&ResolvedIface> {
        self.iface.as_ref()
    }

    /// Serve until `shutdown` fires (or `count` datagrams came), reporting
    /// every datagram and answer as a [`ListenEvent`]. After shutdown,
    /// running programs get the grace period (their answers still go out);
    /// then they are killed.
    pub async fn run(self, shutdown: Shutdown) -> Result<ListenReport, Error> {
        let local = self.local_addr();
        let responder = self.server.handler().clone();
        let stop = shutdown.child();
        responder.stop_with(stop.clone());
        let r = self
            .server
            .run(stop)
            .await
            .map_err(|e| Error::Recv(e, local))?;
        Ok(ListenReport {
            datagrams: responder.handled(),
            refused: r.refused,
            busy: responder.busy(),
            cut_at_grace: r.cut_at_grace,
        })
    }
}

#[cfg(test)]
mod tests;
