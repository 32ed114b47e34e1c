//! Multi-client line chat with nicknames, and a raw fan-out broker (the jobs
//! of `ncat --chat` and `ncat --broker`), built so that a line is never
//! split or merged and a slow client never slows the others.
//!
//! * The server runs on the [`net`](crate::net) skeleton: a
//!   [`TcpServer`](crate::net::TcpServer) accepts, applies the connection
//!   cap, the per-address cap and the allow/deny lists
//!   ([`ChatConfig::server`]), and hands each client to the chat handler.
//! * Input is framed with [`line::LineBuffer`]: lines are reassembled across
//!   reads, capped at [`ChatConfig::max_line`] (longer ones are cut, with a
//!   notice), `\n` and `\r\n` both end a line, and control characters other
//!   than TAB and invalid UTF-8 are escaped ([`line::escape_into`]) before
//!   anyone sees them. A line that has started must end within
//!   [`ChatConfig::line_timeout`].
//! * Every client has a bounded [`outbox::Outbox`]. Fan-out ([`hub::Hub`])
//!   pushes one shared `Bytes` per read batch into each queue and never
//!   waits. A client may fall behind by more than
//!   [`ChatConfig::queue_limit`] for up to [`ChatConfig::max_lag`] (a
//!   burst); staying behind longer, or reaching
//!   [`ChatConfig::queue_ceiling`], disconnects it with the rule named.
//! * The lines of one read are formatted into one batch, so a burst from one
//!   sender costs one queue push per receiver, not one per line; the order
//!   of each sender's lines is kept for every receiver.
//! * One room can span several servers joined through NATS
//!   ([`cluster`], [`ChatServer::join_cluster`]): each serves its own
//!   clients and the hub hands what others must see to the other nodes.
//! * Shutdown drains: readers stop, the shutdown notice goes after what is
//!   queued, queues are flushed within the grace period, and each
//!   connection ends with a FIN after its unread input was drained (closing
//!   over unread input would send a reset instead).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::chat::ChatError> {
//! use sockbox::chat::{ChatConfig, ChatServer};
//! let addr: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
//! let server = ChatServer::bind(addr, ChatConfig::default())?;
//! let shutdown = sockbox::Shutdown::new();
//! let report = server.run(shutdown).await?;
//! println!("{} clients served", report.accepted);
//! # Ok(()) }
//! ```

pub mod cluster;
pub mod command;
mod handler;
pub mod hub;
pub mod outbox;
pub mod rate;
mod room;
mod server;
mod session;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::event::Events;
use crate::net::{BindError, ServerOptions};
use crate::tls::TlsAcceptor;

pub use rate::Rate;
pub use server::ChatServer;
/// Line framing and escaping: the pure codec, kept in `sockbox-wire` so it
/// can be fuzzed without I/O ([`sockbox_wire::line`]).
pub use sockbox_wire::line;

/// Chat (lines, nicknames) or broker (raw bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Line chat with nicknames and commands.
    #[default]
    Chat,
    /// Raw fan-out of bytes to every other client.
    Broker,
}

/// Default per-address connection cap ([`ServerOptions::max_per_addr`]).
pub const DEFAULT_MAX_PER_ADDR: usize = 64;

/// Everything a chat or broker server needs to know.
#[derive(Clone)]
pub struct ChatConfig {
    /// Chat or broker.
    pub mode: Mode,
    /// Longest input line in bytes; longer lines are cut (chat only).
    pub max_line: usize,
    /// Bytes that may wait for one client for up to [`ChatConfig::max_lag`]
    /// (a burst).
    pub queue_limit: usize,
    /// How long a client may stay more than `queue_limit` behind before it
    /// is disconnected.
    pub max_lag: Duration,
    /// Bytes that may never wait for one client (raised to at least
    /// `queue_limit`): reaching it disconnects at once.
    pub queue_ceiling: usize,
    /// Disconnect a client that sent nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Disconnect a client whose started line does not end within this
    /// long (chat only; a client that sends nothing is not concerned).
    pub line_timeout: Option<Duration>,
    /// Read each client at most this fast (lines/s for chat, bytes/s for the broker).
    pub rate: Option<Rate>,
    /// Serve TLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Where joins, leaves, nick changes and refusals go.
    pub events: Events<ChatEvent>,
    /// Admission and draining: `max_conns` caps the network clients (the
    /// operator's own participant does not count), `max_per_addr` the
    /// clients of one address; allow/deny lists, grace period, statistics.
    /// Its `events` see the skeleton's events; refusals and accept errors
    /// also reach [`ChatConfig::events`].
    pub server: ServerOptions,
}

impl Default for ChatConfig {
    /// 8 KiB lines, 1 MiB behind for up to 10 s, a 32 MiB ceiling, lines
    /// must end within a minute, TLS handshakes within 10 s, 10 000
    /// clients, 64 per address, events dropped.
    fn default() -> Self {
        Self {
            mode: Mode::Chat,
            max_line: 8 * 1024,
            queue_limit: 1024 * 1024,
            max_lag: Duration::from_secs(10),
            queue_ceiling: 32 * 1024 * 1024,
            idle_timeout: None,
            line_timeout: Some(Duration::from_secs(60)),
            rate: None,
            tls: None,
            handshake_timeout: Duration::from_secs(10),
            events: crate::event::ignore(),
            server: ServerOptions {
                max_conns: 10_000,
                max_per_addr: Some(DEFAULT_MAX_PER_ADDR),
                ..ServerOptions::default()
            },
        }
    }
}

impl fmt::Debug for ChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatConfig")
            .field("mode", &self.mode)
            .field("max_line", &self.max_line)
            .field("queue_limit", &self.queue_limit)
            .field("max_lag", &self.max_lag)
            .field("queue_ceiling", &self.queue_ceiling)
            .field("idle_timeout", &self.idle_timeout)
            .field("line_timeout", &self.line_timeout)
            .field("rate", &self.rate)
            .field("tls", &self.tls.is_some())
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Something that happened on the server, for logs (`--json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A client joined.
    Join {
        /// Connection id.
        id: u64,
        /// Its nickname (`userN` in the broker).
        nick: String,
        /// Its address, or `stdin`.
        peer: String,
        /// Clients online now.
        online: usize,
    },
    /// A client left or was disconnected.
    Leave {
        /// Connection id.
        id: u64,
        /// Its nickname when it left.
        nick: String,
        /// Its address, or `stdin`.
        peer: String,
        /// Why: `quit`, `connection closed`, `idle timeout`, `too slow: …`.
        reason: String,
        /// Clients online now.
        online: usize,
    },
    /// A client changed its nickname.
    Nick {
        /// Connection id.
        id: u64,
        /// Old nickname.
        old: String,
        /// New nickname.
        new: String,
    },
    /// A connection was refused before joining.
    Refused {
        /// Its address.
        peer: String,
        /// Why: `denied`, `full`, `per-address limit`, `tls: …`.
        reason: String,
    },
    /// Another node of the room was heard from in full (its roster).
    NodeUp {
        /// Its name.
        node: String,
        /// Its members.
        members: usize,
    },
    /// Another node was declared gone; its members left the room.
    NodeGone {
        /// Its name.
        node: String,
        /// Members it had.
        members: usize,
        /// `stopped answering` or `shut down`.
        reason: String,
    },
    /// The link to the other nodes is down: local chat goes on.
    Split {
        /// What the NATS client said.
        reason: String,
    },
    /// The link is back.
    Whole {
        /// Nodes in reach, this one included.
        nodes: usize,
    },
    /// Lines (bytes for the broker) of another node did not arrive.
    Lost {
        /// The node.
        node: String,
        /// How many.
        lines: u64,
    },
    /// `accept` failed for lack of resources; the server backs off.
    AcceptError {
        /// The error.
        error: String,
        /// How long the server waits before accepting again, in ms.
        backoff_ms: u64,
    },
}

/// What can stop a chat server.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The listening socket could not be set up.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// What a finished chat or broker server did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatReport {
    /// Network clients admitted.
    pub accepted: u64,
    /// Network clients refused (allow/deny lists, caps).
    pub refused: u64,
    /// Connections still open when the grace period ended (cut).
    pub cut_at_grace: usize,
}

/// `90s` → `1m 30s`, for notices.
pub(crate) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) if d.subsec_millis() == 0 || s > 0 => format!("{s}s"),
        (0, 0, _) => format!("{}ms", d.as_millis()),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// The listening address as a socket address or a [`Bind`](crate::net::Bind).
pub trait BindAt {
    /// The listener builder.
    fn into_bind(self) -> crate::net::Bind;
}

impl BindAt for SocketAddr {
    /// Dual-stack for the IPv6 wildcard, backlog 4096 (bursts of
    /// thousands of connects).
    fn into_bind(self) -> crate::net::Bind {
        crate::net::Bind::new(self).backlog(4096)
    }
}

impl BindAt for crate::net::Bind {
    fn into_bind(self) -> crate::net::Bind {
        self
    }
}

/// Line the chat server sends to everyone on shutdown (the broker sends nothing).
pub const SHUTDOWN_NOTICE: &str = "*** server is shutting down";

#[cfg(test)]
mod tests;
