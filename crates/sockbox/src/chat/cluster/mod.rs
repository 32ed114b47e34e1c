//! A room spread over several chat (or broker) servers, joined through
//! NATS: every node serves its own clients and exchanges lines with the
//! other nodes of the room.
//!
//! The cluster sits behind the hub's seam ([`Remote`]): what a local member
//! says, announces, or does to its membership is fanned out locally, then
//! queued for the other nodes; what they send is fanned out here through
//! the same hub calls, with no local sender.
//!
//! # What users get
//! * **Each line once, in order, whole.** A node publishes its messages on
//!   one subject tree (see `proto`) from one connection, so every receiver
//!   gets each node's messages in the order they were sent; a read's lines
//!   travel as one message, exactly as local members get them. Each
//!   message is numbered; a receiver that finds numbers missing (NATS
//!   dropped them, the link was cut, this node's queue overflowed) tells
//!   its members how many lines of which node did not arrive: nothing is
//!   passed off as delivered that was not.
//! * **Nicknames unique room-wide** through a JetStream key-value bucket
//!   (`sockbox-chat-ROOM`, in memory): a name is claimed with a create that
//!   fails when the key exists, so of two nodes claiming a name at once
//!   exactly one wins. The NATS server must run JetStream (`-js`).
//!   Failure modes: while the room is split `/nick` is refused (nobody can
//!   be asked); newcomers get a `userN` not known to be taken, claimed when
//!   the room is whole again, and a member whose name was taken elsewhere
//!   meanwhile is renamed and told. The claims of a node declared gone are
//!   deleted by the others; a claim left by a node that died unseen (the
//!   whole room down) is taken over once its owner has been silent for
//!   the dead-node time. If the NATS server loses the bucket (a restart
//!   without a store), the nodes create it again and claim their members'
//!   names anew.
//! * **`/who` and `/msg` across nodes**: every node keeps the other nodes'
//!   rosters (sent in full on (re)connection and on request, then as
//!   join/leave/rename news).
//! * **Heartbeats**: a node silent for [`ClusterConfig::dead_after`] is
//!   declared gone and its members are announced as having left; its lines
//!   still in flight are dropped (and counted, should it come back).
//! * **Split**: when the link to NATS is lost, local chat goes on; members
//!   are told the room is split and that their lines reach only this
//!   node. Nothing said meanwhile is sent later. On reconnection the node
//!   starts a new epoch, sends its roster (with where its last epoch
//!   ended, so others can count what they missed) and asks for everyone's.
//!   A node that finds no NATS server at start starts split the same way
//!   (unless [`ClusterConfig::start_split`] is off) and joins when one
//!   answers.
//! * **Bounded memory**: the outgoing queue holds at most
//!   [`ClusterConfig::queue_limit`] bytes (messages past it are dropped and
//!   counted as lost by the receivers); the incoming subscription holds at
//!   most [`INCOMING_CAPACITY`] messages (NATS drops past it, counted the
//!   same way). A read's lines larger than the NATS server's largest
//!   payload go in several messages, cut between lines; a single line
//!   larger than that cannot cross, and its sender is told. Lines from other nodes go to each member's bounded queue
//!   under the usual slow-reader rules.

mod link;
mod nicks;
mod node;
mod outbound;
mod peers;
mod proto;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use link::Link;
pub use tls::NatsTls;

pub use crate::chat::hub::Remote;

/// Messages the incoming subscription may hold before NATS drops more (a
/// message is one read's lines, typically up to 16 KiB).
pub const INCOMING_CAPACITY: usize = 2048;

/// How this node authenticates to NATS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (or those in the server URLs, `nats://user:pass@host`).
    #[default]
    None,
    /// A token.
    Token(String),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A `.creds` file (JWT and NKey seed), read once at start.
    CredsFile(PathBuf),
}

/// Where the room is and how this node takes part.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:4222`, `tls://host:4222`); the client
    /// moves to another one when its server goes away.
    pub servers: Vec<String>,
    /// The room: nodes with the same room name share their members (1 to
    /// 64 letters, digits, `_` and `-`).
    pub room: String,
    /// This node's name in `/who` and announcements.
    pub node_name: String,
    /// Credentials.
    pub auth: NatsAuth,
    /// TLS to the NATS servers (also used when a server asks for it).
    pub tls: Option<NatsTls>,
    /// How often this node says it is alive.
    pub heartbeat: Duration,
    /// A node not heard for this long is declared gone.
    pub dead_after: Duration,
    /// Bytes the outgoing queue may hold.
    pub queue_limit: usize,
    /// Longest the first connection may take.
    pub connect_timeout: Duration,
    /// When no NATS server answers at start (refused, timed out, name not
    /// found): start split, serve local members, and join the room when a
    /// server answers (true), or fail with [`ClusterError::Connect`]
    /// (false). Credentials, TLS and address errors fail either way.
    pub start_split: bool,
    /// Longest a nickname store operation may take.
    pub store_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults for `servers` and `room`: node named after the host,
    /// heartbeats every second, gone after 3 s of silence, an 8 MiB
    /// outgoing queue, and a start split when NATS is out of reach.
    pub fn new(servers: Vec<String>, room: impl Into<String>) -> Self {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "node".into());
        Self {
            servers,
            room: room.into(),
            node_name: host,
            auth: NatsAuth::None,
            tls: None,
            heartbeat: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            queue_limit: 8 << 20,
            connect_timeout: Duration::from_secs(5),
            start_split: true,
            store_timeout: Duration::from_secs(3),
        }
    }
}

/// Why joining the room failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The room name cannot be used in a subject.
    #[error(
        "room name {0:?} is not usable: give 1 to 64 letters, digits, _ or - (no dots or spaces)"
    )]
    Room(String),
    /// No server URL was given.
    #[error("no NATS server given: name at least one, such as nats://127.0.0.1:4222")]
    NoServers,
    /// A server URL is malformed.
    #[error("NATS server {url:?} is not a valid address: {reason} (write nats://HOST:PORT)")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot read the NATS credentials file {path}: {source}")]
    Creds {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS files could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// No server could be reached or the connection was refused.
    #[error("cannot connect to NATS at {servers}: {reason}{hint}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the client said.
        reason: String,
        /// What to check.
        hint: &'static str,
    },
    /// The nickname bucket could not be opened.
    #[error(
        "cannot open the nickname store (JetStream key-value bucket {bucket}): {reason}; the NATS server must run with JetStream enabled"
    )]
    Store {
        /// The bucket.
        bucket: String,
        /// What the server said.
        reason: String,
    },
    /// The subscription to the room failed.
    #[error("cannot subscribe to the room's subjects {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What the server said.
        reason: String,
    },
    /// A server can join one room, once.
    #[error("this server is in a room already")]
    Already,
}
