//! Linux ICMP sockets for the ping engine: opening datagram ("ping") and raw
//! sockets with the options ping needs, batched send and receive
//! (`sendmmsg`/`recvmmsg`) with kernel receive timestamps
//! (`SO_TIMESTAMPNS`) and TTL / hop-limit control messages, a socket filter
//! that keeps raw IPv4 sockets from waking up for traffic that is not a
//! reply or an error, and dropping capabilities once the sockets are open.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use nix::sys::time::TimeSpec;
use sockbox_wire::icmp::Family;
use socket2::{Domain, Protocol, Socket, Type};

/// Which kind of ICMP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP[V6]`: unprivileged where
    /// `net.ipv4.ping_group_range` allows the caller's group; the kernel
    /// picks the ident, fills the checksum and passes us only our replies.
    Dgram,
    /// `SOCK_RAW`: needs `CAP_NET_RAW`; sees every ICMP message (IPv4 with
    /// its IP header).
    Raw,
}

impl IcmpKind {
    /// `"dgram"` or `"raw"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dgram => "dgram",
            Self::Raw => "raw",
        }
    }
}

/// Options applied when a socket is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// IP TTL / IPv6 unicast hop limit of probes.
    pub ttl: Option<u32>,
    /// Bind to this interface (`SO_BINDTODEVICE`).
    pub device: Option<String>,
    /// Send from this source address (ignored for the other family).
    pub source: Option<IpAddr>,
    /// Receive buffer to ask for, bytes (forced past `rmem_max` when
    /// privileged).
    pub recv_buffer: usize,
    /// Send buffer to ask for, bytes.
    pub send_buffer: usize,
}

/// An open, non-blocking ICMP socket.
#[derive(Debug)]
pub struct IcmpSocket {
    /// The socket.
    pub socket: Socket,
    /// Its family.
    pub family: Family,
    /// Datagram or raw.
    pub kind: IcmpKind,
}

/// ICMP types a raw IPv4 socket lets through: echo reply (0), destination
/// unreachable (3), time exceeded (11), parameter problem (12).
const RAW_V4_TYPES: [u32; 4] = [0, 3, 11, 12];

/// `ICMP_FILTER` from `<linux/icmp.h>` (option level `SOL_RAW`).
const ICMP_FILTER: libc::c_int = 1;

/// Set `ICMP_FILTER` on a raw IPv4 socket so the kernel does not even copy
/// the rest to us (our own looped-back requests, other traffic): the mask
/// has a bit set for each type to drop.
fn set_icmp_filter(socket: &Socket) -> io::Result<()> {
    let keep = RAW_V4_TYPES.iter().fold(0u32, |m, t| m | (1 << t));
    let mask: u32 = !keep;
    // SAFETY: setsockopt reads exactly size_of::<u32>() bytes from `mask`,
    // which lives across the call; the descriptor is open.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_RAW,
            ICMP_FILTER,
            (&raw const mask).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// ICMPv6 types a raw IPv6 socket lets through: destination unreachable
/// (1), packet too big (2), time exceeded (3), parameter problem (4), echo
/// reply (129). Neighbour discovery and our own requests stay out.
const RAW_V6_TYPES: [u32; 5] = [1, 2, 3, 4, 129];

/// `ICMP6_FILTER` from `<netinet/icmp6.h>` (level `IPPROTO_ICMPV6`).
const ICMP6_FILTER: libc::c_int = 1;

/// Set `ICMP6_FILTER` on a raw IPv6 socket: 256 bits, a set bit blocks
/// that type (Linux semantics).
fn set_icmp6_filter(socket: &Socket) -> io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for t in RAW_V6_TYPES {
        filter[(t >> 5) as usize] &= !(1 << (t & 31));
    }
    // SAFETY: setsockopt reads the 32-byte filter, which lives across the
    // call; the descriptor is open.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Open an ICMP socket of `family` and `kind` with `opts` applied.
pub fn open_icmp(family: Family, kind: IcmpKind, opts: &SocketOptions) -> io::Result<IcmpSocket> {
    let (domain, proto) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = match kind {
        IcmpKind::Dgram => Type::DGRAM,
        IcmpKind::Raw => Type::RAW,
    };
    let socket = Socket::new(domain, ty, Some(proto))?;
    socket.set_nonblocking(true)?;
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
    match family {
        Family::V4 => {
            if kind == IcmpKind::Dgram {
                setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
                // ICMP errors about our probes arrive on the error queue.
                setsockopt(&socket, sockopt::Ipv4RecvErr, &true).map_err(io::Error::from)?;
            } else {
                set_icmp_filter(&socket)?;
            }
            if let Some(ttl) = opts.ttl {
                socket.set_ttl_v4(ttl)?;
            }
        }
        Family::V6 => {
            setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
            if kind == IcmpKind::Dgram {
                setsockopt(&socket, sockopt::Ipv6RecvErr, &true).map_err(io::Error::from)?;
            } else {
                set_icmp6_filter(&socket)?;
            }
            if let Some(ttl) = opts.ttl {
                socket.set_unicast_hops_v6(ttl)?;
            }
        }
    }
    if opts.recv_buffer > 0 {
        // Privileged: past rmem_max. Otherwise the kernel caps it.
        if setsockopt(&socket, sockopt::RcvBufForce, &opts.recv_buffer).is_err() {
            let _ = socket.set_recv_buffer_size(opts.recv_buffer);
        }
    }
    if opts.send_buffer > 0 && setsockopt(&socket, sockopt::SndBufForce, &opts.send_buffer).is_err()
    {
        let _ = socket.set_send_buffer_size(opts.send_buffer);
    }
    if let Some(dev) = &opts.device {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(src) = opts.source {
        let matches = matches!(
            (family, src),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        );
        if matches {
            socket.bind(&SocketAddr::new(src, 0).into())?;
        }
    }
    Ok(IcmpSocket {
        socket,
        family,
        kind,
    })
}

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

/// Drain a datagram socket's error queue (at most 64 entries per call),
/// handing each ICMP error to `f`. Returns how many were read.
pub fn recv_errqueue(fd: RawFd, buf: &mut [u8], mut f: impl FnMut(QueuedError<'_>)) -> usize {
    let mut count = 0;
    for _ in 0..64 {
        // Room for the error with its offender address, and the timestamp
        // and TTL messages the socket's options add to queued errors too.
        let mut cmsg = nix::cmsg_space!(
            libc::sock_extended_err,
            libc::sockaddr_in6,
            TimeSpec,
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
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
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
        if let Some((icmp_type, icmp_code, offender)) = found {
            f(QueuedError {
                data: &buf[..len.min(buf.len())],
                dst,
                offender,
                icmp_type,
                icmp_code,
            });
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
        Some(nix::cmsg_space!(TimeSpec, libc::c_int)),
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

/// Send every `packets[i]` to `dests[i]` on `fd` with `sendmmsg`, up to
/// [`BATCH_MAX`] per call. A packet the kernel refuses (no route,
/// permission…) is recorded in `failed` with its index (plus `base`) and
/// skipped; when the send buffer is full it waits for room (bounded).
pub fn send_all(
    fd: RawFd,
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
    base: usize,
    failed: &mut Vec<(usize, io::ErrorKind)>,
) {
    let n = packets.len().min(dests.len());
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH_MAX.min(n.max(1)), None);
    let mut at = 0;
    while at < n {
        let end = n.min(at + BATCH_MAX);
        let iovs: Vec<[IoSlice<'_>; 1]> =
            packets[at..end].iter().map(|p| [IoSlice::new(p)]).collect();
        let r = sendmmsg(
            fd,
            &mut headers,
            iovs.iter(),
            &dests[at..end],
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map(Iterator::count);
        match r {
            Ok(0) | Err(nix::errno::Errno::EAGAIN) => {
                if !wait_writable(fd) {
                    failed.extend((at..n).map(|i| (base + i, io::ErrorKind::WouldBlock)));
                    return;
                }
            }
            Ok(k) => at += k,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                failed.push((base + at, io::Error::from(e).kind()));
                at += 1;
            }
        }
    }
}

fn wait_writable(fd: RawFd) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    // SAFETY: `fd` is open for the duration of this call (the caller holds
    // the socket).
    #[allow(unsafe_code)]
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(bfd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, SEND_WAIT_MS), Ok(n) if n > 0)
}

/// Messages per `sendmmsg` call.
pub const BATCH_MAX: usize = 64;

/// Like [`send_all`], split over `threads` threads that share the socket
/// (Linux processes a looped-back probe and its reply on the sending CPU,
/// so parallel senders scale a local sweep). Small sends stay on the
/// calling thread.
pub fn send_all_parallel(
    fd: RawFd,
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
    threads: usize,
    failed: &mut Vec<(usize, io::ErrorKind)>,
) {
    let n = packets.len().min(dests.len());
    let threads = threads.clamp(1, 8).min(n.div_ceil(BATCH_MAX)).max(1);
    if threads == 1 {
        send_all(fd, &packets[..n], &dests[..n], 0, failed);
        return;
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for t in 1..threads {
            let lo = (t * chunk).min(n);
            let hi = ((t + 1) * chunk).min(n);
            let (p, d) = (&packets[lo..hi], &dests[lo..hi]);
            handles.push(scope.spawn(move || {
                let mut f = Vec::new();
                send_all(fd, p, d, lo, &mut f);
                f
            }));
        }
        send_all(
            fd,
            &packets[..chunk.min(n)],
            &dests[..chunk.min(n)],
            0,
            failed,
        );
        for h in handles {
            match h.join() {
                Ok(f) => failed.extend(f),
                Err(_) => failed.push((0, io::ErrorKind::Other)),
            }
        }
    });
    failed.sort_unstable_by_key(|f| f.0);
}

/// The raw file descriptor of a socket (for the batch calls).
pub fn raw_fd(s: &Socket) -> RawFd {
    s.as_raw_fd()
}

/// The Linux capability ABI (`_LINUX_CAPABILITY_VERSION_3`).
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drop every capability of the calling thread (effective, permitted and
/// inheritable, so they cannot come back), set `no_new_privs`, and check
/// that none is left. Call it before any other thread is started:
/// capabilities are per thread and threads inherit them when created.
pub fn drop_capabilities() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads a valid v3 header and two data structs, both
    // live for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
    let (eff, perm) = capabilities()?;
    if eff != 0 || perm != 0 {
        return Err(io::Error::other(format!(
            "capabilities still present after dropping them (effective {eff:#x}, permitted {perm:#x})"
        )));
    }
    Ok(())
}

/// The calling thread's effective and permitted capability sets (64 bits).
pub fn capabilities() -> io::Result<(u64, u64)> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two data structs into our array, which is large
    // enough for the v3 ABI.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_can_be_read() {
        assert!(capabilities().is_ok());
    }

    #[test]
    fn options_read_back_on_a_raw_or_dgram_socket() {
        // Works as root (raw) or where ping_group_range allows datagram
        // sockets; otherwise there is nothing to test here.
        let opts = SocketOptions {
            ttl: Some(7),
            recv_buffer: 1 << 20,
            ..SocketOptions::default()
        };
        let s = open_icmp(Family::V4, IcmpKind::Raw, &opts)
            .or_else(|_| open_icmp(Family::V4, IcmpKind::Dgram, &opts));
        let Ok(s) = s else { return };
        assert_eq!(s.socket.ttl_v4().unwrap(), 7);
        assert!(s.socket.recv_buffer_size().unwrap() >= 1 << 16);
        assert!(nix::sys::socket::getsockopt(&s.socket, sockopt::ReceiveTimestampns).unwrap());
    }
}
