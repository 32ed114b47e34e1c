//! Who is in the room: members by id and nickname, `/who` (with the other
//! nodes' members when there are), and renames the room imposes.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{Hub, Member};
use crate::chat::command::nick_key;

impl Hub {
    /// Give member `id` (known as `old`) the name `new` from outside its
    /// session (the room took `old` back); its session takes it on before
    /// its next line. False when `id` is not here under `old`.
    pub fn force_rename(&self, id: u64, old: &str, new: &str) -> bool {
        let mut st = self.write();
        let key = nick_key(old);
        if st.nicks.get(&key).is_none_or(|(i, _)| *i != id) {
            return false;
        }
        let Some(m) = st.members.get(&id).cloned() else {
            return false;
        };
        st.nicks.remove(&key);
        st.nicks.insert(nick_key(new), (id, new.to_owned()));
        m.force_nick(new.to_owned());
        if let Some(r) = self.remote() {
            r.renamed(id, old, new);
        }
        true
    }

    /// Every local member with its nickname (for a cluster's roster).
    pub fn roster(&self) -> Vec<(u64, String)> {
        self.read()
            .nicks
            .values()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }

    /// The local member `id`, if still here.
    pub fn member(&self, id: u64) -> Option<Arc<Member>> {
        self.read().members.get(&id).cloned()
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

    /// The `/who` reply: `*** 3 online: a, b, c` on a single node; with
    /// other nodes, every node's members after its name, this node first.
    pub fn who_text(&self) -> String {
        let here = self.who();
        let Some(r) = self.remote() else {
            return format!("*** {} online: {}", here.len(), here.join(", "));
        };
        let (groups, note) = r.who();
        let total = here.len() + groups.iter().map(|g| g.nicks.len()).sum::<usize>();
        let nodes = groups.len() + 1;
        let s = if nodes == 1 { "" } else { "s" };
        let mut text = format!(
            "*** {total} online on {nodes} node{s}: {} (here): {}",
            r.node_name(),
            here.join(", ")
        );
        for g in groups {
            let _ = write!(text, "; {}: {}", g.node, g.nicks.join(", "));
        }
        if let Some(note) = note {
            let _ = write!(text, " ({note})");
        }
        text
    }
}
