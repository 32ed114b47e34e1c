//! [`IcmpTransport`]: the real ICMP sockets behind the [`Transport`] trait,
//! registered with tokio. Big sends are split over a family's sockets
//! ([`super::lanes`]); receiving reads what the sender threads read, every
//! socket, and the error queues of datagram sockets.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;

use nix::sys::socket::SockaddrStorage;
use sockbox_wire::icmp::{Family, Message};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::engine::{Incoming, IncomingKind, QueuedIcmpError};
use super::lanes::{Lane, SendOut, send_turn};
use super::socket::{BATCH, FamilySockets, SendReport, SendSpan, Transport};
use super::stash::{Stash, Stashed, StashedReply, read_errqueue, recv_timed};
use crate::sys::ping::IcmpKind;
use crate::sys::ping_io::{RecvBuffers, dest};

/// The error kinds worth reporting, from an error-queue type number.
fn icmp_message(family: Family, ty: u8) -> Option<Message> {
    match Message::from_type(family, ty) {
        m @ (Message::DstUnreachable
        | Message::TimeExceeded
        | Message::PacketTooBig
        | Message::ParamProblem) => Some(m),
        _ => None,
    }
}

/// Receive-buffer bytes one reply takes on loopback (its skb's truesize is
/// about 1 KiB; the other half is margin).
const BYTES_PER_REPLY: usize = 2048;

/// Hand one stashed message to the engine's callback.
fn deliver(fam: Family, raw_v4: bool, r: &StashedReply<'_>, f: &mut dyn FnMut(&Incoming<'_>)) {
    let kind = match r.kind {
        Stashed::Packet => IncomingKind::Packet,
        Stashed::Sent => IncomingKind::SendStamp,
        Stashed::Error(ty, code, dst) => match icmp_message(fam, ty) {
            Some(message) => IncomingKind::QueuedError(QueuedIcmpError { message, code, dst }),
            None => return,
        },
    };
    let packet = kind == IncomingKind::Packet;
    f(&Incoming {
        family: fam,
        from: r.from,
        bytes: r.data,
        ip_header: raw_v4 && packet,
        ttl: r.ttl,
        at: r.at,
        verify_checksum: raw_v4 && packet,
        kind,
    });
}

#[derive(Debug)]
struct Side {
    kind: IcmpKind,
    family: Family,
    lanes: Vec<Lane>,
    dests: Vec<Option<SockaddrStorage>>,
    out: SendOut,
    /// Scratch for merging the stashes in arrival order.
    order: Vec<(tokio::time::Instant, usize, usize)>,
    /// The error queues are read by the main loop too (always for
    /// datagram sockets: ICMP errors).
    errqueue: bool,
}

impl Side {
    /// Probes one turn may send: no receiving socket's buffer may
    /// overflow before its replies are read, whichever sockets the turn's
    /// batches go out on (each reply comes back to a receiving socket).
    fn window(&self) -> usize {
        let receiving = self.lanes.iter().filter(|l| l.receives);
        let per_lane = receiving.clone().map(|l| l.window).min().unwrap_or(BATCH);
        per_lane * receiving.count().max(1)
    }
}

/// Real ICMP sockets registered with tokio.
#[derive(Debug)]
pub struct IcmpTransport {
    v4: Option<Side>,
    v6: Option<Side>,
}

impl IcmpTransport {
    /// Register the open sockets (must run inside a tokio runtime).
    /// `max_packet` is the largest message expected (sizes the buffers).
    pub fn new(
        v4: Option<FamilySockets>,
        v6: Option<FamilySockets>,
        max_packet: usize,
    ) -> io::Result<Self> {
        // Room for an IP header and a quoted packet in errors.
        let buf_len = max_packet.max(1024) + 128;
        let side = |s: Option<FamilySockets>| -> io::Result<Option<Side>> {
            let Some(s) = s else { return Ok(None) };
            let mut lanes = Vec::with_capacity(s.sockets.len());
            for (i, socket) in s.sockets.into_iter().enumerate() {
                // Extra raw sockets are send-only.
                let receives = i == 0 || s.kind == IcmpKind::Dgram;
                let rcvbuf = socket.recv_buffer_size().unwrap_or(200 << 10);
                let window = (rcvbuf / BYTES_PER_REPLY).clamp(BATCH, 32 * BATCH);
                #[expect(unsafe_code)]
                // SAFETY: socket2::Socket owns its descriptor, keeps it open
                // until dropped and always returns the same one from
                // as_raw_fd. Read interest only: with WRITABLE too every
                // send completion is another edge for the reactor.
                let fd = unsafe {
                    AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::ERROR)
                }
                .map_err(io::Error::from)?;
                lanes.push(Lane {
                    fd,
                    recv: RecvBuffers::new(BATCH, buf_len),
                    stash: Stash::default(),
                    window,
                    receives,
                    errqueue: s.tx_timestamps,
                    errbuf: vec![0u8; buf_len],
                });
            }
            if lanes.is_empty() {
                return Ok(None);
            }
            Ok(Some(Side {
                kind: s.kind,
                family: s.family,
                lanes,
                dests: Vec::with_capacity(BATCH),
                out: SendOut::default(),
                order: Vec::new(),
                errqueue: s.tx_timestamps || s.kind == IcmpKind::Dgram,
            }))
        };
        Ok(Self {
            v4: side(v4)?,
            v6: side(v6)?,
        })
    }

    fn side(&mut self, family: Family) -> Option<&mut Side> {
        match family {
            Family::V4 => self.v4.as_mut(),
            Family::V6 => self.v6.as_mut(),
        }
    }

    fn sides(&self) -> impl Iterator<Item = &Side> {
        [self.v4.as_ref(), self.v6.as_ref()].into_iter().flatten()
    }

    /// How many sockets `family` has (0 when none is open).
    pub fn lanes(&self, family: Family) -> usize {
        self.sides()
            .find(|s| s.family == family)
            .map_or(0, |s| s.lanes.len())
    }
}

impl Transport for IcmpTransport {
    fn kind(&self, family: Family) -> Option<IcmpKind> {
        self.sides().find(|s| s.family == family).map(|s| s.kind)
    }

    fn send_window(&self) -> usize {
        self.sides().map(Side::window).min().unwrap_or(BATCH)
    }

    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        report: &mut SendReport,
    ) -> io::Result<()> {
        let Some(side) = self.side(family) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no ICMP socket for this address family",
            ));
        };
        side.dests.clear();
        side.dests.extend(dests.iter().map(|&a| Some(dest(a))));
        side.out.failed.clear();
        side.out.spans.clear();
        send_turn(&mut side.lanes, packets, &side.dests, &mut side.out);
        report.failed.append(&mut side.out.failed);
        report
            .spans
            .extend(side.out.spans.drain(..).map(|s| SendSpan {
                range: s.range,
                before: s.before,
                after: s.after,
            }));
        Ok(())
    }

    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize> {
        let Some(side) = self.side(family) else {
            return Ok(0);
        };
        let raw_v4 = side.kind == IcmpKind::Raw && side.family == Family::V4;
        let fam = side.family;
        let mut total = 0;
        let mut error = None;
        // Every lane's error queue first: a probe sent on one socket may
        // be answered on another (raw sockets), and its timestamp must be
        // known before its reply is matched.
        for lane in &mut side.lanes {
            if side.errqueue {
                let fd = lane.raw_fd();
                read_errqueue(fd, &mut lane.errbuf, &mut lane.stash);
            }
            total += lane.stash.visit(false, |r| deliver(fam, raw_v4, r, f));
        }
        // What the sender threads read (it arrived first), merged in
        // arrival order across the sockets.
        side.order.clear();
        for (i, lane) in side.lanes.iter().enumerate() {
            lane.stash.packet_times(i, &mut side.order);
        }
        side.order.sort_unstable_by_key(|o| o.0);
        for &(_, lane, at) in &side.order {
            if let Some(r) = side.lanes[lane].stash.get(at) {
                deliver(fam, raw_v4, &r, f);
                total += 1;
            }
        }
        for lane in &mut side.lanes {
            lane.stash.clear();
            if !lane.receives {
                continue;
            }
            let fd = lane.raw_fd();
            let got = recv_timed(fd, &mut lane.recv, |r, at| {
                let Some(from) = r.from else { return };
                f(&Incoming {
                    family: fam,
                    from,
                    bytes: r.data,
                    ip_header: raw_v4,
                    ttl: r.ttl,
                    at,
                    verify_checksum: raw_v4,
                    kind: IncomingKind::Packet,
                });
            });
            // Fewer than a batch from every socket means all are empty.
            match got {
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) if total == 0 => Err(e),
            Some(e) => {
                tracing::debug!("recv on an ICMP socket: {e}");
                Ok(total)
            }
            None => Ok(total),
        }
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        // Replies the sender threads read are ready now.
        let stashed = self
            .sides()
            .any(|s| s.lanes.iter().any(|l| !l.stash.is_empty()));
        // Borrow only the descriptors: the batch headers hold raw pointers
        // and are not Sync.
        let fds: Vec<&AsyncFd<socket2::Socket>> = self
            .sides()
            .flat_map(|s| {
                s.lanes
                    .iter()
                    .filter(|l| l.receives || s.errqueue)
                    .map(|l| &l.fd)
            })
            .collect();
        async move {
            if stashed {
                return Ok(());
            }
            type Wait<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;
            let mut waits: Vec<Wait<'_>> = fds
                .into_iter()
                .map(|fd| -> Wait<'_> {
                    Box::pin(async move {
                        // ERROR too: a datagram socket's queued ICMP errors
                        // raise EPOLLERR, not EPOLLIN.
                        let mut guard = fd.ready(Interest::READABLE | Interest::ERROR).await?;
                        // The driver reads every socket until empty next.
                        guard.clear_ready();
                        Ok(())
                    })
                })
                .collect();
            if waits.is_empty() {
                return std::future::pending().await;
            }
            std::future::poll_fn(|cx| {
                for w in &mut waits {
                    if let Poll::Ready(r) = w.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                }
                Poll::Pending
            })
            .await
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
