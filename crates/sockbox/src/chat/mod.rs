//! Multi-client line chat with nicknames, and a raw fan-out broker (the jobs
//! of `ncat --chat` and `ncat --broker`), built so that a line is never
//! split or merged and a slow client never slows the others.
//!
//! * Input is framed with [`line::LineBuffer`]: lines are reassembled across
//!   reads, capped at [`ChatConfig::max_line`] (longer ones are cut, with a
//!   notice), `\n` and `\r\n` both end a line, and control characters and
//!   invalid UTF-8 are escaped ([`line::escape_into`]) before anyone sees them.
//! * Every client has a bounded [`outbox::Outbox`]. Fan-out ([`hub::Hub`])
//!   pushes one shared `Bytes` per read batch into each queue and never
//!   waits: a client whose queue passes [`ChatConfig::queue_limit`] is
//!   disconnected with a reason.
//! * The lines of one read are formatted into one batch, so a burst from one
//!   sender costs one queue push per receiver, not one per line; the order
//!   of each sender's lines is kept for every receiver.
//! * Limits: clients ([`ChatConfig::max_clients`]), idle timeout, per-client
//!   rate ([`rate::Rate`]), allow/deny ranges ([`crate::net::acl::SharedAcl`],
//!   shared with `listen`).
//!   `accept` errors such as `EMFILE` back off instead of spinning.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::chat::ChatError> {
//! use sockbox::chat::{ChatConfig, ChatServer};
//! let server = ChatServer::bind("127.0.0.1:7000".parse().unwrap(), ChatConfig::default())?;
//! let shutdown = sockbox::Shutdown::new();
//! server.run(shutdown).await
//! # }
//! ```

pub mod command;
mod conn;
pub mod hub;
pub mod outbox;
pub mod rate;
mod server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::daemon::ServerStats;
use crate::net::acl::SharedAcl;
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

/// Receives server events (joins, leaves, nick changes, refusals).
///
/// It is called from the server's tasks and must not block: queue the event
/// (the `sockbox` command uses a bounded queue with its own writer thread)
/// rather than write it to a pipe that may be full.
pub type EventSink = Arc<dyn Fn(&ChatEvent) + Send + Sync>;

/// Everything a chat or broker server needs to know.
#[derive(Clone)]
pub struct ChatConfig {
    /// Chat or broker.
    pub mode: Mode,
    /// Longest input line in bytes; longer lines are cut (chat only).
    pub max_line: usize,
    /// Most clients connected at once; more are told the room is full.
    pub max_clients: usize,
    /// Most bytes waiting for one client before it is disconnected.
    pub queue_limit: usize,
    /// Disconnect a client that sent nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Read each client at most this fast (lines/s for chat, bytes/s for the broker).
    pub rate: Option<Rate>,
    /// Who may connect.
    pub access: SharedAcl,
    /// Serve TLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// After shutdown, how long clients get to receive what is queued.
    pub grace: Duration,
    /// Counters the server updates.
    pub stats: ServerStats,
    /// Where events go (none: dropped).
    pub events: Option<EventSink>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Chat,
            max_line: 8 * 1024,
            max_clients: 10_000,
            queue_limit: 1024 * 1024,
            idle_timeout: None,
            rate: None,
            access: SharedAcl::default(),
            tls: None,
            handshake_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            stats: ServerStats::new(),
            events: None,
        }
    }
}

impl fmt::Debug for ChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatConfig")
            .field("mode", &self.mode)
            .field("max_line", &self.max_line)
            .field("max_clients", &self.max_clients)
            .field("queue_limit", &self.queue_limit)
            .field("idle_timeout", &self.idle_timeout)
            .field("rate", &self.rate)
            .field("access", &self.access)
            .field("tls", &self.tls.is_some())
            .field("grace", &self.grace)
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
        /// Why: `denied`, `full`, `tls: …`.
        reason: String,
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
    #[error("cannot listen on {1}: {0} (is the port in use, or below 1024 without root?)")]
    Bind(#[source] std::io::Error, SocketAddr),
    /// The bound address could not be read back.
    #[error("cannot read the listening address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// Line the chat server sends to everyone on shutdown (the broker sends nothing).
pub const SHUTDOWN_NOTICE: &str = "*** server is shutting down";

#[cfg(test)]
mod tests;
