//! A bounded per-client outbound queue with the slow-reader rules.
//!
//! Messages are `Bytes`, so one broadcast is shared (reference counted) by
//! every queue it sits in; small messages are copied into a per-client tail
//! buffer instead, so thousands of short announcements cost their bytes and
//! not a queue slot each.
//!
//! What counts is the client's *backlog*: bytes queued plus bytes taken by
//! the writer and not yet written to the socket. Two rules bound it
//! ([`Limits`]):
//!
//! * **sustained lag**: a backlog above the soft limit is fine for a while
//!   (a burst); one that stays above it for longer than the allowed lag
//!   disconnects the client ([`Slow::Lag`]);
//! * **hard ceiling**: a push that would take the backlog past the ceiling
//!   disconnects the client at once ([`Slow::Ceiling`]), so memory per
//!   client stays bounded whatever the timing;
//! * **stalled flush**: once the queue is closed for flushing (the client
//!   left, or the server shuts down), a client that takes none of what is
//!   left for the allowed lag (at least [`MIN_STALL`]) is let go
//!   ([`Slow::Stalled`]), so one that stopped reading cannot hold its
//!   connection and its backlog for ever. A client that keeps reading,
//!   however slowly, gets everything.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Messages shorter than this are copied into the tail buffer.
const COALESCE: usize = 128;
/// What one queue slot is charged on top of its bytes.
const SLOT_COST: usize = 64;
/// The shortest wait for a closed queue's client to take something.
pub const MIN_STALL: Duration = Duration::from_secs(2);

/// The slow-reader rules of one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Backlog a client may carry for up to `max_lag` (a burst).
    pub soft: usize,
    /// Longest time the backlog may stay above `soft`.
    pub max_lag: Duration,
    /// Backlog never allowed (raised to at least `soft`).
    pub ceiling: usize,
}

impl Limits {
    /// Only a hard limit of `bytes` (no time allowance): the rule of a
    /// simple bounded queue.
    pub fn hard(bytes: usize) -> Self {
        Self {
            soft: bytes,
            max_lag: Duration::ZERO,
            ceiling: bytes,
        }
    }
}

/// Which slow-reader rule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slow {
    /// The backlog stayed above `soft` bytes for longer than `lag`.
    Lag {
        /// The soft limit.
        soft: usize,
        /// The time allowed above it.
        lag: Duration,
    },
    /// The backlog would have passed the hard ceiling.
    Ceiling {
        /// The ceiling.
        max: usize,
    },
    /// The queue was closed for flushing and the client took none of what
    /// was left for this long.
    Stalled {
        /// The time allowed without progress.
        after: Duration,
    },
}

impl std::fmt::Display for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lag { soft, lag } => write!(
                f,
                "more than {} waiting to be sent for over {}",
                bytes_text(*soft),
                super::humanize(*lag)
            ),
            Self::Ceiling { max } => write!(
                f,
                "{} waiting to be sent, the most one client may have",
                bytes_text(*max)
            ),
            Self::Stalled { after } => write!(
                f,
                "took none of its last lines for {}",
                super::humanize(*after)
            ),
        }
    }
}

/// `1048576` → `1 MiB`, `1500` → `1500 bytes`.
pub(crate) fn bytes_text(n: usize) -> String {
    for (unit, size) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// How a queue was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// Deliver what is queued, then close.
    Flush,
    /// Drop what is queued, tell the client why, close.
    Kick(String),
}

/// Result of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// A slow-reader rule refused it; nothing was queued.
    Full(Slow),
    /// The queue is closed; nothing was queued.
    Closed,
}

/// What the writer gets from [`Outbox::take`].
#[derive(Debug)]
pub enum Take {
    /// Data to write, in order; report progress with [`Outbox::sent`].
    Data(Batch),
    /// Nothing queued: wait on [`Outbox::notified`].
    Empty,
    /// Closed and (for [`Close::Flush`]) drained.
    Closed(Close),
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    /// Charged for what is queued (bytes plus slot costs).
    queued: usize,
    /// Taken by the writer, not yet reported written.
    inflight: usize,
    /// Since when the backlog is above the soft limit.
    over_since: Option<Instant>,
    /// Closed for flushing with a backlog: since the client last took
    /// something (or since the close).
    stalled_since: Option<Instant>,
    close: Option<Close>,
}

impl State {
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let b = self.tail.split().freeze();
            self.queue.push_back(b);
        }
    }

    fn backlog(&self) -> usize {
        self.queued + self.inflight
    }

    fn append(&mut self, msg: &Bytes) {
        if msg.len() < COALESCE {
            self.tail.extend_from_slice(msg);
        } else {
            self.seal_tail();
            self.queue.push_back(msg.clone());
        }
    }
}

/// The queue between the tasks that produce messages for one client and the
/// task that writes them to its socket. One writer, many producers.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    limits: Limits,
}

impl Outbox {
    /// A queue under `limits`.
    pub fn new(limits: Limits) -> Self {
        let soft = limits.soft.max(COALESCE);
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            limits: Limits {
                soft,
                max_lag: limits.max_lag,
                ceiling: limits.ceiling.max(soft),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rules in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Queue `msg`; fails (without queuing) when a slow-reader rule refuses
    /// it or the queue is closed.
    pub fn push(&self, msg: &Bytes) -> Push {
        if msg.is_empty() {
            return Push::Queued;
        }
        let mut st = self.lock();
        if st.close.is_some() {
            return Push::Closed;
        }
        if let Some(slow) = self.lagging(&st) {
            return Push::Full(slow);
        }
        let cost = msg.len() + if msg.len() < COALESCE { 0 } else { SLOT_COST };
        if st.backlog() + cost > self.limits.ceiling {
            return Push::Full(Slow::Ceiling {
                max: self.limits.ceiling,
            });
        }
        let mut wake = st.queued == 0;
        st.queued += cost;
        st.append(msg);
        if st.over_since.is_none() && st.backlog() > self.limits.soft {
            // The writer arms its lag timer on this wake-up.
            st.over_since = Some(Instant::now());
            wake = true;
        }
        drop(st);
        if wake {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// The lag rule: `Some` once the backlog has been above the soft limit
    /// for longer than allowed. Once the queue is closed for flushing, the
    /// stall rule instead: `Some` once the client has taken nothing for the
    /// allowed lag (at least [`MIN_STALL`]); the rest of a flush is also
    /// bounded by what its closer allows (the grace period on shutdown).
    fn lagging(&self, st: &State) -> Option<Slow> {
        let at = self.deadline(st)?;
        (Instant::now() >= at).then(|| match st.close {
            Some(Close::Flush) => Slow::Stalled {
                after: self.stall(),
            },
            _ => Slow::Lag {
                soft: self.limits.soft,
                lag: self.limits.max_lag,
            },
        })
    }

    fn stall(&self) -> Duration {
        self.limits.max_lag.max(MIN_STALL)
    }

    /// When the lag rule (or, once closed for flushing, the stall rule)
    /// fires if nothing is written before then (`None`: neither applies).
    pub fn lag_deadline(&self) -> Option<Instant> {
        self.deadline(&self.lock())
    }

    fn deadline(&self, st: &State) -> Option<Instant> {
        match st.close {
            Some(Close::Flush) => st.stalled_since.map(|t| t + self.stall()),
            Some(Close::Kick(_)) => None,
            None => st.over_since.map(|t| t + self.limits.max_lag),
        }
    }

    /// The lag rule, checked now (for a writer stuck on a socket).
    pub fn check_lag(&self) -> Option<Slow> {
        self.lagging(&self.lock())
    }

    /// The writer wrote `n` bytes of what it took. Returns the lag
    /// deadline now in force, as [`Outbox::lag_deadline`] does.
    pub fn sent(&self, n: usize) -> Option<Instant> {
        let mut st = self.lock();
        st.inflight = st.inflight.saturating_sub(n);
        if st.backlog() <= self.limits.soft {
            st.over_since = None;
        }
        if n > 0 && st.stalled_since.is_some() {
            st.stalled_since = Some(Instant::now());
        }
        self.deadline(&st)
    }

    /// Close the queue. The first close wins, except that a kick replaces a
    /// pending flush. Returns true when this call changed the state.
    pub fn close(&self, how: Close) -> bool {
        self.close_with(how, None)
    }

    /// Close the queue after appending `last` (a goodbye line) to what is
    /// queued. `last` is not subject to the limits: a client that is behind
    /// still gets it after everything it was sent. It is dropped when the
    /// queue was closed already.
    pub fn close_with(&self, how: Close, last: Option<&Bytes>) -> bool {
        let mut st = self.lock();
        let changed = match (&st.close, &how) {
            (None, _) | (Some(Close::Flush), Close::Kick(_)) => {
                if matches!(how, Close::Kick(_)) {
                    st.queue.clear();
                    st.tail = BytesMut::new();
                    st.queued = 0;
                    st.over_since = None;
                    st.stalled_since = None;
                } else {
                    if let Some(last) = last.filter(|l| !l.is_empty()) {
                        st.queued += last.len();
                        st.append(last);
                    }
                    // The stall rule runs from now: a client behind gets the
                    // allowed lag to take something.
                    st.stalled_since = (st.backlog() > 0).then(Instant::now);
                }
                st.close = Some(how);
                true
            }
            _ => false,
        };
        drop(st);
        self.notify.notify_one();
        changed
    }

    /// How the queue was closed, if it was.
    pub fn closed(&self) -> Option<Close> {
        self.lock().close.clone()
    }

    /// Bytes waiting now: queued, and taken but not yet written.
    pub fn backlog(&self) -> usize {
        let st = self.lock();
        st.queue.iter().map(Bytes::len).sum::<usize>() + st.tail.len() + st.inflight
    }

    /// Take everything queued (for the writer).
    pub fn take(&self) -> Take {
        let mut st = self.lock();
        if let Some(Close::Kick(r)) = &st.close {
            return Take::Closed(Close::Kick(r.clone()));
        }
        st.seal_tail();
        if st.queue.is_empty() {
            if st.queue.capacity() > 16 {
                st.queue = VecDeque::new();
            }
            if st.tail.capacity() > 0 {
                st.tail = BytesMut::new();
            }
            return match &st.close {
                Some(c) => Take::Closed(c.clone()),
                None => Take::Empty,
            };
        }
        let parts: VecDeque<Bytes> = std::mem::take(&mut st.queue);
        let batch = Batch::new(parts);
        st.queued = 0;
        st.inflight += batch.remaining;
        Take::Data(batch)
    }

    /// Wait until something was pushed to an empty queue, the backlog
    /// passed the soft limit, or the queue was closed. A wake-up that
    /// happened before this call is not missed (it is stored).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Queued messages as one `Buf`, written with vectored I/O.
#[derive(Debug)]
pub struct Batch {
    parts: VecDeque<Bytes>,
    remaining: usize,
}

impl Batch {
    fn new(parts: VecDeque<Bytes>) -> Self {
        let remaining = parts.iter().map(Bytes::len).sum();
        Self { parts, remaining }
    }
}

impl Buf for Batch {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |b| b.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        self.remaining -= cnt.min(self.remaining);
        while cnt > 0 {
            let Some(front) = self.parts.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(self.parts.iter()) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests;
