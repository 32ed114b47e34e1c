//! Faults: nodes gone silent or saying goodbye, the link to NATS lost and
//! back (split and whole), and the nicknames to claim again afterwards.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Node, lock};
use crate::chat::ChatEvent;
use crate::chat::cluster::peers::Gone;
use crate::chat::cluster::proto::{Hello, Kind};
use crate::chat::command::nick_key;
use crate::chat::hub::{AnnounceKind, ClaimError, Hub, Remote};
use crate::chat::room::Room;

impl Node {
    /// A node is gone: announce its members as having left, and free their
    /// names.
    pub fn gone(&self, hub: &Hub, g: Gone, why: &str) {
        for n in &g.members {
            hub.announce(
                AnnounceKind::Leave,
                None,
                &format!("*** {n} left (node {} {why})", g.name),
            );
        }
        self.event(&ChatEvent::NodeGone {
            node: g.name.clone(),
            members: g.members.len(),
            reason: why.to_owned(),
        });
        if self.nicks.is_some()
            && let Some(node) = self.arc()
        {
            tokio::spawn(async move {
                if let Some(nicks) = &node.nicks {
                    let gone = |n| !lock(&node.peers).alive(n);
                    nicks.reap(g.node, &g.members, gone).await;
                }
            });
        }
    }

    /// Every heartbeat: say this node is alive, and declare gone the
    /// nodes not heard for too long (not while this node is cut off).
    pub fn tick(&self) {
        if self.is_split() {
            return;
        }
        let hello = Hello {
            name: self.name.clone(),
            online: self.out.local_count(),
        };
        let payload = serde_json::to_vec(&hello).unwrap_or_default();
        self.out.push(Kind::Heartbeat, Bytes::from(payload), 0);
        let gone = lock(&self.peers).expire(Instant::now(), self.dead_after);
        if let Some(room) = self.room() {
            self.tell_lost(&room.hub);
            for g in gone {
                self.gone(&room.hub, g, "stopped answering");
            }
        }
        if self.out.take_dropped() == 0 {
            lock(&self.told_slow).clear();
        }
    }

    /// The link to NATS is down.
    pub fn on_split(&self, reason: &str) {
        if self.split.swap(true, Ordering::AcqRel) {
            return;
        }
        self.out.set_split(true);
        if let Some(room) = self.room() {
            self.notice_all(
                &room.hub,
                &format!(
                    "*** the room is split ({reason}): lines said now reach only the {} users on this node",
                    room.hub.len()
                ),
            );
        }
        self.event(&ChatEvent::Split {
            reason: reason.to_owned(),
        });
    }

    /// The link is back: new epoch, roster, ask for everyone's, claim the
    /// names of members that joined or were named meanwhile.
    pub async fn on_whole(self: &Arc<Self>) {
        if !self.split.swap(false, Ordering::AcqRel) {
            return;
        }
        *lock(&self.whole_since) = Instant::now();
        lock(&self.peers).touch_all(Instant::now());
        self.out.set_split(false);
        self.out.roster(true);
        *lock(&self.last_sync) = None;
        self.request_sync();
        let Some(room) = self.room() else { return };
        self.notice_all(
            &room.hub,
            "*** the room is whole again; lines said here during the split reached only this node",
        );
        self.event(&ChatEvent::Whole {
            nodes: lock(&self.peers).nodes() + 1,
        });
        if let Some(nicks) = &self.nicks {
            match nicks.reopen().await {
                Ok(()) => self.store_warned.store(false, Ordering::Relaxed),
                Err(e) => self.warn_store(&e),
            }
            self.reclaim(&room).await;
        }
    }

    /// While the room is whole and the nickname store is not open (a node
    /// that started split found a NATS server without JetStream, or the
    /// store did not answer in time): try again; once it opens, claim the
    /// local members' names. Called every few seconds.
    pub async fn keep_store_open(self: &Arc<Self>) {
        let Some(nicks) = &self.nicks else { return };
        if self.is_split() || nicks.is_open() {
            return;
        }
        match nicks.reopen().await {
            Ok(()) => {
                if self.store_warned.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "the nickname store is open: nicknames are unique room-wide again"
                    );
                }
                if let Some(room) = self.room() {
                    self.reclaim(&room).await;
                }
            }
            Err(e) => self.warn_store(&e),
        }
    }

    /// Say once that the store cannot be opened.
    fn warn_store(&self, e: &super::super::ClusterError) {
        if !self.store_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{e}; until it opens, nicknames are not checked across nodes and /nick is refused (trying again every few seconds)"
            );
        }
    }

    /// Claim every local member's name again; whoever lost theirs to
    /// another node gets a new one.
    async fn reclaim(self: &Arc<Self>, room: &Arc<Room>) {
        let Some(nicks) = &self.nicks else { return };
        for (id, nick) in room.hub.roster() {
            let claimed = nicks.claim(id, &nick, |n| self.stale_owner(n)).await;
            if let Err(ClaimError::Taken(_)) = claimed {
                let new = self.default_name(id).await;
                if !room.hub.force_rename(id, &nick, &new) {
                    self.unclaim(id, &new);
                }
            }
        }
    }

    /// `userN`, free as far as this node knows, claimed when whole.
    pub(super) async fn default_name(&self, id: u64) -> String {
        let Some(nicks) = &self.nicks else {
            return format!("user-{id}");
        };
        let mut last = String::new();
        for _ in 0..1000 {
            let n = nicks.next_number(!self.is_split()).await;
            last = format!("user{n}");
            let key = nick_key(&last);
            let known = self.holds(&key)
                || self
                    .room()
                    .is_some_and(|r| r.hub.roster().iter().any(|(_, x)| nick_key(x) == key));
            if known {
                continue;
            }
            if self.is_split() {
                return last;
            }
            match nicks.claim(id, &last, |n| self.stale_owner(n)).await {
                Ok(()) | Err(ClaimError::Store(_) | ClaimError::Split) => return last,
                Err(ClaimError::Taken(_)) => {}
            }
        }
        last
    }
}
