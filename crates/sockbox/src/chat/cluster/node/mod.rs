//! This node in the room: the [`Remote`] the hub calls (queue what others
//! must see, in `remote`), the handling of what the other nodes send
//! (here), and of the link's faults (`faults`).

mod faults;
mod remote;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::nicks::Nicks;
use super::outbound::Outbound;
use super::peers::{Peers, RosterDone};
use super::proto::{self, Hello, Kind, Roster, Stamp};
use crate::chat::ChatEvent;
use crate::chat::hub::{AnnounceKind, Hub, PrivateError};
use crate::chat::room::Room;
use crate::event::Events;

/// Least time between two requests for everyone's roster.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// This node; shared by the hub (as its [`Remote`]) and the link's tasks.
pub(crate) struct Node {
    pub id: u64,
    pub name: String,
    pub base: String,
    pub broker: bool,
    pub out: Outbound,
    pub peers: Mutex<Peers>,
    pub nicks: Option<Nicks>,
    pub dead_after: Duration,
    /// Largest payload the NATS server takes (learnt on each connection).
    max_payload: AtomicUsize,
    split: AtomicBool,
    /// A warning that the nickname store cannot be opened was given (not
    /// repeated on every retry).
    store_warned: AtomicBool,
    /// Since when the link is up (or the node started).
    whole_since: Mutex<Instant>,
    room: OnceLock<Weak<Room>>,
    me: OnceLock<Weak<Node>>,
    events: Events<ChatEvent>,
    last_sync: Mutex<Option<Instant>>,
    /// Senders told that a line of theirs was dropped, until the queue
    /// has room again.
    told_slow: Mutex<HashSet<u64>>,
    /// Lines found missing per node, not told yet.
    lost: Mutex<HashMap<u64, u64>>,
}

/// The smallest payload assumed of a NATS server (before it says; NATS's
/// own default is 1 MiB).
const MIN_PAYLOAD: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the node stands, for [`Node::new`].
pub(crate) struct NodeParts {
    pub id: u64,
    pub name: String,
    pub base: String,
    pub broker: bool,
    pub queue_limit: usize,
    pub nicks: Option<Nicks>,
    pub dead_after: Duration,
    pub max_payload: usize,
    pub events: Events<ChatEvent>,
}

impl Node {
    pub fn new(p: NodeParts) -> Self {
        Self {
            out: Outbound::new(p.base.clone(), p.id, p.name.clone(), p.queue_limit),
            id: p.id,
            name: p.name,
            base: p.base,
            broker: p.broker,
            peers: Mutex::new(Peers::default()),
            nicks: p.nicks,
            dead_after: p.dead_after,
            max_payload: AtomicUsize::new(p.max_payload.max(MIN_PAYLOAD)),
            split: AtomicBool::new(false),
            store_warned: AtomicBool::new(false),
            whole_since: Mutex::new(Instant::now()),
            room: OnceLock::new(),
            me: OnceLock::new(),
            events: p.events,
            last_sync: Mutex::new(None),
            told_slow: Mutex::new(HashSet::new()),
            lost: Mutex::new(HashMap::new()),
        }
    }

    /// Serve `room` (once): `me` is this node, for the tasks it spawns.
    pub fn attach(me: &Arc<Self>, room: &Arc<Room>) {
        let _ = me.room.set(Arc::downgrade(room));
        let _ = me.me.set(Arc::downgrade(me));
    }

    fn arc(&self) -> Option<Arc<Self>> {
        self.me.get().and_then(Weak::upgrade)
    }

    pub fn room(&self) -> Option<Arc<Room>> {
        self.room.get().and_then(Weak::upgrade)
    }

    /// Largest payload the NATS server takes.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// The server (re)connected to announced this largest payload (0:
    /// not known yet, keep the last one).
    pub fn set_max_payload(&self, n: usize) {
        if n > 0 {
            self.max_payload
                .store(n.max(MIN_PAYLOAD), Ordering::Relaxed);
        }
    }

    pub fn is_split(&self) -> bool {
        self.split.load(Ordering::Acquire)
    }

    fn event(&self, e: &ChatEvent) {
        self.events.on_event(e);
    }

    /// A line for every local member (chat only: the broker adds nothing
    /// to the byte stream).
    fn notice_all(&self, hub: &Hub, text: &str) {
        if !self.broker {
            hub.broadcast(None, &Bytes::from(format!("{text}\n")));
        }
    }

    /// May a claim of `node` be taken over? Only once it has been silent
    /// for the dead-node time while this node was connected.
    fn stale_owner(&self, node: u64) -> bool {
        !lock(&self.peers).alive(node) && lock(&self.whole_since).elapsed() >= self.dead_after
    }

    /// Ask every node for its roster (at most once per [`SYNC_EVERY`]).
    pub fn request_sync(&self) {
        let mut last = lock(&self.last_sync);
        if last.is_some_and(|t| t.elapsed() < SYNC_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        self.out.push(Kind::Sync, Bytes::new(), 0);
    }

    /// One message from NATS.
    pub fn handle(&self, subject: &str, payload: &Bytes) {
        let Some((stamp, kind)) = proto::parse(&self.base, subject) else {
            return;
        };
        if stamp.node == self.id {
            return;
        }
        let Some(room) = self.room() else { return };
        let hub = &room.hub;
        let own = match kind {
            Kind::Lines { .. } => proto::line_count(payload, false),
            Kind::Raw { .. } => proto::line_count(payload, true),
            _ => 0,
        };
        let roster = matches!(kind, Kind::Roster { .. });
        let control = roster || kind == Kind::Heartbeat;
        let arrival = lock(&self.peers).arrive(stamp, own, (control, roster), Instant::now());
        if arrival.lost_lines > 0 {
            self.lost(stamp.node, arrival.lost_lines);
        }
        if arrival.need_sync {
            self.request_sync();
        }
        if arrival.deliver {
            self.apply(hub, stamp, kind, payload);
        }
    }

    /// Lines of `node` found missing: told with the next heartbeat (one
    /// notice per node per heartbeat, however many gaps).
    fn lost(&self, node: u64, lines: u64) {
        *lock(&self.lost).entry(node).or_insert(0) += lines;
    }

    /// Tell the members the lines found missing since the last heartbeat.
    fn tell_lost(&self, hub: &Hub) {
        let lost = std::mem::take(&mut *lock(&self.lost));
        for (node, lines) in lost {
            let name = self.peer_name(node);
            let what = self.units(lines);
            self.notice_all(
                hub,
                &format!(
                    "*** {lines} {what} said on node {name} did not arrive here (the link was too slow or down)"
                ),
            );
            self.event(&ChatEvent::Lost { node: name, lines });
        }
    }

    /// `line`/`lines` (`byte`/`bytes` for the broker) for `n`.
    fn units(&self, n: u64) -> &'static str {
        match (self.broker, n == 1) {
            (false, true) => "line",
            (false, false) => "lines",
            (true, true) => "byte",
            (true, false) => "bytes",
        }
    }

    fn peer_name(&self, node: u64) -> String {
        lock(&self.peers)
            .name(node)
            .unwrap_or_else(|| format!("{node:016x}"))
    }

    fn apply(&self, hub: &Hub, s: Stamp, kind: Kind, payload: &Bytes) {
        let text = || String::from_utf8_lossy(payload).into_owned();
        match kind {
            Kind::Lines { .. } => {
                hub.broadcast(None, payload);
            }
            Kind::Raw { .. } => {
                hub.broadcast_raw(None, payload);
            }
            Kind::Announce { kind, .. } => hub.announce(kind, None, &text()),
            Kind::Join { member } => lock(&self.peers).join(s.node, member, &text()),
            Kind::Leave { member } => lock(&self.peers).leave(s.node, member),
            Kind::Rename { member } => {
                if let Some((_, new)) = text().split_once(' ') {
                    lock(&self.peers).rename(s.node, member, new);
                }
            }
            Kind::Private { to, from } if to == self.id => {
                self.private_in(hub, s.node, from, payload);
            }
            Kind::Notice { to, member } if to == self.id => {
                if let Some(m) = hub.member(member) {
                    Hub::notice(&m, &text());
                }
            }
            Kind::Heartbeat => {
                if let Ok(h) = serde_json::from_slice::<Hello>(payload) {
                    lock(&self.peers).set_name(s.node, &h.name);
                }
            }
            Kind::Roster { part, parts } => {
                let Ok(r) = serde_json::from_slice::<Roster>(payload) else {
                    return;
                };
                let done = lock(&self.peers).roster(s.node, part, parts, r);
                if let Some(done) = done {
                    self.rostered(hub, &done);
                }
            }
            Kind::Sync => self.out.roster(false),
            Kind::Bye => {
                let gone = lock(&self.peers).gone(s.node);
                if let Some(g) = gone {
                    self.gone(hub, g, "shut down");
                }
            }
            Kind::Private { .. } | Kind::Notice { .. } => {}
        }
    }

    /// A private line from member `from` of node `node` for a member here.
    fn private_in(&self, hub: &Hub, node: u64, from: u64, payload: &Bytes) {
        let Some(space) = payload.iter().position(|&b| b == b' ') else {
            return;
        };
        let to = payload.slice(..space);
        let line = payload.slice(space + 1..);
        let problem = match hub.private(&to, &line) {
            Ok(_) => return,
            Err(PrivateError::NoSuchNick) => format!(
                "*** {} is no longer in the room",
                String::from_utf8_lossy(&to)
            ),
            Err(PrivateError::TooSlow(n)) => format!("*** {n} could not take the message"),
            Err(PrivateError::Leaving(n)) => format!("*** {n} is leaving"),
            Err(PrivateError::Unreachable(n)) => format!("*** {n} is out of reach"),
        };
        self.out.push(
            Kind::Notice {
                to: node,
                member: from,
            },
            Bytes::from(problem),
            0,
        );
    }

    /// A node's full roster arrived: announce what changed.
    fn rostered(&self, hub: &Hub, done: &RosterDone) {
        if done.lost_prev > 0 {
            self.lost_prev(hub, done);
        }
        let why = if done.back { "back" } else { "resync" };
        for n in &done.left {
            hub.announce(
                AnnounceKind::Leave,
                None,
                &format!("*** {n} left (node {} {why})", done.name),
            );
        }
        for n in &done.joined {
            hub.announce(
                AnnounceKind::Join,
                None,
                &format!("*** {n} joined (node {} {why})", done.name),
            );
        }
        let members = lock(&self.peers).members_of_name(&done.name);
        self.event(&ChatEvent::NodeUp {
            node: done.name.clone(),
            members,
        });
    }

    fn lost_prev(&self, hub: &Hub, done: &RosterDone) {
        let what = self.units(done.lost_prev);
        self.notice_all(
            hub,
            &format!(
                "*** {} {what} said on node {} before it lost its link did not arrive here",
                done.lost_prev, done.name
            ),
        );
        self.event(&ChatEvent::Lost {
            node: done.name.clone(),
            lines: done.lost_prev,
        });
    }
}
