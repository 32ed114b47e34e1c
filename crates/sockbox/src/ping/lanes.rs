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
//! core: a send turn is split over the lanes, one thread each, and each
//! thread reads its own socket's replies into its [`Stash`] between its
//! `sendmmsg` calls, so the receive work is spread over the cores too. The
//! probe id in the payload matches a reply whatever socket it came in on.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::SockaddrStorage;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::sys::ping_io::{BATCH_MAX, Received, RecvBuffers, recv_batch, send_all, split_even};

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

/// A reply a sender thread read, waiting for the engine.
#[derive(Debug, Clone, Copy)]
pub struct StashedReply<'a> {
    /// The bytes read.
    pub data: &'a [u8],
    /// The sender.
    pub from: IpAddr,
    /// TTL / hop limit, if the kernel said.
    pub ttl: Option<u8>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    end: usize,
    from: IpAddr,
    ttl: Option<u8>,
    at: Instant,
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
        self.bytes.extend_from_slice(data);
        self.entries.push(Entry {
            end: self.bytes.len(),
            from,
            ttl,
            at,
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

    /// Hand every reply to `f`, oldest first, and empty the stash. Returns
    /// how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(&StashedReply<'_>)) -> usize {
        let mut start = 0;
        for e in &self.entries {
            f(&StashedReply {
                data: &self.bytes[start..e.end],
                from: e.from,
                ttl: e.ttl,
                at: e.at,
            });
            start = e.end;
        }
        let n = self.entries.len();
        self.entries.clear();
        self.bytes.clear();
        n
    }
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
}

impl Lane {
    /// The descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    /// Send, reading the replies that came back after each `sendmmsg`
    /// (and once more at the end) into the stash.
    fn send_and_read(
        &mut self,
        packets: &[&[u8]],
        dests: &[Option<SockaddrStorage>],
        base: usize,
        failed: &mut Vec<(usize, io::ErrorKind)>,
    ) {
        let fd = self.raw_fd();
        let (recv, stash) = (&mut self.recv, &mut self.stash);
        send_all(fd, packets, dests, base, failed, || {
            read_into(fd, recv, stash);
        });
        read_into(fd, recv, stash);
    }
}

/// How many lanes a send of `n` packets uses: one per [`BATCH_MAX`]
/// packets, at most one per lane, at least one.
pub fn lanes_for(n: usize, lanes: usize) -> usize {
    lanes.min(n.div_ceil(BATCH_MAX)).max(1)
}

/// Send `packets[i]` to `dests[i]` over `lanes`. A send big enough for
/// several lanes is split evenly over them, each part sent by its own
/// thread on its own socket (the calling thread takes the first), and each
/// thread reads its socket's replies into its lane's stash. A small send
/// goes out on the first lane from the calling thread, and its replies are
/// left in the socket. Refused packets are listed in `failed` by index, in
/// order.
pub fn send_turn(
    lanes: &mut [Lane],
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
    failed: &mut Vec<(usize, io::ErrorKind)>,
) {
    let count = packets.len().min(dests.len());
    let used = lanes_for(count, lanes.len());
    let Some(first) = lanes.first_mut() else {
        failed.extend((0..count).map(|i| (i, io::ErrorKind::NotConnected)));
        return;
    };
    if used == 1 {
        let (packets, dests) = (&packets[..count], &dests[..count]);
        send_all(first.raw_fd(), packets, dests, 0, failed, || {});
        return;
    }
    std::thread::scope(|scope| {
        let mut parts = lanes.iter_mut().zip(split_even(count, used));
        let Some((first, mine)) = parts.next() else {
            return;
        };
        let handles: Vec<_> = parts
            .map(|(lane, range)| {
                let part = (&packets[range.clone()], &dests[range.clone()]);
                let base = range.start;
                let handle = scope.spawn(move || {
                    let mut refused = Vec::new();
                    lane.send_and_read(part.0, part.1, base, &mut refused);
                    refused
                });
                (range, handle)
            })
            .collect();
        first.send_and_read(&packets[mine.clone()], &dests[mine], 0, failed);
        for (range, handle) in handles {
            match handle.join() {
                Ok(refused) => failed.extend(refused),
                Err(_) => failed.extend(range.map(|i| (i, io::ErrorKind::Other))),
            }
        }
    });
    failed.sort_unstable_by_key(|f| f.0);
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
