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
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

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

/// Classic BPF for raw IPv4 ICMP sockets: accept echo reply (0),
/// destination unreachable (3), time exceeded (11), parameter problem (12);
/// drop the rest (our own requests looped back, other processes' traffic).
fn raw_v4_filter() -> [SockFilter; 8] {
    const LDX_MSH_B: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH
    const LD_B_IND: u16 = 0x50; // BPF_LD | BPF_B | BPF_IND
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    [
        SockFilter::new(LDX_MSH_B, 0, 0, 0), // x = 4 * (ip[0] & 0xf)
        SockFilter::new(LD_B_IND, 0, 0, 0),  // a = icmp type
        SockFilter::new(JEQ_K, 3, 0, 0),
        SockFilter::new(JEQ_K, 2, 0, 3),
        SockFilter::new(JEQ_K, 1, 0, 11),
        SockFilter::new(JEQ_K, 0, 1, 12),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
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
            } else {
                socket.attach_filter(&raw_v4_filter())?;
            }
            if let Some(ttl) = opts.ttl {
                socket.set_ttl_v4(ttl)?;
            }
        }
        Family::V6 => {
            setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
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

/// Reusable send headers for [`send_batch`].
#[derive(Debug)]
pub struct SendHeaders {
    headers: MultiHeaders<SockaddrStorage>,
    capacity: usize,
}

impl SendHeaders {
    /// Headers for up to `count` messages per call.
    pub fn new(count: usize) -> Self {
        Self {
            headers: MultiHeaders::preallocate(count.max(1), None),
            capacity: count.max(1),
        }
    }
}

/// The socket address for an ICMP destination (port 0).
pub fn dest(addr: IpAddr) -> SockaddrStorage {
    SockaddrStorage::from(SocketAddr::new(addr, 0))
}

/// Send `packets[i]` to `dests[i]` with one `sendmmsg` call, without
/// blocking. Returns how many went out (a prefix); an error only when the
/// first one failed.
pub fn send_batch(
    fd: RawFd,
    headers: &mut SendHeaders,
    packets: &[&[u8]],
    dests: &[Option<SockaddrStorage>],
) -> io::Result<usize> {
    let n = packets.len().min(dests.len()).min(headers.capacity);
    if n == 0 {
        return Ok(0);
    }
    let iovs: Vec<[IoSlice<'_>; 1]> = packets[..n].iter().map(|p| [IoSlice::new(p)]).collect();
    let sent = sendmmsg(
        fd,
        &mut headers.headers,
        iovs.iter(),
        &dests[..n],
        [],
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    Ok(sent.count())
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
    fn filter_is_well_formed() {
        // Jumps must stay inside the program.
        let f = raw_v4_filter();
        assert_eq!(f.len(), 8);
    }

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
