//! What a sender thread reads between its batches, kept for the engine:
//! replies, transmit timestamps and ICMP errors, copied out of the receive
//! buffers in arrival order ([`Stash`]), and the clock conversion of kernel
//! timestamps ([`Clocks`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::sys::ping_io::{ErrQueued, Received, RecvBuffers, recv_batch, recv_errqueue_all};

/// Most bytes of reply data one stash holds; past that, replies stay in
/// the socket until the main loop reads them.
const STASH_MAX_BYTES: usize = 4 << 20;

/// One reading of the monotonic and the real-time clock, to turn kernel
/// receive stamps (`CLOCK_REALTIME`) into [`Instant`]s.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    mono: Instant,
    real: Duration,
}

impl Clocks {
    /// Read both clocks now.
    pub fn now() -> Self {
        Self {
            mono: Instant::now(),
            real: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// When a message stamped `stamp` arrived, on the monotonic clock; the
    /// reading itself when there is no stamp or it makes no sense (in the
    /// future, or more than 10 s ago).
    pub fn instant(self, stamp: Option<Duration>) -> Instant {
        match stamp.and_then(|s| self.real.checked_sub(s)) {
            Some(ago) if ago < Duration::from_secs(10) => {
                self.mono.checked_sub(ago).unwrap_or(self.mono)
            }
            _ => self.mono,
        }
    }
}

/// Read one batch from `fd` (see [`recv_batch`]), handing each message to
/// `f` with its arrival time. The clocks are read after the system call,
/// so no kernel stamp is later than the reading.
pub fn recv_timed(
    fd: RawFd,
    bufs: &mut RecvBuffers,
    mut f: impl FnMut(&Received<'_>, Instant),
) -> io::Result<usize> {
    let mut clocks: Option<Clocks> = None;
    recv_batch(fd, bufs, |r| {
        let c = *clocks.get_or_insert_with(Clocks::now);
        f(&r, c.instant(r.stamp));
    })
}

/// What a stashed message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stashed {
    /// A packet read from the socket.
    Packet,
    /// A transmit timestamp from the error queue (`at` is when it left).
    Sent,
    /// An ICMP error from the error queue: type, code and where the probe
    /// was going.
    Error(u8, u8, IpAddr),
}

/// A message a sender thread read, waiting for the engine.
#[derive(Debug, Clone, Copy)]
pub struct StashedReply<'a> {
    /// The bytes read.
    pub data: &'a [u8],
    /// The sender.
    pub from: IpAddr,
    /// TTL / hop limit, if the kernel said.
    pub ttl: Option<u8>,
    /// When it arrived (or left, for a timestamp).
    pub at: Instant,
    /// What it is.
    pub kind: Stashed,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    end: usize,
    from: IpAddr,
    ttl: Option<u8>,
    at: Instant,
    kind: Stashed,
}

/// Replies read by a sender thread, in arrival order, copied out of the
/// receive buffers (one allocation reused from turn to turn).
#[derive(Debug, Default)]
pub struct Stash {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Stash {
    /// Keep a copy of one reply.
    pub fn push(&mut self, data: &[u8], from: IpAddr, ttl: Option<u8>, at: Instant) {
        self.push_kind(data, from, ttl, at, Stashed::Packet);
    }

    /// Keep a copy of one message of any kind.
    pub fn push_kind(
        &mut self,
        data: &[u8],
        from: IpAddr,
        ttl: Option<u8>,
        at: Instant,
        kind: Stashed,
    ) {
        self.bytes.extend_from_slice(data);
        self.entries.push(Entry {
            end: self.bytes.len(),
            from,
            ttl,
            at,
            kind,
        });
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many replies are waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn full(&self) -> bool {
        self.bytes.len() >= STASH_MAX_BYTES
    }

    /// Hand every message to `f` (the error-queue ones first, then the
    /// packets, each oldest first) and empty the stash. Returns how many
    /// there were.
    #[cfg(test)]
    pub fn drain(&mut self, mut f: impl FnMut(&StashedReply<'_>)) -> usize {
        let n = self.visit(false, &mut f) + self.visit(true, &mut f);
        self.entries.clear();
        self.bytes.clear();
        n
    }

    /// Hand the packets (`packets`) or the error-queue messages (not
    /// `packets`) to `f`, oldest first, keeping them all. Returns how many.
    pub fn visit(&self, packets: bool, mut f: impl FnMut(&StashedReply<'_>)) -> usize {
        let mut start = 0;
        let mut n = 0;
        for e in &self.entries {
            if (e.kind == Stashed::Packet) == packets {
                n += 1;
                f(&StashedReply {
                    data: &self.bytes[start..e.end],
                    from: e.from,
                    ttl: e.ttl,
                    at: e.at,
                    kind: e.kind,
                });
            }
            start = e.end;
        }
        n
    }

    /// Arrival times of the stashed packets, with their places, for
    /// merging several stashes in time order.
    pub fn packet_times(&self, lane: usize, out: &mut Vec<(Instant, usize, usize)>) {
        out.extend(
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.kind == Stashed::Packet)
                .map(|(i, e)| (e.at, lane, i)),
        );
    }

    /// The message at place `i`.
    pub fn get(&self, i: usize) -> Option<StashedReply<'_>> {
        let e = self.entries.get(i)?;
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].end);
        Some(StashedReply {
            data: &self.bytes[start..e.end],
            from: e.from,
            ttl: e.ttl,
            at: e.at,
            kind: e.kind,
        })
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }
}

/// Read the error queue of `fd` (transmit timestamps, ICMP errors) into
/// `stash`. Read before the packets: a probe's timestamp is queued before
/// its reply can come back.
pub fn read_errqueue(fd: RawFd, buf: &mut [u8], stash: &mut Stash) -> usize {
    let mut clocks: Option<Clocks> = None;
    recv_errqueue_all(fd, buf, |m| match m {
        ErrQueued::Sent { data, at } => {
            let c = *clocks.get_or_insert_with(Clocks::now);
            let unspecified = IpAddr::from([0, 0, 0, 0]);
            stash.push_kind(data, unspecified, None, c.instant(Some(at)), Stashed::Sent);
        }
        ErrQueued::Icmp(e) => {
            let Some(dst) = e.dst else { return };
            let c = *clocks.get_or_insert_with(Clocks::now);
            let from = e.offender.unwrap_or(dst);
            let kind = Stashed::Error(e.icmp_type, e.icmp_code, dst);
            stash.push_kind(e.data, from, None, c.instant(None), kind);
        }
    })
}

/// Read `fd` into `stash` until the socket is empty or the stash full.
pub fn read_into(fd: RawFd, bufs: &mut RecvBuffers, stash: &mut Stash) {
    while !stash.full() {
        let got = recv_timed(fd, bufs, |r, at| {
            if let Some(from) = r.from {
                stash.push(r.data, from, r.ttl, at);
            }
        });
        match got {
            Ok(n) if n >= bufs.count() => {}
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_convert_and_bad_ones_fall_back() {
        let c = Clocks {
            mono: Instant::now(),
            real: Duration::from_secs(1_000_000),
        };
        let at = c.instant(c.real.checked_sub(Duration::from_millis(5)));
        assert_eq!(c.mono - at, Duration::from_millis(5));
        assert_eq!(c.instant(None), c.mono);
        assert_eq!(c.instant(Some(c.real + Duration::from_secs(1))), c.mono);
        assert_eq!(c.instant(Some(Duration::from_secs(1))), c.mono);
    }

    #[test]
    fn stash_hands_back_replies_in_order_and_empties() {
        let mut stash = Stash::default();
        assert!(stash.is_empty());
        let t0 = Instant::now();
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        stash.push(b"first", one, Some(64), t0);
        stash.push(b"", two, None, t0 + Duration::from_millis(1));
        stash.push(b"third!", two, Some(1), t0 + Duration::from_millis(2));
        assert_eq!(stash.len(), 3);
        let mut seen = Vec::new();
        let count = stash.drain(|r| seen.push((r.data.to_vec(), r.from, r.ttl, r.at - t0)));
        assert_eq!(count, 3);
        assert_eq!(
            seen,
            vec![
                (b"first".to_vec(), one, Some(64), Duration::ZERO),
                (Vec::new(), two, None, Duration::from_millis(1)),
                (b"third!".to_vec(), two, Some(1), Duration::from_millis(2)),
            ]
        );
        assert!(stash.is_empty());
        assert_eq!(stash.drain(|_| panic!("empty")), 0);
        stash.push(b"again", one, None, t0);
        assert_eq!(stash.drain(|r| assert_eq!(r.data, b"again")), 1);
    }

    #[test]
    fn stash_stops_filling_at_its_limit() {
        let mut s = Stash::default();
        let chunk = vec![0u8; 1 << 20];
        while !s.full() {
            s.push(&chunk, [127, 0, 0, 1].into(), None, Instant::now());
        }
        assert_eq!(s.len(), STASH_MAX_BYTES >> 20);
    }
}
