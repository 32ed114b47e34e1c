//! What this node sends, in order, through one bounded queue: the hub's
//! calls stamp and queue a message and return at once; one task publishes.
//!
//! A message is stamped ([`Stamp`]) when it is queued, whether it is kept
//! or not: when the queue is full (the link to NATS is slower than the
//! room) or the room is split, it is dropped and its number is skipped, so
//! every receiver sees the gap and tells its members how many lines it
//! missed. The local roster lives here too, under the same lock as the
//! stamps, so a roster and the joins and leaves around it are queued in the
//! order they happened.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use super::proto::{self, Kind, Roster, Stamp};

/// Members per roster message (a roster of 10 000 goes in 40 parts).
const ROSTER_PART: usize = 250;
/// What a queued message costs beyond its subject and payload.
const OVERHEAD: usize = 64;

/// One message waiting to be published.
#[derive(Debug)]
pub(crate) struct Out {
    pub subject: String,
    pub payload: Bytes,
    cost: usize,
}

#[derive(Debug)]
struct State {
    epoch: u64,
    seq: u64,
    lines: u64,
    queue: VecDeque<Out>,
    bytes: usize,
    /// Not connected: drop everything.
    split: bool,
    /// Said goodbye: nothing more goes out.
    closed: bool,
    roster: HashMap<u64, String>,
    /// Messages dropped for lack of room since the queue last had room.
    dropped: u64,
    /// Where the previous epoch ended, told in every roster of this one.
    prev: Option<[u64; 3]>,
}

/// Result of [`Outbound::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The queue was full: dropped.
    Full,
    /// The room is split (or this node is leaving): dropped.
    Split,
}

/// The bounded, ordered queue of one node's messages.
#[derive(Debug)]
pub(crate) struct Outbound {
    base: String,
    node: u64,
    name: String,
    limit: usize,
    state: Mutex<State>,
    notify: Notify,
}

impl Outbound {
    /// A queue of at most `limit` bytes for node `node` (called `name`)
    /// under subject `base`.
    pub fn new(base: String, node: u64, name: String, limit: usize) -> Self {
        Self {
            base,
            node,
            name,
            limit,
            state: Mutex::new(State {
                epoch: 1,
                seq: 0,
                lines: 0,
                queue: VecDeque::new(),
                bytes: 0,
                split: false,
                closed: false,
                roster: HashMap::new(),
                dropped: 0,
                prev: None,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stamp_and_queue(&self, st: &mut State, kind: Kind, payload: Bytes, lines: u64) -> Pushed {
        st.lines += lines;
        let stamp = Stamp {
            node: self.node,
            epoch: st.epoch,
            seq: st.seq,
            lines: st.lines,
        };
        st.seq += 1;
        if st.split || st.closed {
            return Pushed::Split;
        }
        let subject = proto::subject(&self.base, stamp, kind);
        let cost = subject.len() + payload.len() + OVERHEAD;
        if st.bytes + cost > self.limit {
            st.dropped += 1;
            return Pushed::Full;
        }
        st.bytes += cost;
        let wake = st.queue.is_empty();
        st.queue.push_back(Out {
            subject,
            payload,
            cost,
        });
        if wake {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Stamp and queue one message carrying `lines` lines.
    pub fn push(&self, kind: Kind, payload: Bytes, lines: u64) -> Pushed {
        let mut st = self.lock();
        self.stamp_and_queue(&mut st, kind, payload, lines)
    }

    /// A local member joined, left (`nick: None`) or was renamed: update
    /// the roster and queue the news, in one step.
    pub fn member(&self, kind: Kind, id: u64, nick: Option<&str>, payload: Bytes) {
        let mut st = self.lock();
        match nick {
            Some(n) => st.roster.insert(id, n.to_owned()),
            None => st.roster.remove(&id),
        };
        self.stamp_and_queue(&mut st, kind, payload, 0);
    }

    /// Members here now.
    pub fn local_count(&self) -> usize {
        self.lock().roster.len()
    }

    /// Queue the roster (in parts); `new_epoch`: start a new epoch first
    /// (after a reconnection), dropping what was not sent of the old one.
    /// Every roster of an epoch tells where the previous one ended (a
    /// node that reconnects later learns it from the roster it asks for).
    pub fn roster(&self, new_epoch: bool) {
        let mut st = self.lock();
        if new_epoch {
            st.prev = Some([st.epoch, st.seq, st.lines]);
            st.epoch += 1;
            st.seq = 0;
            st.lines = 0;
            st.queue.clear();
            st.bytes = 0;
        }
        let members: Vec<(u64, String)> = st.roster.iter().map(|(i, n)| (*i, n.clone())).collect();
        let chunks: Vec<&[(u64, String)]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(ROSTER_PART).collect()
        };
        let parts = chunks.len() as u32;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let r = Roster {
                name: self.name.clone(),
                prev: if i == 0 { st.prev } else { None },
                members: chunk.to_vec(),
            };
            let payload = serde_json::to_vec(&r).unwrap_or_default();
            let kind = Kind::Roster {
                part: i as u32,
                parts,
            };
            // A roster is never dropped for room (it is what repairs):
            // the oldest messages are, instead.
            if st.bytes + payload.len() + self.base.len() + 2 * OVERHEAD > self.limit {
                Self::make_room(&mut st, self.limit / 2);
            }
            self.stamp_and_queue(&mut st, kind, Bytes::from(payload), 0);
        }
    }

    /// Drop queued messages from the front until at most `keep` bytes
    /// wait (receivers see their numbers missing and count them lost).
    fn make_room(st: &mut State, keep: usize) {
        while st.bytes > keep {
            let Some(o) = st.queue.pop_front() else { break };
            st.bytes -= o.cost;
        }
    }

    /// The link is down (`true`) or back (`false`).
    pub fn set_split(&self, split: bool) {
        let mut st = self.lock();
        st.split = split;
        if split {
            st.queue.clear();
            st.bytes = 0;
        }
    }

    /// Queue the goodbye; nothing is queued after it.
    pub fn close(&self) {
        let mut st = self.lock();
        if !st.closed {
            self.stamp_and_queue(&mut st, Kind::Bye, Bytes::new(), 0);
            st.closed = true;
        }
    }

    /// Messages dropped for lack of room since the last call.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Take up to `max` messages, waiting until there is one.
    pub async fn take(&self, max: usize) -> Vec<Out> {
        loop {
            {
                let mut st = self.lock();
                if !st.queue.is_empty() {
                    let n = max.min(st.queue.len());
                    let out: Vec<Out> = st.queue.drain(..n).collect();
                    st.bytes -= out.iter().map(|o| o.cost).sum::<usize>();
                    return out;
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(out: &[Out], base: &str) -> Vec<(u64, u64, u64)> {
        out.iter()
            .map(|o| {
                let (s, _) = proto::parse(base, &o.subject).unwrap();
                (s.epoch, s.seq, s.lines)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_skips_numbers() {
        let base = "sockbox.chat.t".to_owned();
        let q = Outbound::new(base.clone(), 1, "n".into(), 450);
        let line = Bytes::from(vec![b'x'; 100]);
        let mut results = Vec::new();
        for _ in 0..4 {
            results.push(q.push(Kind::Lines { member: 1 }, line.clone(), 1));
        }
        assert_eq!(results[..2], [Pushed::Queued, Pushed::Queued]);
        assert_eq!(results[3], Pushed::Full);
        assert!(q.take_dropped() >= 1);
        let got = q.take(10).await;
        // The survivors keep their numbers: the receiver sees the hole.
        assert_eq!(stamps(&got, &base)[..2], [(1, 0, 1), (1, 1, 2)]);
        assert_eq!(q.push(Kind::Lines { member: 1 }, line, 1), Pushed::Queued);
        let next = q.take(10).await;
        assert_eq!(stamps(&next, &base), [(1, 4, 5)]);
    }

    #[tokio::test]
    async fn a_new_epoch_tells_where_the_old_one_ended() {
        let base = "sockbox.chat.t".to_owned();
        let q = Outbound::new(base.clone(), 1, "n".into(), 1 << 20);
        q.member(Kind::Join { member: 4 }, 4, Some("bob"), Bytes::from("bob"));
        q.push(
            Kind::Lines { member: 4 },
            Bytes::from("<bob> a\n<bob> b\n"),
            2,
        );
        q.set_split(true);
        assert_eq!(
            q.push(Kind::Lines { member: 4 }, Bytes::from("<bob> c\n"), 1),
            Pushed::Split
        );
        q.set_split(false);
        q.roster(true);
        let got = q.take(10).await;
        assert_eq!(stamps(&got, &base), [(2, 0, 0)]);
        let r: Roster = serde_json::from_slice(&got[0].payload).unwrap();
        assert_eq!(r.prev, Some([1, 3, 3]));
        assert_eq!(r.members, vec![(4, "bob".to_owned())]);
    }
}
