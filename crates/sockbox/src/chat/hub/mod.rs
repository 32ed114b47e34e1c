//! The room: who is connected, their nicknames, and fan-out of messages to
//! everyone's bounded queue. Fan-out never waits: a client that a
//! slow-reader rule refuses ([`Slow`](super::outbox::Slow)) is kicked
//! instead.
//!
//! Announcements (joins, leaves, nick changes) are collected and fanned out
//! together, by a ticker every [`ANNOUNCE_EVERY`] or before the next message,
//! whichever comes first: a storm of 10 000 joins then costs a few writes
//! per client, not 10 000, and nobody sees a message from a client before
//! the announcement of its join or new name.
//!
//! # The seam
//! Sessions reach other members only through the hub: [`Hub::broadcast`]
//! and [`Hub::broadcast_raw`] (lines and bytes for everyone but the
//! sender), [`Hub::announce`], [`Hub::private`], [`Hub::who`],
//! [`Hub::rename`]. Lines from elsewhere (another node of a cluster) come in
//! through the same calls with no local sender (`except: None`); whatever
//! must leave this node passes through them too, so a cluster layer wraps
//! these calls and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

mod announce;
mod directory;
mod remote;

use announce::Pending;
pub use announce::{ANNOUNCE_EVERY, ANNOUNCE_MAX, AnnounceKind};
pub use remote::{ClaimError, Remote, RemoteFuture, WhoGroup};

use super::command::{NickError, nick_key, validate_nick};
use super::outbox::{Close, Limits, Outbox, Push};
use crate::net::Drain;

/// One connected participant, as the room sees it.
#[derive(Debug)]
pub struct Member {
    /// Unique for the server's lifetime.
    pub id: u64,
    /// Where the client came from (`IP:port`, or `stdin` for the operator).
    pub peer: String,
    /// Its outbound queue.
    pub outbox: Outbox,
    /// Fires to make the client's reader stop (kick, shutdown).
    pub stop_reading: CancellationToken,
    /// Fires to abort a write in progress (kick, end of the grace period).
    pub abort_writes: CancellationToken,
    /// Send `\r\n` line ends to this client (it sent one).
    pub crlf: AtomicBool,
    /// Join order (set by [`Hub::join`]): announcements made before a
    /// member joined are not sent to it.
    joined: AtomicU64,
    /// A nickname given by the room (another node won it while the room
    /// was split), for the session to take on.
    forced_nick: Mutex<Option<String>>,
    has_forced_nick: AtomicBool,
}

impl Member {
    /// Make the member's session take on `nick` before its next line (the
    /// hub's map already says so).
    pub fn force_nick(&self, nick: String) {
        *self
            .forced_nick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(nick);
        self.has_forced_nick.store(true, Ordering::Release);
    }

    /// The nickname the room gave this member since the last call, if any.
    pub fn take_forced_nick(&self) -> Option<String> {
        if !self.has_forced_nick.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.forced_nick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Disconnect this member now, telling it (best effort) why.
    pub fn kick(&self, reason: impl Into<String>) {
        if self.outbox.close(Close::Kick(reason.into())) {
            self.stop_reading.cancel();
            self.abort_writes.cancel();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<u64, Arc<Member>>,
    /// nick_key → (member id, nick as typed).
    nicks: HashMap<String, (u64, String)>,
    serial: u64,
}

/// Room-wide state shared by every connection.
pub struct Hub {
    state: RwLock<State>,
    closing: AtomicBool,
    /// Announcement lines not yet sent.
    pending: Mutex<Vec<Pending>>,
    /// Joins so far (the last join's order number).
    joins: AtomicU64,
    /// True while `pending` holds lines or is being sent.
    has_pending: AtomicBool,
    /// The other nodes of a cluster, when there are.
    remote: OnceLock<Arc<dyn Remote>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("online", &self.len())
            .field("closing", &self.is_closing())
            .field("remote", &self.remote().map(|r| r.node_name().to_owned()))
            .finish_non_exhaustive()
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The server is shutting down.
    Closing,
}

/// Why a private message did not reach its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateError {
    /// Nobody has that nickname.
    NoSuchNick,
    /// The recipient (named as typed) was too slow and was disconnected.
    TooSlow(String),
    /// The recipient (named as typed) is leaving.
    Leaving(String),
    /// The recipient (named as typed) is on another node, out of reach
    /// now (the room is split).
    Unreachable(String),
}

/// A message in both line-end flavours; the `\r\n` one is built on demand.
struct Flavours<'a> {
    lf: &'a Bytes,
    crlf: Option<Bytes>,
}

impl Flavours<'_> {
    fn for_member(&mut self, m: &Member) -> &Bytes {
        if m.crlf.load(Ordering::Relaxed) {
            let lf = self.lf;
            self.crlf.get_or_insert_with(|| to_crlf(lf))
        } else {
            self.lf
        }
    }
}

/// Turn every `\n` in `msg` into `\r\n`.
pub fn to_crlf(msg: &[u8]) -> Bytes {
    let extra = memchr::memchr_iter(b'\n', msg).count();
    let mut out = BytesMut::with_capacity(msg.len() + extra);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', msg) {
        out.extend_from_slice(&msg[start..i]);
        out.extend_from_slice(b"\r\n");
        start = i + 1;
    }
    out.extend_from_slice(&msg[start..]);
    out.freeze()
}

impl Hub {
    /// An empty room. The server caps the number of network clients
    /// before they get here; the room itself has no limit.
    pub fn new() -> Self {
        Self {
            state: RwLock::new(State::default()),
            closing: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            joins: AtomicU64::new(0),
            has_pending: AtomicBool::new(false),
            remote: OnceLock::new(),
        }
    }

    /// Connect this room to other nodes. Only once: false when a remote
    /// was set already.
    pub fn set_remote(&self, remote: Arc<dyn Remote>) -> bool {
        self.remote.set(remote).is_ok()
    }

    /// The other nodes, when this room has them.
    pub fn remote(&self) -> Option<&Arc<dyn Remote>> {
        self.remote.get()
    }

    /// Participants in the whole room: here and on the other nodes in reach.
    pub fn online(&self) -> usize {
        self.len() + self.remote().map_or(0, |r| r.online())
    }

    /// True when `key` (a [`nick_key`]) is someone's, here or elsewhere.
    fn taken(&self, st: &State, key: &str) -> bool {
        st.nicks.contains_key(key) || self.remote().is_some_and(|r| r.holds(key))
    }

    fn push_or_kick(m: &Member, msg: &Bytes) -> bool {
        match m.outbox.push(msg) {
            Push::Queued => true,
            Push::Full(slow) => {
                m.kick(format!("too slow: {slow}"));
                false
            }
            Push::Closed => false,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Participants now.
    pub fn len(&self) -> usize {
        self.read().members.len()
    }

    /// True when nobody is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once [`Hub::close_all`] ran.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Add `member` under the first free `userN` nickname (or `nick` when
    /// given, valid and free). Returns the nickname and the number now online.
    /// `welcome(nick, online)` may give a first line for the member, queued
    /// before anything else can reach it.
    pub fn join(
        &self,
        member: Arc<Member>,
        nick: Option<&str>,
        welcome: impl FnOnce(&str, usize) -> Option<String>,
    ) -> Result<(String, usize), JoinError> {
        let mut st = self.write();
        if self.is_closing() {
            return Err(JoinError::Closing);
        }
        // A nickname that breaks the rules (callers should have checked) is
        // replaced like a taken one: it could not be /msg'd or could spoof.
        let wanted = nick.filter(|n| {
            validate_nick(n.as_bytes()).is_ok() && !st.nicks.contains_key(&nick_key(n))
        });
        let name = if let Some(n) = wanted {
            n.to_owned()
        } else {
            loop {
                st.serial += 1;
                let n = format!("user{}", st.serial);
                if !self.taken(&st, &n) {
                    break n;
                }
            }
        };
        st.nicks.insert(nick_key(&name), (member.id, name.clone()));
        let seq = self.joins.load(Ordering::Relaxed) + 1;
        member.joined.store(seq, Ordering::Relaxed);
        self.joins.store(seq, Ordering::Release);
        let online = st.members.len() + 1 + self.remote().map_or(0, |r| r.online());
        if let Some(text) = welcome(&name, online) {
            Self::notice(&member, &text);
        }
        let id = member.id;
        st.members.insert(id, member);
        if let Some(r) = self.remote() {
            r.joined(id, &name);
        }
        Ok((name, online))
    }

    /// Remove member `id` (known as `nick`). Returns how many remain, or
    /// `None` when it was not a member.
    pub fn leave(&self, id: u64, nick: &str) -> Option<usize> {
        let mut st = self.write();
        st.members.remove(&id)?;
        let key = nick_key(nick);
        if st.nicks.get(&key).is_some_and(|(i, _)| *i == id) {
            st.nicks.remove(&key);
        }
        if let Some(r) = self.remote() {
            r.left(id, nick);
        }
        Some(st.members.len() + self.remote().map_or(0, |r| r.online()))
    }

    /// Rename member `id` from `old` to `new` (validated, unique without case).
    pub fn rename(&self, id: u64, old: &str, new: &[u8]) -> Result<String, NickError> {
        let new = validate_nick(new)?;
        let key = nick_key(new);
        let mut st = self.write();
        if let Some((owner, taken)) = st.nicks.get(&key)
            && *owner != id
        {
            return Err(NickError::Taken(taken.clone()));
        }
        if key != nick_key(old) && self.remote().is_some_and(|r| r.holds(&key)) {
            return Err(NickError::Taken(new.to_owned()));
        }
        st.nicks.remove(&nick_key(old));
        st.nicks.insert(key, (id, new.to_owned()));
        if let Some(r) = self.remote() {
            r.renamed(id, old, new);
        }
        Ok(new.to_owned())
    }

    /// Queue `msg` (whole lines ending in `\n`) for every member but
    /// `except`. Members whose queue is full are kicked. Returns how many
    /// queues took it.
    pub fn broadcast(&self, except: Option<u64>, msg: &Bytes) -> usize {
        self.fan_out(except, msg, true)
    }

    /// Like [`Hub::broadcast`] for raw bytes: no `\r\n` translation.
    pub fn broadcast_raw(&self, except: Option<u64>, msg: &Bytes) -> usize {
        self.fan_out(except, msg, false)
    }

    fn fan_out(&self, except: Option<u64>, msg: &Bytes, lines: bool) -> usize {
        if msg.is_empty() {
            return 0;
        }
        let delivered = self.fan_out_here(except, msg, lines);
        if let (Some(from), Some(r)) = (except, self.remote()) {
            r.said(from, msg, !lines);
        }
        delivered
    }

    fn fan_out_here(&self, except: Option<u64>, msg: &Bytes, lines: bool) -> usize {
        self.flush_announcements();
        let mut flavours = Flavours {
            lf: msg,
            crlf: None,
        };
        let mut delivered = 0;
        let st = self.read();
        for m in st.members.values() {
            if Some(m.id) == except {
                continue;
            }
            let out = if lines { flavours.for_member(m) } else { msg };
            if Self::push_or_kick(m, out) {
                delivered += 1;
            }
        }
        delivered
    }

    /// Queue `text` (one notice line) for one member. Replies count against
    /// its queue limit like everything else, so a client that asks for
    /// `/who` a million times without reading is disconnected, not buffered.
    pub fn notice(member: &Member, text: &str) {
        let mut line = BytesMut::with_capacity(text.len() + 2);
        line.extend_from_slice(text.as_bytes());
        if member.crlf.load(Ordering::Relaxed) {
            line.extend_from_slice(b"\r");
        }
        line.extend_from_slice(b"\n");
        Self::push_or_kick(member, &line.freeze());
    }

    /// Like [`Hub::private`], from local member `from`: a nickname not
    /// here is looked for on the other nodes.
    pub fn private_from(&self, from: u64, to: &[u8], msg: &Bytes) -> Result<String, PrivateError> {
        match self.private(to, msg) {
            Err(PrivateError::NoSuchNick) => {
                let (Some(r), Ok(to)) = (self.remote(), std::str::from_utf8(to)) else {
                    return Err(PrivateError::NoSuchNick);
                };
                r.private(from, to, msg)
                    .unwrap_or(Err(PrivateError::NoSuchNick))
            }
            other => other,
        }
    }

    /// Queue `msg` (one line ending in `\n`, already formatted and escaped)
    /// for the member called `to` only, after the announcements collected so
    /// far. Returns the recipient's nickname as typed.
    pub fn private(&self, to: &[u8], msg: &Bytes) -> Result<String, PrivateError> {
        let (target, name) = self.find(to).ok_or(PrivateError::NoSuchNick)?;
        self.flush_announcements();
        let msg = if target.crlf.load(Ordering::Relaxed) {
            to_crlf(msg)
        } else {
            msg.clone()
        };
        match target.outbox.push(&msg) {
            Push::Queued => Ok(name),
            Push::Full(slow) => {
                target.kick(format!("too slow: {slow}"));
                Err(PrivateError::TooSlow(name))
            }
            Push::Closed => Err(PrivateError::Leaving(name)),
        }
    }

    /// Server shutdown: stop admitting, and close every queue so writers
    /// flush and hang up, with `text` (when given) as the last line after
    /// everything already queued, whatever the queue's limits; readers are
    /// told to stop. Nobody is kicked for being behind here.
    pub fn close_all(&self, text: Option<&str>) {
        self.closing.store(true, Ordering::Release);
        let st = self.read();
        for m in st.members.values() {
            let last = text.map(|t| {
                let end: &str = if m.crlf.load(Ordering::Relaxed) {
                    "\r\n"
                } else {
                    "\n"
                };
                Bytes::from(format!("{t}{end}"))
            });
            m.outbox.close_with(Close::Flush, last.as_ref());
            m.stop_reading.cancel();
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Member {
    /// A new member whose queue follows `limits`; it stops reading when
    /// `drain` begins and abandons its writes when `drain` ends.
    pub fn new(id: u64, peer: String, limits: Limits, drain: &Drain) -> Self {
        Self {
            id,
            peer,
            outbox: Outbox::new(limits),
            stop_reading: drain.soft().token().child_token(),
            abort_writes: drain.hard().token().child_token(),
            crlf: AtomicBool::new(false),
            joined: AtomicU64::new(0),
            forced_nick: Mutex::new(None),
            has_forced_nick: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests;
