//! The socket framework every sockbox server and client is built on.
//!
//! - [`Bind`]: the listener builder (IPv4/IPv6, dual-stack wildcard,
//!   reuse, backlog, device).
//! - [`TcpServer`] + [`Handler`]: one accept loop (connection cap,
//!   per-address cap, allow/deny lists, back-off when `accept` runs out of
//!   resources, canonical peer addresses, statistics, soft and hard
//!   shutdown over a task tracker); the handler serves one connection.
//! - [`UdpServer`] + [`DatagramHandler`]: one receive loop (allow/deny,
//!   answers from the address written to, tracked tasks); the handler
//!   answers one datagram.
//! - [`LineCodec`]: the line framing of [`sockbox_wire::line`] as a
//!   `tokio_util::codec` codec, for handlers that speak lines.
//! - [`Connector`] and [`Reconnect`]: the client side — every resolved
//!   address in turn, a timeout per attempt, a source address, a SOCKS or
//!   HTTP [`Proxy`], optional TLS, reconnect with back-off.
//! - [`scan`]: zero-I/O port checks (`nc -z`), many ports at once.
//! - [`Acl`], [`canonical`], [`resolve`]: the address helpers every job
//!   shares.
//!
//! Every server has the same shape: `bind` (or `from_listener`), then
//! `run(shutdown) -> report`. Events go to an [`Observer`](crate::event::Observer).
//!
//! ```no_run
//! use sockbox::net::{Bind, Connection, Handler, ServerOptions, TcpServer};
//! use tokio::io::AsyncWriteExt;
//!
//! struct Hello;
//! impl Handler for Hello {
//!     async fn serve(&self, mut conn: Connection) {
//!         let _ = conn.stream.write_all(b"hello\n").await;
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TcpServer::bind(&Bind::new("127.0.0.1:7000".parse()?), Hello, ServerOptions::default())?;
//! let shutdown = sockbox::Shutdown::new();
//! let report = server.run(shutdown).await;
//! println!("{} served", report.accepted);
//! # Ok(()) }
//! ```

pub mod acl;
pub mod addr;
mod backoff;
mod bind;
pub mod client;
mod codec;
mod datagram;
mod drain;
mod limits;
pub mod proxy;
pub mod scan;
mod server;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use acl::{Acl, AclError, SharedAcl};
pub use addr::{AddrError, Family, canonical, listen_addr, resolve, resolve_async, wildcard};
pub use backoff::Backoff;
pub use bind::{Bind, BindError};
pub use client::{ClientStream, ConnectError, Connector, Reconnect};
pub use codec::LineCodec;
pub use datagram::{Answer, Datagram, DatagramCtx, DatagramHandler, Replier, UdpServer};
pub use drain::Drain;
pub use proxy::{Proxy, ProxyDns, ProxyKind, Retry};
pub use server::{Connection, Handler, Refusal, Refused, TcpServer, log_events};

use crate::daemon::ServerStats;
use crate::event::Events;

/// How a server admits and drains, the same for TCP and UDP.
#[derive(Clone)]
pub struct ServerOptions {
    /// Most connections open at once; more are refused. 0 refuses every
    /// client. (TCP.)
    pub max_conns: usize,
    /// Most connections open at once from one address (`None`: no cap). (TCP.)
    pub max_per_addr: Option<usize>,
    /// Allow/deny lists (default: everyone).
    pub acl: SharedAcl,
    /// After shutdown, how long connections and tasks may take to finish.
    pub grace: Duration,
    /// Counters.
    pub stats: ServerStats,
    /// Serve the first admitted connection only, then stop. (TCP.)
    pub once: bool,
    /// Set `TCP_NODELAY` on every connection (default on). (TCP.)
    pub nodelay: bool,
    /// Where accept, refusal and drain events go (default: `tracing`).
    pub events: Events<ServerEvent>,
}

impl Default for ServerOptions {
    /// 1024 connections, no per-address cap, everyone allowed, 10 s grace,
    /// `TCP_NODELAY`, events logged with `tracing`.
    fn default() -> Self {
        Self {
            max_conns: 1024,
            max_per_addr: None,
            acl: SharedAcl::default(),
            grace: Duration::from_secs(10),
            stats: ServerStats::new(),
            once: false,
            nodelay: true,
            events: log_events(),
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("max_conns", &self.max_conns)
            .field("max_per_addr", &self.max_per_addr)
            .field("grace", &self.grace)
            .field("once", &self.once)
            .field("nodelay", &self.nodelay)
            .finish_non_exhaustive()
    }
}

/// What happened in a server's accept or receive loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client was admitted.
    Accepted {
        /// Canonical peer address.
        peer: SocketAddr,
        /// Its connection number.
        id: u64,
    },
    /// An admitted connection's handler returned.
    Closed {
        /// Canonical peer address.
        peer: SocketAddr,
        /// Its connection number.
        id: u64,
    },
    /// A client was refused.
    Refused {
        /// Canonical peer address.
        peer: SocketAddr,
        /// Why.
        reason: Refusal,
    },
    /// `accept` failed (out of file descriptors, say); the loop waits
    /// `retry_in` before it accepts again.
    AcceptFailed {
        /// The error.
        error: io::Error,
        /// The pause.
        retry_in: Duration,
    },
    /// Shutdown began with connections open.
    Draining {
        /// How many.
        open: usize,
    },
    /// The grace period ended with connections still open: they are told
    /// to stop ([`Drain::hard`]).
    GraceExpired {
        /// How many.
        open: usize,
    },
}

/// What a finished server did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Connections (TCP) or datagrams (UDP) admitted.
    pub accepted: u64,
    /// Refused.
    pub refused: u64,
    /// Connections or tasks still open when the grace period ended.
    pub cut_at_grace: usize,
}

#[cfg(test)]
mod tests;
