//! The sockets of one address family ("lanes") and the threads that send
//! on them.
//!
//! Linux's `ping_v4_sendmsg` (and `raw_sendmsg`) holds the socket lock for
//! the whole transmit, and on loopback the transmit includes the kernel's
//! handling of the echo request, of its reply and the delivery of that reply
//! to us (softirq work run on the sending CPU before the call returns).
//! Threads that share one socket therefore take turns. Each ICMP datagram
//! socket gets its own ident from the kernel, which routes a reply to the
//! socket whose ident it carries, so a sweep opens one datagram socket per
//! core: in a send turn one thread per lane takes batches of probes from a
//! shared counter ([`Chunks`]) and sends them on its own socket, and after
//! each batch reads that socket's replies into its [`Stash`], so the
//! receive work is spread over the cores too. The probe id in the payload
//! matches a reply whatever socket it came in on. Raw sockets share out
//! the sending the same way, but only the first one receives (every raw
//! socket would get a copy of every reply; the others block all input).

use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::SockaddrStorage;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::sys::ping_io::{
    BATCH_MAX, CallSpan, ErrQueued, Received, RecvBuffers, recv_batch, recv_errqueue_all, send_all,
};

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
fn read_into(fd: RawFd, bufs: &mut RecvBuffers, stash: &mut Stash) {
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

/// One socket of a family, registered with the runtime, with its receive
/// buffers and the replies its sender thread read.
#[derive(Debug)]
pub struct Lane {
    /// The socket.
    pub fd: AsyncFd<socket2::Socket>,
    /// Buffers for `recvmmsg`.
    pub recv: RecvBuffers,
    /// Replies read by the sender thread.
    pub stash: Stash,
    /// How many replies its receive buffer holds.
    pub window: usize,
    /// False for a send-only socket (the extra raw sockets): nothing to
    /// read or wait for.
    pub receives: bool,
    /// Its error queue holds transmit timestamps (or ICMP errors, for a
    /// datagram socket) to read with the replies.
    pub errqueue: bool,
    /// Buffer for error-queue messages.
    pub errbuf: Vec<u8>,
}

impl Lane {
    /// The descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    /// Send the batches `chunks` hands out until none is left or `cap`
    /// packets were sent, reading the replies that came back after each
    /// into the stash.
    pub fn send_and_read(
        &mut self,
        packets: &[&[u8]],
        dests: &[Option<SockaddrStorage>],
        chunks: &Chunks,
        cap: usize,
        out: &mut SendOut,
    ) {
        let fd = self.raw_fd();
        let mut sent = 0;
        while sent < cap {
            let Some(r) = chunks.next() else { break };
            sent += r.len();
            let (p, d) = (&packets[r.clone()], &dests[r.clone()]);
            send_all(fd, p, d, r.start, &mut out.failed, &mut out.spans);
            if self.errqueue {
                read_errqueue(fd, &mut self.errbuf, &mut self.stash);
            }
            if self.receives {
                read_into(fd, &mut self.recv, &mut self.stash);
            }
        }
    }

    /// Most packets this lane may send in one turn: a receiving socket
    /// gets the replies to what it sent, and its buffer must hold them
    /// (for raw sockets the window of the one receiving socket is the
    /// whole turn's); a send-only socket has no such limit.
    pub fn cap(&self) -> usize {
        if self.receives {
            self.window
        } else {
            usize::MAX
        }
    }
}

/// Hands out `0..len` in consecutive chunks of `size` to whichever thread
/// asks next: a thread slowed down by other work on its core sends less,
/// and none waits long for another at the end of a turn.
#[derive(Debug)]
pub struct Chunks {
    next: AtomicUsize,
    len: usize,
    size: usize,
}

impl Chunks {
    /// Chunks of `size` (at least 1) over `0..len`.
    pub fn new(len: usize, size: usize) -> Self {
        Self {
            next: AtomicUsize::new(0),
            len,
            size: size.max(1),
        }
    }

    /// The next chunk, or `None` when all were handed out.
    pub fn next(&self) -> Option<Range<usize>> {
        let lo = self.next.fetch_add(self.size, Ordering::Relaxed);
        (lo < self.len).then(|| lo..self.len.min(lo + self.size))
    }
}

/// How many lanes a send of `n` packets uses: one per [`BATCH_MAX`]
/// packets, at most one per lane, at least one.
pub fn lanes_for(n: usize, lanes: usize) -> usize {
    lanes.min(n.div_ceil(BATCH_MAX)).max(1)
}

/// What a send turn reports: refused packets and the span of each call.
#[derive(Debug, Default)]
pub struct SendOut {
    /// Refused packets by index, with the error.
    pub failed: Vec<(usize, io::ErrorKind)>,
    /// One per `sendmmsg` call that sent something.
    pub spans: Vec<CallSpan>,
}

/// Send `packets[i]` to `dests[i]` over `lanes`. A send big enough for
/// several lanes is shared out batch by batch ([`Chunks`]) to one thread
/// per lane (the calling thread is one of them), each sending on its own
/// socket, at most its receive window, and reading that socket's replies
/// into its lane's stash. A small send goes out on the first lane from the
/// calling thread, and its replies are left in the socket. Refused packets
/// are listed in `out.failed` by index, in order.
pub fn send_turn(
    lanes: &mut [Lane],
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
    out: &mut SendOut,
) {
    let count = packets.len().min(dests.len());
    let used = lanes_for(count, lanes.len());
    let Some(first) = lanes.first_mut() else {
        out.failed
            .extend((0..count).map(|i| (i, io::ErrorKind::NotConnected)));
        return;
    };
    if used == 1 {
        let (p, d) = (&packets[..count], &dests[..count]);
        send_all(first.raw_fd(), p, d, 0, &mut out.failed, &mut out.spans);
        return;
    }
    let chunks = Chunks::new(count, BATCH_MAX);
    let (packets, dests) = (&packets[..count], &dests[..count]);
    let (first, others) = lanes[..used].split_at_mut(1);
    std::thread::scope(|scope| {
        let chunks = &chunks;
        let handles: Vec<_> = others
            .iter_mut()
            .map(|lane| {
                scope.spawn(move || {
                    let mut mine = SendOut::default();
                    let cap = lane.cap();
                    lane.send_and_read(packets, dests, chunks, cap, &mut mine);
                    mine
                })
            })
            .collect();
        let cap = first[0].cap();
        first[0].send_and_read(packets, dests, chunks, cap, out);
        for handle in handles {
            if let Ok(mine) = handle.join() {
                out.failed.extend(mine.failed);
                out.spans.extend(mine.spans);
            } else {
                // A sender thread panicked (a bug): which of its packets
                // went out is unknown; their timeouts will tell.
                tracing::error!("an ICMP sender thread panicked");
            }
        }
        // More than every lane's cap (a caller past the send window): the
        // rest goes out here rather than not at all.
        first[0].send_and_read(packets, dests, chunks, usize::MAX, out);
    });
    out.failed.sort_unstable_by_key(|f| f.0);
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

    #[test]
    fn chunks_hand_out_everything_once() {
        let c = Chunks::new(10, 4);
        assert_eq!(c.next(), Some(0..4));
        assert_eq!(c.next(), Some(4..8));
        assert_eq!(c.next(), Some(8..10));
        assert_eq!(c.next(), None);
        assert_eq!(c.next(), None);
        assert_eq!(Chunks::new(0, 64).next(), None);
        assert_eq!(Chunks::new(3, 0).next(), Some(0..1));
        // Four threads taking chunks: each index exactly once.
        let c = Chunks::new(100_000, 7);
        let taken: Vec<Vec<Range<usize>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        while let Some(r) = c.next() {
                            mine.push(r);
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut seen = vec![0u8; 100_000];
        for r in taken.into_iter().flatten() {
            assert!(r.len() <= 7 && !r.is_empty());
            for i in r {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn small_sends_stay_on_one_lane() {
        assert_eq!(lanes_for(0, 4), 1);
        assert_eq!(lanes_for(1, 4), 1);
        assert_eq!(lanes_for(BATCH_MAX, 4), 1);
        assert_eq!(lanes_for(BATCH_MAX + 1, 4), 2);
        assert_eq!(lanes_for(100 * BATCH_MAX, 4), 4);
        assert_eq!(lanes_for(100 * BATCH_MAX, 1), 1);
        assert_eq!(lanes_for(100 * BATCH_MAX, 0), 1);
    }
}
