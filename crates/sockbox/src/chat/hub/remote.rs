//! The hub's one hook for other nodes ([`Remote`]): whatever a local member
//! says or does that others must see is handed to it after the local
//! fan-out, and the hub asks it about members it does not hold.
//!
//! Every call but the two claims is synchronous and must return at once
//! (queue, never wait on the network): the hub calls them from the
//! readers' tasks, sometimes under its own locks.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::{AnnounceKind, PrivateError};

/// A future returned by a [`Remote`] (boxed: the trait is used as a trait
/// object).
pub type RemoteFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Members of one node, for `/who`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoGroup {
    /// The node's name.
    pub node: String,
    /// Their nicknames, sorted without case.
    pub nicks: Vec<String>,
}

/// Why a nickname could not be claimed room-wide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Someone on this or another node has it.
    #[error("nickname {0} is taken")]
    Taken(String),
    /// The other nodes cannot be asked now.
    #[error("the room is split (the other nodes are out of reach): try again when it is whole")]
    Split,
    /// The shared store failed or did not answer.
    #[error("the nickname store did not answer ({0}): try again")]
    Store(String),
}

/// Other nodes of the room, as the hub sees them. Implemented by the
/// cluster layer ([`crate::chat::cluster`]); see the module documentation.
pub trait Remote: Send + Sync {
    /// Local member `from` said `msg` (whole lines, or raw bytes when
    /// `raw`); the local members have it already.
    fn said(&self, from: u64, msg: &Bytes, raw: bool);

    /// Local member `from` is the subject of announcement `text` (one line,
    /// without its newline).
    fn announced(&self, kind: AnnounceKind, from: u64, text: &str);

    /// A local member joined as `nick`.
    fn joined(&self, id: u64, nick: &str);

    /// A local member left.
    fn left(&self, id: u64, nick: &str);

    /// A local member changed nickname.
    fn renamed(&self, id: u64, old: &str, new: &str);

    /// Send `msg` (one formatted line) from local member `from` to the
    /// member called `to` on another node. `None` when no other node has
    /// that nickname.
    fn private(&self, from: u64, to: &str, msg: &Bytes) -> Option<Result<String, PrivateError>>;

    /// True when a member of another node has this nickname key.
    fn holds(&self, key: &str) -> bool;

    /// Members of the other nodes in reach now.
    fn online(&self) -> usize;

    /// True while the other nodes are out of reach (the room is split).
    fn is_split(&self) -> bool {
        false
    }

    /// The other nodes' members for `/who`, and a note to add (the room is
    /// split…).
    fn who(&self) -> (Vec<WhoGroup>, Option<String>);

    /// This node's name, for `/who`.
    fn node_name(&self) -> &str;

    /// Make `nick` belong to local member `id` room-wide.
    fn claim<'a>(&'a self, id: u64, nick: &'a str) -> RemoteFuture<'a, Result<(), ClaimError>>;

    /// Give back a name [`Remote::claim`] got for local member `id` but
    /// that was not used after all.
    fn unclaim(&self, id: u64, nick: &str);

    /// This node is shutting down: tell the others (once), then send
    /// nothing more.
    fn closing(&self);

    /// A name for a member that asked for none (or for a taken one):
    /// `userN`, claimed room-wide when the room is whole.
    fn default_nick(&self, id: u64) -> RemoteFuture<'_, String>;
}
