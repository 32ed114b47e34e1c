//! Batched I/O on the ping engine's ICMP sockets: `recvmmsg` with kernel
//! timestamps and TTL control messages, the `IP_RECVERR` error queue of
//! datagram sockets, and `sendmmsg`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use nix::sys::time::TimeSpec;

/// One message read by [`recv_batch`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The bytes (cut to the buffer size when `truncated`).
    pub data: &'a [u8],
    /// The sender.
    pub from: Option<IpAddr>,
    /// TTL / hop limit from the control message, if any.
    pub ttl: Option<u8>,
    /// Kernel receive time, since the Unix epoch (CLOCK_REALTIME).
    pub stamp: Option<Duration>,
    /// True when the message was longer than the buffer.
    pub truncated: bool,
}

/// An ICMP error about one of our probes, read from a datagram socket's
/// error queue (`IP_RECVERR` / `IPV6_RECVERR`).
#[derive(Debug, Clone, Copy)]
pub struct QueuedError<'a> {
    /// The start of the probe as we sent it (ICMP echo request header and
    /// data; the kernel has put its own ident in).
    pub data: &'a [u8],
    /// Where the probe was going.
    pub dst: Option<IpAddr>,
    /// Who sent the error (router or host), if the kernel says.
    pub offender: Option<IpAddr>,
    /// ICMP type and code of the error (of the socket's family).
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
}

/// `SO_EE_ORIGIN_ICMP` / `SO_EE_ORIGIN_ICMP6`: the error came from an ICMP
/// message (not a local error).
const EE_ORIGIN_ICMP: u8 = 2;
const EE_ORIGIN_ICMP6: u8 = 3;
/// `SO_EE_ORIGIN_TIMESTAMPING`: a transmit timestamp.
const EE_ORIGIN_TIMESTAMPING: u8 = 4;

/// What a socket's error queue holds.
#[derive(Debug, Clone, Copy)]
pub enum ErrQueued<'a> {
    /// An ICMP error about one of our probes.
    Icmp(QueuedError<'a>),
    /// The kernel's software transmit timestamp of one of our packets
    /// (`SO_TIMESTAMPING`): `data` is the packet as it left, headers
    /// included.
    Sent {
        /// The packet.
        data: &'a [u8],
        /// When it left, since the Unix epoch (CLOCK_REALTIME).
        at: Duration,
    },
}

fn timespec(ts: &TimeSpec) -> Option<Duration> {
    let (s, ns) = (
        u64::try_from(ts.tv_sec()).ok()?,
        u32::try_from(ts.tv_nsec()).ok()?,
    );
    (s > 0 || ns > 0).then(|| Duration::new(s, ns))
}

/// Drain a datagram socket's error queue (at most 64 entries per call),
/// handing each ICMP error to `f` (transmit timestamps are dropped).
/// Returns how many entries were read.
pub fn recv_errqueue(fd: RawFd, buf: &mut [u8], mut f: impl FnMut(QueuedError<'_>)) -> usize {
    recv_errqueue_all(fd, buf, |m| {
        if let ErrQueued::Icmp(e) = m {
            f(e);
        }
    })
}

/// Drain a socket's error queue (at most 64 entries per call), handing
/// each ICMP error and transmit timestamp to `f`. Returns how many were
/// read.
pub fn recv_errqueue_all(fd: RawFd, buf: &mut [u8], mut f: impl FnMut(ErrQueued<'_>)) -> usize {
    let mut count = 0;
    for _ in 0..64 {
        // Room for the error with its offender address, and the timestamp
        // and TTL messages the socket's options add to queued errors too.
        let mut cmsg = nix::cmsg_space!(
            libc::sock_extended_err,
            libc::sockaddr_in6,
            TimeSpec,
            [TimeSpec; 3],
            libc::c_int,
            libc::c_int,
            libc::in6_pktinfo
        );
        let mut iov = [IoSliceMut::new(&mut buf[..])];
        let Ok(msg) = nix::sys::socket::recvmsg::<SockaddrStorage>(
            fd,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) else {
            break;
        };
        count += 1;
        let dst = msg.address.as_ref().and_then(sockaddr_ip);
        let len = msg.bytes;
        let mut found = None;
        let mut stamp = None;
        let mut sent = false;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4RecvErr(e, _)
                    | ControlMessageOwned::Ipv6RecvErr(e, _)
                        if e.ee_origin == EE_ORIGIN_TIMESTAMPING =>
                    {
                        sent = true;
                    }
                    ControlMessageOwned::ScmTimestampsns(ts) => stamp = timespec(&ts.system),
                    ControlMessageOwned::Ipv4RecvErr(e, off) if e.ee_origin == EE_ORIGIN_ICMP => {
                        let ip = off.map(|a| {
                            IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
                        });
                        found = Some((e.ee_type, e.ee_code, ip));
                    }
                    ControlMessageOwned::Ipv6RecvErr(e, off) if e.ee_origin == EE_ORIGIN_ICMP6 => {
                        let ip =
                            off.map(|a| IpAddr::V6(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr)));
                        found = Some((e.ee_type, e.ee_code, ip));
                    }
                    _ => {}
                }
            }
        }
        let data = &buf[..len.min(buf.len())];
        if sent {
            if let Some(at) = stamp {
                f(ErrQueued::Sent { data, at });
            }
        } else if let Some((icmp_type, icmp_code, offender)) = found {
            f(ErrQueued::Icmp(QueuedError {
                data,
                dst,
                offender,
                icmp_type,
                icmp_code,
            }));
        }
    }
    count
}

/// Reusable receive buffers for [`recv_batch`].
#[derive(Debug)]
pub struct RecvBuffers {
    bufs: Vec<Vec<u8>>,
}

impl RecvBuffers {
    /// `count` buffers of `size` bytes each.
    pub fn new(count: usize, size: usize) -> Self {
        Self {
            bufs: (0..count.max(1)).map(|_| vec![0u8; size.max(64)]).collect(),
        }
    }

    /// How many messages one call can return.
    pub fn count(&self) -> usize {
        self.bufs.len()
    }
}

fn sockaddr_ip(a: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Read up to `bufs.count()` messages without blocking and hand each to
/// `f`. Returns how many were read; `WouldBlock` when there were none.
pub fn recv_batch(
    fd: RawFd,
    bufs: &mut RecvBuffers,
    mut f: impl FnMut(Received<'_>),
) -> io::Result<usize> {
    let n = bufs.bufs.len();
    // Fresh headers each call: recvmmsg shrinks msg_controllen/msg_namelen
    // in place and nix does not reset them.
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
        n,
        Some(nix::cmsg_space!(TimeSpec, [TimeSpec; 3], libc::c_int)),
    );
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
        .bufs
        .iter_mut()
        .map(|b| [IoSliceMut::new(&mut b[..])])
        .collect();
    let results = recvmmsg(
        fd,
        &mut headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(io::Error::from)?;
    let mut count = 0;
    for msg in results {
        count += 1;
        let mut ttl = None;
        let mut stamp = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        if let (Ok(s), Ok(ns)) =
                            (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec()))
                        {
                            stamp = Some(Duration::new(s, ns));
                        }
                    }
                    ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                        ttl = u8::try_from(t).ok();
                    }
                    _ => {}
                }
            }
        }
        let data = msg.iovs().next().unwrap_or(&[]);
        f(Received {
            data,
            from: msg.address.as_ref().and_then(sockaddr_ip),
            ttl,
            stamp,
            truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
        });
    }
    Ok(count)
}

/// The socket address for an ICMP destination (port 0).
pub fn dest(addr: IpAddr) -> SockaddrStorage {
    SockaddrStorage::from(SocketAddr::new(addr, 0))
}

/// How long [`send_all`] waits for send-buffer space before giving up on
/// the rest of its packets.
const SEND_WAIT_MS: u16 = 1000;

/// The clock read around one `sendmmsg` call that sent packets `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpan {
    /// Indexes (plus the caller's base) of the packets it sent.
    pub range: std::ops::Range<usize>,
    /// Read just before the call.
    pub before: tokio::time::Instant,
    /// Read just after it.
    pub after: tokio::time::Instant,
}

/// Why the system did not send one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFailure {
    /// The error's kind.
    pub kind: io::ErrorKind,
    /// The system's error number, when it gave one (`ENOBUFS` and
    /// `EMSGSIZE` have no kind of their own).
    pub errno: Option<i32>,
}

impl SendFailure {
    /// The failure `e` describes.
    pub fn of(e: &io::Error) -> Self {
        Self {
            kind: e.kind(),
            errno: e.raw_os_error(),
        }
    }

    /// Whether sending again later may work: the system was short of
    /// buffer space or room in a queue, rather than refusing this packet
    /// or destination (no route, not permitted, too large).
    pub fn is_passing(&self) -> bool {
        match self.errno {
            Some(n) => [libc::ENOBUFS, libc::EAGAIN, libc::ENOMEM, libc::EINTR].contains(&n),
            None => matches!(
                self.kind,
                io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory | io::ErrorKind::Interrupted
            ),
        }
    }
}

impl From<io::ErrorKind> for SendFailure {
    fn from(kind: io::ErrorKind) -> Self {
        Self { kind, errno: None }
    }
}

/// The system's own message ("No buffer space available", as fping and
/// ping print it), else the kind's.
impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errno {
            Some(n) => f.write_str(nix::errno::Errno::from_raw(n).desc()),
            None => io::Error::from(self.kind).fmt(f),
        }
    }
}

/// Send every `packets[i]` to `dests[i]` on `fd` with `sendmmsg`, up to
/// [`BATCH_MAX`] per call. A packet the kernel refuses (no route,
/// permission…) is recorded in `failed` with its index (plus `base`) and
/// skipped; when the send buffer is full it waits for room (bounded).
/// Each call that sent something is recorded in `spans`, with the clock
/// read just before and after it.
pub fn send_all(
    fd: RawFd,
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
    base: usize,
    failed: &mut Vec<(usize, SendFailure)>,
    spans: &mut Vec<CallSpan>,
) {
    let n = packets.len().min(dests.len());
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH_MAX.min(n.max(1)), None);
    let mut at = 0;
    while at < n {
        let end = n.min(at + BATCH_MAX);
        let iovs: Vec<[IoSlice<'_>; 1]> =
            packets[at..end].iter().map(|p| [IoSlice::new(p)]).collect();
        let before = tokio::time::Instant::now();
        let r = sendmmsg(
            fd,
            &mut headers,
            iovs.iter(),
            &dests[at..end],
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map(Iterator::count);
        let after = tokio::time::Instant::now();
        match r {
            Ok(0) | Err(nix::errno::Errno::EAGAIN) => {
                if !wait_writable(fd) {
                    failed.extend((at..n).map(|i| (base + i, io::ErrorKind::WouldBlock.into())));
                    return;
                }
            }
            Ok(k) => {
                spans.push(CallSpan {
                    range: base + at..base + at + k,
                    before,
                    after,
                });
                at += k;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                failed.push((base + at, SendFailure::of(&io::Error::from(e))));
                at += 1;
            }
        }
    }
}

fn wait_writable(fd: RawFd) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    // SAFETY: `fd` is open for the duration of this call (the caller holds
    // the socket).
    #[expect(unsafe_code)]
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(bfd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, SEND_WAIT_MS), Ok(n) if n > 0)
}

/// Messages per `sendmmsg` call.
pub const BATCH_MAX: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn of(errno: i32) -> SendFailure {
        SendFailure::of(&io::Error::from_raw_os_error(errno))
    }

    /// No buffer space passes; a packet too large, no route or no
    /// permission does not. The system's own words are kept (ENOBUFS has
    /// no error kind of its own).
    #[test]
    fn send_failures_that_pass_and_their_words() {
        assert!(of(libc::ENOBUFS).is_passing());
        assert!(of(libc::EAGAIN).is_passing());
        for refused in [
            libc::EMSGSIZE,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::EPERM,
        ] {
            assert!(!of(refused).is_passing(), "{refused}");
        }
        assert!(
            of(libc::ENOBUFS)
                .to_string()
                .starts_with("No buffer space available")
        );
        assert!(!SendFailure::from(io::ErrorKind::NetworkUnreachable).is_passing());
        assert!(SendFailure::from(io::ErrorKind::WouldBlock).is_passing());
    }
}
