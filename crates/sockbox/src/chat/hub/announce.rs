//! Announcements (joins, leaves, nick changes): collected, then fanned out
//! together by a ticker or before the next message; storms are summed up.
//!
//! A storm is judged per kind by when the announcements were made, not by
//! how many wait for one flush: more than [`ANNOUNCE_MAX`] joins (or leaves,
//! or nick changes) within one [`ANNOUNCE_EVERY`] window. A flush that comes
//! late (a busy machine) still sends leaves made 100 ms apart one by one,
//! and so does a storm of joins for the leaves among it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::{Flavours, Hub, Member, to_crlf};

/// What an announcement is about (for summaries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceKind {
    /// Someone joined.
    Join = 0,
    /// Someone left.
    Leave = 1,
    /// Someone changed nickname.
    Nick = 2,
}

/// One announcement line waiting to be sent.
#[derive(Debug)]
pub(super) struct Pending {
    kind: AnnounceKind,
    /// The member it is about, who does not get it.
    except: Option<u64>,
    /// Joins so far when it was made: later joiners do not get it.
    joins: u64,
    /// When it was made.
    at: Instant,
    line: Bytes,
}

impl Pending {
    fn for_member(&self, m: &Member) -> bool {
        self.except != Some(m.id) && m.joined.load(Ordering::Relaxed) <= self.joins
    }
}

/// How often collected announcements are sent at the latest.
pub const ANNOUNCE_EVERY: Duration = Duration::from_millis(100);

/// At most this many announcements of one kind made within one
/// [`ANNOUNCE_EVERY`] are sent one by one; the rest are summed up in one
/// line (`*** 5000 more joined, 3 more left`).
pub const ANNOUNCE_MAX: usize = 10;

impl Hub {
    /// Queue an announcement line (without its newline) for everyone but
    /// `except`; it goes out with [`Hub::flush_announcements`].
    pub fn announce(&self, kind: AnnounceKind, except: Option<u64>, text: &str) {
        if let (Some(from), Some(r)) = (except, self.remote()) {
            r.announced(kind, from, text);
        }
        let mut line = BytesMut::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"\n");
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.push(Pending {
            kind,
            except,
            joins: self.joins.load(Ordering::Acquire),
            at: Instant::now(),
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
        let lines = self.sum_up_storms(std::mem::take(&mut *p));
        let mut all = BytesMut::new();
        for l in &lines {
            all.extend_from_slice(&l.line);
        }
        let all = all.freeze();
        let skipped: HashSet<u64> = lines.iter().filter_map(|l| l.except).collect();
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

    /// Keep the first [`ANNOUNCE_MAX`] announcements of each kind in each
    /// [`ANNOUNCE_EVERY`] window (by when they were made); sum up the rest
    /// in one line at the end. A leave in the middle of a storm of joins is
    /// still sent on its own.
    fn sum_up_storms(&self, pending: Vec<Pending>) -> Vec<Pending> {
        if pending.len() <= ANNOUNCE_MAX {
            return pending;
        }
        let mut out = Vec::with_capacity(pending.len().min(8 * ANNOUNCE_MAX));
        let mut rest = Vec::new();
        // Per kind: the window's start and how many it holds.
        let mut windows: [Option<(Instant, usize)>; 3] = [None; 3];
        for p in pending {
            let slot = &mut windows[p.kind as usize];
            let n = match *slot {
                Some((start, n)) if p.at.duration_since(start) < ANNOUNCE_EVERY => {
                    *slot = Some((start, n + 1));
                    n + 1
                }
                _ => {
                    *slot = Some((p.at, 1));
                    1
                }
            };
            if n <= ANNOUNCE_MAX {
                out.push(p);
            } else {
                rest.push(p);
            }
        }
        if !rest.is_empty() {
            out.push(self.summary(&rest));
        }
        out
    }

    /// One line that counts `rest`, for everyone.
    fn summary(&self, rest: &[Pending]) -> Pending {
        let count = |k| rest.iter().filter(|p| p.kind == k).count();
        let parts: Vec<String> = [
            (count(AnnounceKind::Join), "joined"),
            (count(AnnounceKind::Leave), "left"),
            (count(AnnounceKind::Nick), "changed nickname"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} more {what}"))
        .collect();
        let text = format!("*** {} ({} online)\n", parts.join(", "), self.online());
        Pending {
            kind: AnnounceKind::Join,
            except: None,
            joins: rest.iter().map(|p| p.joins).max().unwrap_or(0),
            at: rest.last().map_or_else(Instant::now, |p| p.at),
            line: Bytes::from(text),
        }
    }
}
