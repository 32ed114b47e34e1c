//! What nodes say to each other over NATS: subjects and payloads (pure, no
//! I/O).
//!
//! Every message of a node goes to one subject under the room's base
//! (`sockbox.chat.ROOM` or `sockbox.broker.ROOM`), so one wildcard
//! subscription gets them all, in the order each node published them:
//!
//! ```text
//! BASE.NODE.EPOCH.SEQ.LINES.KIND[.ARG[.ARG]]
//! ```
//!
//! `NODE` is the sender's id (16 hex digits, new for every process),
//! `EPOCH` counts its connections to NATS, `SEQ` numbers its messages within
//! an epoch from 0 and `LINES` counts the lines (bytes for the broker) it
//! had published in the epoch once this message is counted: a receiver that
//! sees `SEQ` jump knows messages were lost, and `LINES` says how many lines.
//! Lines travel as the payload, exactly as local members get them; control
//! payloads are short text or JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chat::hub::AnnounceKind;

/// Where a message sits in its sender's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub node: u64,
    pub epoch: u64,
    pub seq: u64,
    pub lines: u64,
}

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Chat lines from a member (payload: the lines).
    Lines { member: u64 },
    /// Broker bytes from a member (payload: the bytes).
    Raw { member: u64 },
    /// An announcement about a member (payload: the line, no newline).
    Announce { kind: AnnounceKind, member: u64 },
    /// A member joined (payload: nick).
    Join { member: u64 },
    /// A member left (payload: nick).
    Leave { member: u64 },
    /// A member changed nickname (payload: `OLD NEW`).
    Rename { member: u64 },
    /// A private line for a member of node `to` (payload: `NICK LINE`).
    Private { to: u64, from: u64 },
    /// A notice for member `member` of node `to` (payload: the text).
    Notice { to: u64, member: u64 },
    /// I am alive (payload: [`Hello`]).
    Heartbeat,
    /// Part `part` of `parts` of the sender's members (payload: [`Roster`]).
    Roster { part: u32, parts: u32 },
    /// Everyone: send your roster (payload: empty).
    Sync,
    /// The sender is shutting down (payload: empty).
    Bye,
}

/// Heartbeat payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The node's name for humans.
    pub name: String,
    /// Its members now.
    pub online: usize,
}

/// Roster payload: who is on the sender now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Roster {
    /// The node's name for humans.
    pub name: String,
    /// In the first part of an epoch's first roster: the previous epoch
    /// and where it ended (`[epoch, seq, lines]`), so receivers can count
    /// what they missed of it.
    pub prev: Option<[u64; 3]>,
    /// `(member id, nick)`.
    pub members: Vec<(u64, String)>,
}

fn announce_code(k: AnnounceKind) -> &'static str {
    match k {
        AnnounceKind::Join => "j",
        AnnounceKind::Leave => "l",
        AnnounceKind::Nick => "n",
    }
}

/// `BASE` for a room.
pub(crate) fn base(broker: bool, room: &str) -> String {
    let mode = if broker { "broker" } else { "chat" };
    format!("sockbox.{mode}.{room}")
}

/// The subject of a message.
pub(crate) fn subject(base: &str, s: Stamp, kind: Kind) -> String {
    let mut out = String::with_capacity(base.len() + 64);
    let _ = write!(
        out,
        "{base}.{:016x}.{}.{}.{}.",
        s.node, s.epoch, s.seq, s.lines
    );
    let _ = match kind {
        Kind::Lines { member } => write!(out, "m.{member}"),
        Kind::Raw { member } => write!(out, "r.{member}"),
        Kind::Announce { kind, member } => write!(out, "a.{}.{member}", announce_code(kind)),
        Kind::Join { member } => write!(out, "j.{member}"),
        Kind::Leave { member } => write!(out, "l.{member}"),
        Kind::Rename { member } => write!(out, "n.{member}"),
        Kind::Private { to, from } => write!(out, "p.{to:016x}.{from}"),
        Kind::Notice { to, member } => write!(out, "f.{to:016x}.{member}"),
        Kind::Heartbeat => write!(out, "h"),
        Kind::Roster { part, parts } => write!(out, "o.{part}.{parts}"),
        Kind::Sync => write!(out, "s"),
        Kind::Bye => write!(out, "b"),
    };
    out
}

/// Parse a subject under `base`; `None` for anything malformed.
pub(crate) fn parse(base: &str, subject: &str) -> Option<(Stamp, Kind)> {
    let rest = subject.strip_prefix(base)?.strip_prefix('.')?;
    let mut t = rest.split('.');
    let node = u64::from_str_radix(t.next()?, 16).ok()?;
    let epoch = t.next()?.parse().ok()?;
    let seq = t.next()?.parse().ok()?;
    let lines = t.next()?.parse().ok()?;
    let code = t.next()?;
    let mut num = || t.next().and_then(|v| v.parse::<u64>().ok());
    let kind = match code {
        "m" => Kind::Lines { member: num()? },
        "r" => Kind::Raw { member: num()? },
        "j" => Kind::Join { member: num()? },
        "l" => Kind::Leave { member: num()? },
        "n" => Kind::Rename { member: num()? },
        "a" => {
            let kind = match t.next()? {
                "j" => AnnounceKind::Join,
                "l" => AnnounceKind::Leave,
                "n" => AnnounceKind::Nick,
                _ => return None,
            };
            let member = t.next()?.parse().ok()?;
            Kind::Announce { kind, member }
        }
        "p" | "f" => {
            let to = u64::from_str_radix(t.next()?, 16).ok()?;
            let n = t.next()?.parse().ok()?;
            if code == "p" {
                Kind::Private { to, from: n }
            } else {
                Kind::Notice { to, member: n }
            }
        }
        "h" => Kind::Heartbeat,
        "o" => {
            let part = t.next()?.parse().ok()?;
            let parts = t.next()?.parse().ok()?;
            Kind::Roster { part, parts }
        }
        "s" => Kind::Sync,
        "b" => Kind::Bye,
        _ => return None,
    };
    if t.next().is_some() {
        return None;
    }
    Some((
        Stamp {
            node,
            epoch,
            seq,
            lines,
        },
        kind,
    ))
}

/// A room name usable in a subject: 1 to 64 of letters, digits, `_`, `-`.
pub(crate) fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// How many lines `payload` counts for (`\n`s; bytes for the broker).
pub(crate) fn line_count(payload: &[u8], raw: bool) -> u64 {
    if raw {
        payload.len() as u64
    } else {
        memchr::memchr_iter(b'\n', payload).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let b = base(false, "lobby");
        assert_eq!(b, "sockbox.chat.lobby");
        let s = Stamp {
            node: 0xdead_beef_0000_0001,
            epoch: 2,
            seq: 77,
            lines: 1234,
        };
        let kinds = [
            Kind::Lines { member: 5 },
            Kind::Raw { member: 6 },
            Kind::Announce {
                kind: AnnounceKind::Nick,
                member: 9,
            },
            Kind::Join { member: 1 },
            Kind::Leave { member: 2 },
            Kind::Rename { member: 3 },
            Kind::Private { to: 42, from: 7 },
            Kind::Notice { to: 43, member: 8 },
            Kind::Heartbeat,
            Kind::Roster { part: 1, parts: 3 },
            Kind::Sync,
            Kind::Bye,
        ];
        for k in kinds {
            let subj = subject(&b, s, k);
            assert_eq!(parse(&b, &subj), Some((s, k)), "{subj}");
        }
        assert_eq!(
            subject(&b, s, Kind::Lines { member: 5 }),
            "sockbox.chat.lobby.deadbeef00000001.2.77.1234.m.5"
        );
    }

    #[test]
    fn malformed_subjects_are_refused() {
        let b = base(true, "r");
        for bad in [
            "sockbox.broker.r",
            "sockbox.broker.r.zz.1.2.3.h",
            "sockbox.broker.r.01.1.2.3.x",
            "sockbox.broker.r.01.1.2.3.m",
            "sockbox.broker.r.01.1.2.3.h.extra",
            "sockbox.broker.rr.01.1.2.3.h",
            "sockbox.chat.r.01.1.2.3.h",
            "sockbox.broker.r.01.1.2.3.a.q.1",
        ] {
            assert_eq!(parse(&b, bad), None, "{bad}");
        }
    }

    #[test]
    fn room_names_and_line_counts() {
        assert!(valid_room("lobby-2_x"));
        assert!(!valid_room(""));
        assert!(!valid_room("a.b"));
        assert!(!valid_room("a*"));
        assert!(!valid_room(&"x".repeat(65)));
        assert_eq!(line_count(b"<a> x\n<a> y\n", false), 2);
        assert_eq!(line_count(b"abc", true), 3);
    }
}
