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
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::socket::SockaddrStorage;
use tokio::io::unix::AsyncFd;

use super::stash::{Stash, read_errqueue, read_into};
use crate::sys::ping_io::SendFailure;
use crate::sys::ping_io::{BATCH_MAX, CallSpan, RecvBuffers, send_all};

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
    pub failed: Vec<(usize, SendFailure)>,
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
            .extend((0..count).map(|i| (i, io::ErrorKind::NotConnected.into())));
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
