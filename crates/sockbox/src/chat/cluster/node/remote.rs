//! The hub's [`Remote`]: what local members say and do, queued for the
//! other nodes; questions about members of other nodes, answered from the
//! roster kept of them.

use bytes::{Bytes, BytesMut};

use super::{Node, lock};
use crate::chat::cluster::outbound::Pushed;
use crate::chat::cluster::proto::{self, Kind};
use crate::chat::command::nick_key;
use crate::chat::hub::{
    AnnounceKind, ClaimError, Hub, PrivateError, Remote, RemoteFuture, WhoGroup,
};

impl Node {
    /// A notice for local member `id`.
    fn tell(&self, id: u64, text: &str) {
        if let Some(m) = self.room().and_then(|r| r.hub.member(id)) {
            Hub::notice(&m, text);
        }
    }
}

/// `msg` in parts of at most `max` bytes, cut after a newline (anywhere
/// for raw bytes); `None` for a line longer than `max` (not sent).
fn split(msg: &Bytes, max: usize, raw: bool) -> Vec<Option<Bytes>> {
    if msg.len() <= max {
        return vec![Some(msg.clone())];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < msg.len() {
        let end = (start + max).min(msg.len());
        let cut = if raw || end == msg.len() {
            end
        } else if let Some(i) = memchr::memrchr(b'\n', &msg[start..end]) {
            start + i + 1
        } else {
            // One line longer than max: leave it out.
            out.push(None);
            start = memchr::memchr(b'\n', &msg[start..]).map_or(msg.len(), |i| start + i + 1);
            continue;
        };
        out.push(Some(msg.slice(start..cut)));
        start = cut;
    }
    out
}

impl Remote for Node {
    fn said(&self, from: u64, msg: &Bytes, raw: bool) {
        let kind = if raw {
            Kind::Raw { member: from }
        } else {
            Kind::Lines { member: from }
        };
        let mut full = false;
        for part in split(msg, self.max_payload(), raw) {
            match part {
                Some(part) => {
                    let lines = proto::line_count(&part, raw);
                    full |= self.out.push(kind, part, lines) == Pushed::Full;
                }
                None => self.tell(
                    from,
                    &format!(
                        "*** a line of yours is longer than the {} bytes the other nodes take: it reached only this node",
                        self.max_payload()
                    ),
                ),
            }
        }
        if full && !raw {
            let first = lock(&self.told_slow).insert(from);
            if let (true, Some(room)) = (first, self.room())
                && let Some(m) = room.hub.member(from)
            {
                Hub::notice(
                    &m,
                    "*** the link to the other nodes is too slow: some of your lines did not reach them",
                );
            }
        }
    }

    fn announced(&self, kind: AnnounceKind, from: u64, text: &str) {
        let k = Kind::Announce { kind, member: from };
        self.out.push(k, Bytes::copy_from_slice(text.as_bytes()), 0);
    }

    fn joined(&self, id: u64, nick: &str) {
        let payload = Bytes::copy_from_slice(nick.as_bytes());
        self.out
            .member(Kind::Join { member: id }, id, Some(nick), payload);
    }

    fn left(&self, id: u64, nick: &str) {
        let payload = Bytes::copy_from_slice(nick.as_bytes());
        self.out
            .member(Kind::Leave { member: id }, id, None, payload);
        self.unclaim(id, nick);
    }

    fn renamed(&self, id: u64, old: &str, new: &str) {
        let payload = Bytes::from(format!("{old} {new}"));
        self.out
            .member(Kind::Rename { member: id }, id, Some(new), payload);
        if nick_key(old) != nick_key(new) {
            self.unclaim(id, old);
        }
    }

    fn private(&self, from: u64, to: &str, msg: &Bytes) -> Option<Result<String, PrivateError>> {
        let (node, _, nick) = lock(&self.peers).find(&nick_key(to)).cloned()?;
        if self.is_split() {
            return Some(Err(PrivateError::Unreachable(nick)));
        }
        let mut payload = BytesMut::with_capacity(nick.len() + 1 + msg.len());
        payload.extend_from_slice(nick.as_bytes());
        payload.extend_from_slice(b" ");
        payload.extend_from_slice(msg);
        match self
            .out
            .push(Kind::Private { to: node, from }, payload.freeze(), 0)
        {
            Pushed::Queued => Some(Ok(nick)),
            Pushed::Full => Some(Err(PrivateError::TooSlow(nick))),
            Pushed::Split => Some(Err(PrivateError::Unreachable(nick))),
        }
    }

    fn holds(&self, key: &str) -> bool {
        lock(&self.peers).find(key).is_some()
    }

    fn is_split(&self) -> bool {
        Node::is_split(self)
    }

    fn online(&self) -> usize {
        if self.is_split() {
            0
        } else {
            lock(&self.peers).online()
        }
    }

    fn who(&self) -> (Vec<WhoGroup>, Option<String>) {
        if self.is_split() {
            let note = "the room is split: the other nodes are out of reach".to_owned();
            return (Vec::new(), Some(note));
        }
        (lock(&self.peers).who(), None)
    }

    fn node_name(&self) -> &str {
        &self.name
    }

    fn claim<'a>(&'a self, id: u64, nick: &'a str) -> RemoteFuture<'a, Result<(), ClaimError>> {
        Box::pin(async move {
            let Some(nicks) = &self.nicks else {
                return Ok(());
            };
            if self.is_split() {
                return Err(ClaimError::Split);
            }
            nicks.claim(id, nick, |n| self.stale_owner(n)).await
        })
    }

    fn unclaim(&self, id: u64, nick: &str) {
        if self.nicks.is_none() || self.is_split() {
            return;
        }
        let Some(node) = self.arc() else {
            return;
        };
        let nick = nick.to_owned();
        tokio::spawn(async move {
            if let Some(nicks) = &node.nicks {
                nicks.release(id, &nick).await;
            }
        });
    }

    fn default_nick(&self, id: u64) -> RemoteFuture<'_, String> {
        Box::pin(self.default_name(id))
    }

    fn closing(&self) {
        self.out.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_reads_are_cut_between_lines_and_overlong_lines_left_out() {
        let msg = Bytes::from_static(b"aaaa\nbbbb\ncccccccccccc\ndd\n");
        let parts = split(&msg, 10, false);
        let shown: Vec<Option<&[u8]>> = parts.iter().map(|p| p.as_deref()).collect();
        assert_eq!(
            shown,
            vec![Some(&b"aaaa\nbbbb\n"[..]), None, Some(&b"dd\n"[..])]
        );
        let raw = split(&Bytes::from_static(b"0123456789abc"), 5, true);
        assert_eq!(raw.len(), 3);
        assert_eq!(split(&msg, 100, false), vec![Some(msg.clone())]);
    }
}
