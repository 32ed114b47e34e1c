//! A bounded per-client outbound queue.
//!
//! Messages are `Bytes`, so one broadcast is shared (reference counted) by
//! every queue it sits in; small messages are copied into a per-client tail
//! buffer instead, so thousands of short announcements cost their bytes and
//! not a queue slot each. The bound is in bytes (plus a per-slot overhead):
//! a push that would pass it fails, and the caller disconnects the client.
//! The writer takes the whole queue at once, so at most twice the limit is
//! held for one client: one batch being written and a full queue behind it.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Mutex;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::Notify;

/// Messages shorter than this are copied into the tail buffer.
const COALESCE: usize = 128;
/// What one queue slot is charged on top of its bytes.
const SLOT_COST: usize = 64;

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
    /// The queue is over its limit; nothing was queued.
    Full,
    /// The queue is closed; nothing was queued.
    Closed,
}

/// What the writer gets from [`Outbox::take`].
#[derive(Debug)]
pub enum Take {
    /// Data to write, in order.
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
    charged: usize,
    close: Option<Close>,
}

impl State {
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let b = self.tail.split().freeze();
            self.queue.push_back(b);
        }
    }
}

/// The queue between the tasks that produce messages for one client and the
/// task that writes them to its socket. One writer, many producers.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    limit: usize,
}

impl Outbox {
    /// A queue that holds at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            limit: limit.max(COALESCE),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue `msg`; fails (without queuing) when over the limit or closed.
    pub fn push(&self, msg: &Bytes) -> Push {
        if msg.is_empty() {
            return Push::Queued;
        }
        let mut st = self.lock();
        if st.close.is_some() {
            return Push::Closed;
        }
        let small = msg.len() < COALESCE;
        let cost = msg.len() + if small { 0 } else { SLOT_COST };
        if st.charged + cost > self.limit {
            return Push::Full;
        }
        st.charged += cost;
        if small {
            st.tail.extend_from_slice(msg);
        } else {
            st.seal_tail();
            st.queue.push_back(msg.clone());
        }
        let was_idle = st.charged == cost;
        drop(st);
        if was_idle {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// Close the queue. The first close wins, except that a kick replaces a
    /// pending flush. Returns true when this call changed the state.
    pub fn close(&self, how: Close) -> bool {
        let mut st = self.lock();
        let changed = match (&st.close, &how) {
            (None, _) | (Some(Close::Flush), Close::Kick(_)) => {
                if matches!(how, Close::Kick(_)) {
                    st.queue.clear();
                    st.tail = BytesMut::new();
                    st.charged = 0;
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

    /// The queue's limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How the queue was closed, if it was.
    pub fn closed(&self) -> Option<Close> {
        self.lock().close.clone()
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        let st = self.lock();
        st.queue.iter().map(Bytes::len).sum::<usize>() + st.tail.len()
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
        st.charged = 0;
        Take::Data(Batch::new(parts))
    }

    /// Wait until something was pushed or the queue was closed. A push that
    /// happened before this call is not missed (the wake-up is stored).
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn drain(o: &Outbox) -> Vec<u8> {
        match o.take() {
            Take::Data(mut b) => {
                let mut v = vec![0; b.remaining()];
                b.copy_to_slice(&mut v);
                v
            }
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn order_is_kept_across_small_and_large() {
        let o = Outbox::new(1 << 20);
        let big = Bytes::from(vec![b'x'; 600]);
        o.push(&Bytes::from_static(b"a\n"));
        o.push(&big);
        o.push(&Bytes::from_static(b"b\n"));
        let got = drain(&o);
        assert_eq!(&got[..2], b"a\n");
        assert_eq!(&got[2..602], &big[..]);
        assert_eq!(&got[602..], b"b\n");
        assert!(matches!(o.take(), Take::Empty));
    }

    #[test]
    fn limit_refuses_and_kick_drops_queue() {
        let o = Outbox::new(1000);
        let msg = Bytes::from(vec![b'y'; 400]);
        assert_eq!(o.push(&msg), Push::Queued);
        assert_eq!(o.push(&msg), Push::Queued);
        assert_eq!(o.push(&msg), Push::Full);
        assert_eq!(o.queued(), 800);
        assert!(o.close(Close::Kick("slow".into())));
        assert_eq!(o.queued(), 0);
        assert_eq!(o.push(&msg), Push::Closed);
        assert!(matches!(o.take(), Take::Closed(Close::Kick(r)) if r == "slow"));
    }

    #[test]
    fn flush_close_drains_first() {
        let o = Outbox::new(1000);
        o.push(&Bytes::from_static(b"last\n"));
        o.close(Close::Flush);
        assert!(!o.close(Close::Flush));
        assert_eq!(drain(&o), b"last\n");
        assert!(matches!(o.take(), Take::Closed(Close::Flush)));
    }

    #[test]
    fn batch_advances_over_parts() {
        let mut b = Batch::new(VecDeque::from([
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
        ]));
        let mut io = [IoSlice::new(&[]); 4];
        assert_eq!(b.chunks_vectored(&mut io), 2);
        b.advance(4);
        assert_eq!(b.remaining(), 1);
        assert_eq!(b.chunk(), b"e");
        b.advance(1);
        assert_eq!(b.remaining(), 0);
    }

    #[tokio::test]
    async fn push_before_wait_is_not_missed() {
        let o = Outbox::new(1000);
        o.push(&Bytes::from_static(b"x"));
        tokio::time::timeout(std::time::Duration::from_secs(1), o.notified())
            .await
            .unwrap();
    }
}
