//! The room: who is connected, their nicknames, and fan-out of messages to
//! everyone's bounded queue. Fan-out never waits: a client whose queue is
//! full is kicked instead.
//!
//! Announcements (joins, leaves, nick changes) are collected and fanned out
//! together, by a ticker every [`ANNOUNCE_EVERY`] or before the next message,
//! whichever comes first: a storm of 10 000 joins then costs a few writes
//! per client, not 10 000, and nobody sees a message from a client before
//! the announcement of its join or new name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use super::command::{NickError, nick_key, validate_nick};
use super::outbox::{Close, Outbox, Push};

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
    /// Fires to abort a write in progress (kick, end of grace period).
    pub abort_writes: CancellationToken,
    /// Send `\r\n` line ends to this client (it sent one).
    pub crlf: AtomicBool,
    /// Join order (set by [`Hub::join`]): announcements made before a
    /// member joined are not sent to it.
    joined: AtomicU64,
}

impl Member {
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

/// One announcement line waiting to be sent.
#[derive(Debug)]
struct Pending {
    /// The member it is about, who does not get it.
    except: Option<u64>,
    /// Joins so far when it was made: later joiners do not get it.
    joins: u64,
    line: Bytes,
}

impl Pending {
    fn for_member(&self, m: &Member) -> bool {
        self.except != Some(m.id) && m.joined.load(Ordering::Relaxed) <= self.joins
    }
}

/// How often collected announcements are sent at the latest.
pub const ANNOUNCE_EVERY: Duration = Duration::from_millis(50);

/// Room-wide state shared by every connection.
#[derive(Debug)]
pub struct Hub {
    state: RwLock<State>,
    max_members: usize,
    closing: AtomicBool,
    /// Announcement lines not yet sent.
    pending: Mutex<Vec<Pending>>,
    /// Joins so far (the last join's order number).
    joins: AtomicU64,
    /// True while `pending` holds lines or is being sent.
    has_pending: AtomicBool,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room has `max_members` already.
    Full(usize),
    /// The server is shutting down.
    Closing,
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
    /// An empty room for at most `max_members` participants.
    pub fn new(max_members: usize) -> Self {
        Self {
            state: RwLock::new(State::default()),
            max_members,
            closing: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            joins: AtomicU64::new(0),
            has_pending: AtomicBool::new(false),
        }
    }

    /// Queue an announcement line (without its newline) for everyone but
    /// `except`; it goes out with [`Hub::flush_announcements`].
    pub fn announce(&self, except: Option<u64>, text: &str) {
        let mut line = BytesMut::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"\n");
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.push(Pending {
            except,
            joins: self.joins.load(Ordering::Acquire),
            line: line.freeze(),
        });
        self.has_pending.store(true, Ordering::Release);
    }

    /// Send the collected announcements: one shared batch for almost
    /// everyone, a copy without its own lines for each member they skip.
    /// Holds the pending lock while sending, so a message fanned out after
    /// this returns is queued after them everywhere.
    pub fn flush_announcements(&self) {
        if !self.has_pending.load(Ordering::Acquire) {
            return;
        }
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if p.is_empty() {
            self.has_pending.store(false, Ordering::Release);
            return;
        }
        let lines = std::mem::take(&mut *p);
        let mut all = BytesMut::new();
        for l in &lines {
            all.extend_from_slice(&l.line);
        }
        let all = all.freeze();
        let skipped: std::collections::HashSet<u64> =
            lines.iter().filter_map(|l| l.except).collect();
        let oldest = lines.iter().map(|l| l.joins).min().unwrap_or(0);
        let mut flavours = Flavours {
            lf: &all,
            crlf: None,
        };
        let st = self.read();
        for m in st.members.values() {
            if skipped.contains(&m.id) || m.joined.load(Ordering::Relaxed) > oldest {
                // Not every line is for this member: its own copy.
                let mut own = BytesMut::new();
                for l in lines.iter().filter(|l| l.for_member(m)) {
                    own.extend_from_slice(&l.line);
                }
                let own = own.freeze();
                let own = if m.crlf.load(Ordering::Relaxed) {
                    to_crlf(&own)
                } else {
                    own
                };
                Self::push_or_kick(m, &own);
            } else {
                Self::push_or_kick(m, flavours.for_member(m));
            }
        }
        drop(st);
        self.has_pending.store(false, Ordering::Release);
        drop(p);
    }

    fn push_or_kick(m: &Member, msg: &Bytes) -> bool {
        match m.outbox.push(msg) {
            Push::Queued => true,
            Push::Full => {
                m.kick(format!(
                    "too slow: more than {} bytes waiting to be sent",
                    m.outbox.limit()
                ));
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
    /// given and free). Returns the nickname and the number now online.
    pub fn join(
        &self,
        member: Arc<Member>,
        nick: Option<&str>,
    ) -> Result<(String, usize), JoinError> {
        let mut st = self.write();
        if self.is_closing() {
            return Err(JoinError::Closing);
        }
        if st.members.len() >= self.max_members {
            return Err(JoinError::Full(self.max_members));
        }
        let wanted = nick.filter(|n| !st.nicks.contains_key(&nick_key(n)));
        let name = if let Some(n) = wanted {
            n.to_owned()
        } else {
            loop {
                st.serial += 1;
                let n = format!("user{}", st.serial);
                if !st.nicks.contains_key(&n) {
                    break n;
                }
            }
        };
        st.nicks.insert(nick_key(&name), (member.id, name.clone()));
        let seq = self.joins.load(Ordering::Relaxed) + 1;
        member.joined.store(seq, Ordering::Relaxed);
        self.joins.store(seq, Ordering::Release);
        st.members.insert(member.id, member);
        Ok((name, st.members.len()))
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
        Some(st.members.len())
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
        st.nicks.remove(&nick_key(old));
        st.nicks.insert(key, (id, new.to_owned()));
        Ok(new.to_owned())
    }

    /// The member called `nick` (without case), with its nickname as typed.
    pub fn find(&self, nick: &[u8]) -> Option<(Arc<Member>, String)> {
        let key = nick_key(std::str::from_utf8(nick).ok()?);
        let st = self.read();
        let (id, name) = st.nicks.get(&key)?;
        Some((st.members.get(id)?.clone(), name.clone()))
    }

    /// Every nickname, sorted without case.
    pub fn who(&self) -> Vec<String> {
        let mut v: Vec<(String, String)> = self
            .read()
            .nicks
            .iter()
            .map(|(k, (_, n))| (k.clone(), n.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
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

    /// Queue `text` (one notice line) for one member, whatever its queue holds.
    pub fn notice(member: &Member, text: &str) {
        let mut line = Vec::with_capacity(text.len() + 2);
        line.extend_from_slice(text.as_bytes());
        if member.crlf.load(Ordering::Relaxed) {
            line.push(b'\r');
        }
        line.push(b'\n');
        member.outbox.push_always(&line);
    }

    /// Server shutdown: stop admitting, tell everyone `text`, and close every
    /// queue so writers flush and hang up; readers are told to stop.
    pub fn close_all(&self, text: &str) {
        self.closing.store(true, Ordering::Release);
        let st = self.read();
        for m in st.members.values() {
            Self::notice(m, text);
            m.outbox.close(Close::Flush);
            m.stop_reading.cancel();
        }
    }
}

impl Member {
    /// A new member with a queue of `queue_limit` bytes.
    pub fn new(
        id: u64,
        peer: String,
        queue_limit: usize,
        soft: &CancellationToken,
        hard: &CancellationToken,
    ) -> Self {
        Self {
            id,
            peer,
            outbox: Outbox::new(queue_limit),
            stop_reading: soft.child_token(),
            abort_writes: hard.child_token(),
            crlf: AtomicBool::new(false),
            joined: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::chat::outbox::Take;

    fn member(id: u64, limit: usize) -> Arc<Member> {
        let t = CancellationToken::new();
        Arc::new(Member::new(id, format!("peer{id}"), limit, &t, &t))
    }

    fn text(m: &Member) -> String {
        use bytes::Buf;
        match m.outbox.take() {
            Take::Data(mut b) => {
                let mut v = vec![0; b.remaining()];
                b.copy_to_slice(&mut v);
                String::from_utf8(v).unwrap()
            }
            _ => String::new(),
        }
    }

    #[test]
    fn names_and_collisions() {
        let hub = Hub::new(10);
        let (a, b) = (member(1, 4096), member(2, 4096));
        assert_eq!(hub.join(a, None).unwrap(), ("user1".into(), 1));
        assert_eq!(hub.join(b, None).unwrap(), ("user2".into(), 2));
        assert_eq!(hub.rename(1, "user1", b"Alice").unwrap(), "Alice");
        assert_eq!(
            hub.rename(2, "user2", b"alice"),
            Err(NickError::Taken("Alice".into()))
        );
        assert_eq!(hub.rename(2, "user2", b"bad nick"), Err(NickError::Chars));
        // Changing the case of one's own nick is fine.
        assert_eq!(hub.rename(1, "Alice", b"ALICE").unwrap(), "ALICE");
        assert_eq!(hub.who(), vec!["ALICE", "user2"]);
        assert_eq!(hub.find(b"alice").unwrap().0.id, 1);
        // A new client does not get a userN someone took as a nick.
        hub.rename(2, "user2", b"user3").unwrap();
        assert_eq!(hub.join(member(3, 4096), None).unwrap().0, "user4");
        assert_eq!(hub.leave(1, "ALICE"), Some(2));
        assert!(hub.find(b"alice").is_none());
        assert_eq!(hub.leave(1, "ALICE"), None);
    }

    #[test]
    fn full_room_refuses() {
        let hub = Hub::new(1);
        hub.join(member(1, 4096), None).unwrap();
        assert_eq!(hub.join(member(2, 4096), None), Err(JoinError::Full(1)));
    }

    #[test]
    fn broadcast_skips_sender_translates_crlf_and_kicks_slow() {
        let hub = Hub::new(10);
        let (a, b, slow) = (member(1, 4096), member(2, 4096), member(3, 600));
        b.crlf.store(true, Ordering::Relaxed);
        hub.join(a.clone(), None).unwrap();
        hub.join(b.clone(), None).unwrap();
        hub.join(slow.clone(), None).unwrap();
        let msg = Bytes::from_static(b"<user1> hi\n<user1> there\n");
        assert_eq!(hub.broadcast(Some(1), &msg), 2);
        assert_eq!(text(&a), "");
        assert_eq!(text(&b), "<user1> hi\r\n<user1> there\r\n");
        let big = Bytes::from(vec![b'z'; 700]);
        hub.broadcast(Some(1), &big);
        assert!(slow.stop_reading.is_cancelled());
        assert!(matches!(slow.outbox.closed(), Some(Close::Kick(r)) if r.contains("too slow")));
        assert_eq!(text(&b).len(), 700);
    }

    #[test]
    fn announcements_are_batched_skip_their_subject_and_precede_messages() {
        let hub = Hub::new(10);
        let (a, b) = (member(1, 4096), member(2, 4096));
        hub.join(a.clone(), None).unwrap();
        hub.join(b.clone(), None).unwrap();
        hub.announce(Some(2), "*** user2 joined");
        hub.announce(Some(1), "*** user1 is now known as x");
        assert_eq!(text(&a), "", "nothing sent before the flush");
        hub.broadcast(Some(2), &Bytes::from_static(b"<user2> hi\n"));
        assert_eq!(text(&a), "*** user2 joined\n<user2> hi\n");
        assert_eq!(text(&b), "*** user1 is now known as x\n");
        hub.flush_announcements();
        assert_eq!(text(&a), "");
        // A later joiner does not get what was announced before it came.
        hub.announce(None, "*** before c");
        let c = member(3, 4096);
        hub.join(c.clone(), None).unwrap();
        hub.announce(Some(3), "*** c joined");
        hub.flush_announcements();
        assert_eq!(text(&c), "");
        assert_eq!(text(&a), "*** before c\n*** c joined\n");
    }

    #[test]
    fn crlf_translation() {
        assert_eq!(&to_crlf(b"a\nb\n")[..], b"a\r\nb\r\n");
        assert_eq!(&to_crlf(b"no newline")[..], b"no newline");
    }
}
