//! What this node knows of the others (pure, no I/O): their members, where
//! each one's message stream stands (to count what was lost), and when each
//! was last heard (to declare the silent ones gone).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::proto::{Roster, Stamp};
use crate::chat::command::nick_key;
use crate::chat::hub::WhoGroup;

/// How long a gone node's stream position is kept (to count what it said
/// that never arrived, should it come back).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// One other node.
#[derive(Debug)]
struct Peer {
    name: String,
    epoch: u64,
    next_seq: u64,
    /// The sender's line count as of the last message received.
    lines: u64,
    /// The previous epoch and the line count reached in it.
    prev: Option<(u64, u64)>,
    members: HashMap<u64, String>,
    last_heard: Instant,
    gone: bool,
    /// Declared gone, and no full roster since.
    returning: bool,
    /// A full roster arrived since it was (re)discovered.
    rostered: bool,
    /// A roster being received: its members so far and whether it began
    /// the epoch.
    partial: Option<Vec<(u64, String)>>,
    /// Lines of the previous epoch missed, learned from a roster's `prev`.
    lost_prev: u64,
}

/// What to do with a message that arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// Deliver it (false: stale, from a node declared gone, or a repeat).
    pub deliver: bool,
    /// Lines of this node that were lost just before it.
    pub lost_lines: u64,
    /// Ask every node for its roster (membership news may be lost).
    pub need_sync: bool,
    /// First message ever seen from this node.
    pub new_node: bool,
}

/// A roster received in full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RosterDone {
    /// The node's name.
    pub name: String,
    /// Members that were not known before (empty the first time: they
    /// were there already, this node only learned of them).
    pub joined: Vec<String>,
    /// Members known before and now absent.
    pub left: Vec<String>,
    /// Lines of the node's previous epoch that never arrived here.
    pub lost_prev: u64,
    /// The node was gone and is back.
    pub back: bool,
}

/// A node declared gone, with the members it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gone {
    pub node: u64,
    pub name: String,
    pub members: Vec<String>,
}

/// Every other node and a directory of their members by nickname.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    peers: HashMap<u64, Peer>,
    /// nick key → (node, member id, nick as typed).
    by_nick: HashMap<String, (u64, u64, String)>,
}

impl Peers {
    /// Account for a message stamped `s` that carries `own` lines;
    /// `control`: a heartbeat or roster, which also revive a node declared
    /// gone; `roster`: a roster part (a node whose roster is not known is
    /// asked for it on any other message).
    pub fn arrive(
        &mut self,
        s: Stamp,
        own: u64,
        (control, roster): (bool, bool),
        now: Instant,
    ) -> Arrival {
        let Some(p) = self.peers.get_mut(&s.node) else {
            self.peers.insert(
                s.node,
                Peer {
                    name: format!("{:016x}", s.node),
                    epoch: s.epoch,
                    next_seq: s.seq + 1,
                    lines: s.lines,
                    prev: None,
                    members: HashMap::new(),
                    last_heard: now,
                    gone: false,
                    returning: false,
                    rostered: false,
                    partial: None,
                    lost_prev: 0,
                },
            );
            return Arrival {
                deliver: true,
                need_sync: !roster,
                new_node: true,
                ..Arrival::default()
            };
        };
        if s.epoch < p.epoch {
            return Arrival::default();
        }
        let mut a = Arrival {
            deliver: true,
            ..Arrival::default()
        };
        if s.epoch > p.epoch {
            p.prev = Some((p.epoch, p.lines));
            p.epoch = s.epoch;
            p.next_seq = 0;
            p.lines = 0;
            p.gone = false;
            p.rostered = false;
        } else if p.gone {
            if !control {
                return Arrival::default();
            }
            p.gone = false;
            p.rostered = false;
            a.need_sync = !roster;
        }
        if s.seq < p.next_seq {
            return Arrival::default();
        }
        if s.seq > p.next_seq {
            a.lost_lines = s.lines.saturating_sub(own).saturating_sub(p.lines);
            a.need_sync = true;
        }
        if !p.rostered && !roster {
            a.need_sync = true;
        }
        p.next_seq = s.seq + 1;
        p.lines = s.lines;
        p.last_heard = now;
        a
    }

    /// Part `part` of `parts` of a node's roster. Returns the changes once
    /// the last part is in.
    pub fn roster(&mut self, node: u64, part: u32, parts: u32, r: Roster) -> Option<RosterDone> {
        let p = self.peers.get_mut(&node)?;
        p.name.clone_from(&r.name);
        if part == 0 {
            p.partial = Some(Vec::new());
            if let (Some([e, _, end]), Some((pe, seen))) = (r.prev, p.prev)
                && e == pe
            {
                p.lost_prev = end.saturating_sub(seen);
                p.prev = None;
            }
        }
        p.partial.as_mut()?.extend(r.members);
        if part + 1 < parts {
            return None;
        }
        let members: HashMap<u64, String> = p.partial.take()?.into_iter().collect();
        let mut done = RosterDone {
            name: p.name.clone(),
            lost_prev: std::mem::take(&mut p.lost_prev),
            back: p.returning,
            ..RosterDone::default()
        };
        let was_known = !p.members.is_empty() || p.rostered || p.returning;
        p.returning = false;
        if was_known {
            done.joined = members
                .iter()
                .filter(|(id, n)| p.members.get(id) != Some(n))
                .map(|(_, n)| n.clone())
                .collect();
            done.left = p
                .members
                .iter()
                .filter(|(id, n)| members.get(id) != Some(n))
                .map(|(_, n)| n.clone())
                .collect();
            done.joined.sort();
            done.left.sort();
        }
        p.rostered = true;
        let old = std::mem::replace(&mut p.members, members);
        for n in old.values() {
            self.unlist(node, n);
        }
        let listed: Vec<(u64, String)> = self.peers[&node]
            .members
            .iter()
            .map(|(i, n)| (*i, n.clone()))
            .collect();
        for (id, n) in listed {
            self.by_nick.insert(nick_key(&n), (node, id, n));
        }
        Some(done)
    }

    fn unlist(&mut self, node: u64, nick: &str) {
        let key = nick_key(nick);
        if self.by_nick.get(&key).is_some_and(|(n, _, _)| *n == node) {
            self.by_nick.remove(&key);
        }
    }

    /// Member `id` of `node` joined as `nick`.
    pub fn join(&mut self, node: u64, id: u64, nick: &str) {
        let Some(p) = self.peers.get_mut(&node).filter(|p| !p.gone) else {
            return;
        };
        if let Some(old) = p.members.insert(id, nick.to_owned()) {
            self.unlist(node, &old);
        }
        self.by_nick
            .insert(nick_key(nick), (node, id, nick.to_owned()));
    }

    /// Member `id` of `node` left.
    pub fn leave(&mut self, node: u64, id: u64) {
        if let Some(old) = self
            .peers
            .get_mut(&node)
            .and_then(|p| p.members.remove(&id))
        {
            self.unlist(node, &old);
        }
    }

    /// Member `id` of `node` is now `new`.
    pub fn rename(&mut self, node: u64, id: u64, new: &str) {
        self.leave(node, id);
        self.join(node, id, new);
    }

    /// The name of `node`, when known.
    pub fn name(&self, node: u64) -> Option<String> {
        self.peers.get(&node).map(|p| p.name.clone())
    }

    /// `node` calls itself `name` (from its heartbeat).
    pub fn set_name(&mut self, node: u64, name: &str) {
        if let Some(p) = self.peers.get_mut(&node)
            && p.name != name
        {
            name.clone_into(&mut p.name);
        }
    }

    /// Members of the node in reach called `name`.
    pub fn members_of_name(&self, name: &str) -> usize {
        self.peers
            .values()
            .filter(|p| !p.gone && p.name == name)
            .map(|p| p.members.len())
            .sum()
    }

    /// Who has nickname key `key` elsewhere: `(node, member id, nick)`.
    pub fn find(&self, key: &str) -> Option<&(u64, u64, String)> {
        self.by_nick.get(key)
    }

    /// Members of the nodes in reach.
    pub fn online(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !p.gone)
            .map(|p| p.members.len())
            .sum()
    }

    /// Nodes in reach.
    pub fn nodes(&self) -> usize {
        self.peers.values().filter(|p| !p.gone).count()
    }

    /// True when `node` is in reach.
    pub fn alive(&self, node: u64) -> bool {
        self.peers.get(&node).is_some_and(|p| !p.gone)
    }

    /// The `/who` groups of the nodes in reach, by name.
    pub fn who(&self) -> Vec<WhoGroup> {
        let mut groups: Vec<WhoGroup> = self
            .peers
            .values()
            .filter(|p| !p.gone && !p.members.is_empty())
            .map(|p| {
                let mut nicks: Vec<String> = p.members.values().cloned().collect();
                nicks.sort_by_key(|n| nick_key(n));
                WhoGroup {
                    node: p.name.clone(),
                    nicks,
                }
            })
            .collect();
        groups.sort_by(|a, b| a.node.cmp(&b.node));
        groups
    }

    /// Declare gone the nodes not heard for `dead_after`; forget the
    /// position of those gone long ago.
    pub fn expire(&mut self, now: Instant, dead_after: Duration) -> Vec<Gone> {
        self.peers
            .retain(|_, p| !p.gone || now - p.last_heard < FORGET_AFTER);
        let dead: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.gone && now - p.last_heard >= dead_after)
            .map(|(n, _)| *n)
            .collect();
        dead.into_iter().filter_map(|n| self.gone(n)).collect()
    }

    /// Node `node` is gone (silent, or said goodbye).
    pub fn gone(&mut self, node: u64) -> Option<Gone> {
        let p = self.peers.get_mut(&node).filter(|p| !p.gone)?;
        p.gone = true;
        p.returning = true;
        p.partial = None;
        let members = std::mem::take(&mut p.members);
        let name = p.name.clone();
        let mut nicks: Vec<String> = members.into_values().collect();
        for n in &nicks {
            self.unlist(node, n);
        }
        nicks.sort();
        Some(Gone {
            node,
            name,
            members: nicks,
        })
    }

    /// This node was cut off and is back: everyone gets a fresh chance to
    /// be heard before being declared gone.
    pub fn touch_all(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            p.last_heard = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(node: u64, epoch: u64, seq: u64, lines: u64) -> Stamp {
        Stamp {
            node,
            epoch,
            seq,
            lines,
        }
    }

    fn roster(name: &str, prev: Option<[u64; 3]>, m: &[(u64, &str)]) -> Roster {
        Roster {
            name: name.into(),
            prev,
            members: m.iter().map(|(i, n)| (*i, (*n).to_owned())).collect(),
        }
    }

    #[test]
    fn gaps_count_the_lines_lost_and_repeats_are_dropped() {
        let mut p = Peers::default();
        let t = Instant::now();
        let a = p.arrive(st(1, 1, 0, 0), 0, (true, true), t);
        assert!(a.deliver && a.new_node && !a.need_sync);
        assert!(
            p.roster(1, 0, 1, roster("b", None, &[(1, "Bob")]))
                .is_some()
        );
        // seq 1 carries 2 lines (total 2); seq 2, 3 lost with 5 lines; seq 4 has 1.
        assert_eq!(
            p.arrive(st(1, 1, 1, 2), 2, (false, false), t),
            Arrival {
                deliver: true,
                ..Arrival::default()
            }
        );
        let a = p.arrive(st(1, 1, 4, 8), 1, (false, false), t);
        assert!(a.deliver && a.need_sync);
        assert_eq!(a.lost_lines, 5);
        // A repeat or an older epoch is dropped.
        assert!(!p.arrive(st(1, 1, 4, 8), 1, (false, false), t).deliver);
        assert!(!p.arrive(st(1, 0, 9, 9), 1, (false, false), t).deliver);
    }

    #[test]
    fn silent_nodes_are_gone_with_their_members_and_come_back() {
        let mut p = Peers::default();
        let t0 = Instant::now();
        p.arrive(st(7, 1, 0, 0), 0, (true, true), t0);
        p.roster(7, 0, 2, roster("b:1", None, &[(1, "Bob")]));
        p.roster(7, 1, 2, roster("b:1", None, &[(2, "carl")]));
        assert_eq!(p.online(), 2);
        assert_eq!(p.find("bob").map(|f| f.1), Some(1));
        p.join(7, 3, "Dee");
        p.rename(7, 2, "Carl2");
        assert!(p.find("carl").is_none());
        assert_eq!(
            p.who(),
            vec![WhoGroup {
                node: "b:1".into(),
                nicks: vec!["Bob".into(), "Carl2".into(), "Dee".into()]
            }]
        );
        let dead_after = Duration::from_secs(3);
        assert!(p.expire(t0 + Duration::from_secs(2), dead_after).is_empty());
        let gone = p.expire(t0 + Duration::from_secs(3), dead_after);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].members, vec!["Bob", "Carl2", "Dee"]);
        assert_eq!(p.online(), 0);
        assert!(p.find("bob").is_none());
        // Lines of the old epoch still in flight are not delivered.
        assert!(!p.arrive(st(7, 1, 5, 9), 1, (false, false), t0).deliver);
        // It comes back in a new epoch and says where the old one ended:
        // lines 1..=12 were sent, 0 of them arrived here.
        let t1 = t0 + Duration::from_secs(10);
        assert!(p.arrive(st(7, 2, 0, 0), 0, (true, true), t1).deliver);
        let done = p
            .roster(7, 0, 1, roster("b:1", Some([1, 20, 12]), &[(1, "Bob")]))
            .unwrap();
        assert_eq!(done.lost_prev, 12);
        assert!(done.back);
        assert_eq!(done.joined, vec!["Bob"]);
        assert_eq!(p.online(), 1);
    }

    #[test]
    fn a_first_roster_announces_nobody_and_later_ones_the_difference() {
        let mut p = Peers::default();
        let t = Instant::now();
        p.arrive(st(2, 1, 0, 0), 0, (true, true), t);
        let first = p.roster(2, 0, 1, roster("c", None, &[(1, "a"), (2, "b")]));
        assert_eq!(first.unwrap().joined, Vec::<String>::new());
        p.arrive(st(2, 1, 1, 0), 0, (true, true), t);
        let next = p
            .roster(2, 0, 1, roster("c", None, &[(2, "b"), (3, "c")]))
            .unwrap();
        assert_eq!(
            (next.joined, next.left),
            (vec!["c".into()], vec!["a".into()])
        );
    }
}
