//! Linux ICMP sockets for the ping engine: opening datagram ("ping") and raw
//! sockets with the options ping needs (kernel receive timestamps
//! `SO_TIMESTAMPNS`, TTL / hop-limit control messages, `IP_RECVERR` on
//! datagram sockets, type filters on raw sockets so the kernel does not copy
//! traffic that is neither a reply nor an error). Dropping capabilities
//! once the sockets are open is in [`super::caps`]; batched I/O in
//! [`super::ping_io`].

use std::io;
use std::net::{IpAddr, SocketAddr};

use nix::sys::socket::{setsockopt, sockopt};

pub use super::caps::{capabilities, drop_capabilities};
use super::sockopt::{self as raw_opt, IcmpV6Filter};
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
    /// IP TTL / IPv6 unicast hop limit of probes (1 to 255).
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
    /// Set the don't-fragment bit (`IP_PMTUDISC_DO`, and for IPv6
    /// `IPV6_PMTUDISC_DO`: never fragment locally). Probes that fit any
    /// path (up to 576 bytes) lose nothing by it, and the kernel then skips
    /// picking an IP ID for each of them.
    pub dont_fragment: bool,
    /// Type of service (IPv4) / traffic class (IPv6) byte of probes.
    pub tos: Option<u8>,
    /// Ask the kernel for a software transmit timestamp of every probe
    /// (`SO_TIMESTAMPING`, read back from the error queue), so each probe's
    /// send time is the moment it left, not a clock read around the batch.
    pub tx_timestamps: bool,
}

/// Why an ICMP socket could not be opened or set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The socket itself could not be created (privilege, no ICMP support).
    #[error("cannot create the socket: {0}")]
    Create(#[source] io::Error),
    /// The kernel refused an option value.
    #[error("cannot set {name} to {value}: {source}")]
    Option {
        /// The option (`IP_TTL`, `IP_TOS`…).
        name: &'static str,
        /// The value asked for.
        value: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Binding to an interface failed (usually: there is no such interface).
    #[error("cannot bind to interface {device:?}: {source}")]
    Device {
        /// The interface name.
        device: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Binding to a source address failed (usually: not an address of
    /// this host).
    #[error("cannot send from {addr}: {source}")]
    Source {
        /// The address.
        addr: IpAddr,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

impl SetupError {
    /// True when the socket could not be created for lack of privilege
    /// (the next kind of socket may still work).
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Create(e)
            if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)))
    }

    /// The OS error behind it.
    pub fn io(&self) -> &io::Error {
        match self {
            Self::Create(e)
            | Self::Option { source: e, .. }
            | Self::Device { source: e, .. }
            | Self::Source { source: e, .. } => e,
        }
    }
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

/// ICMPv6 types a raw IPv6 socket lets through: destination unreachable
/// (1), packet too big (2), time exceeded (3), parameter problem (4), echo
/// reply (129). Neighbour discovery and our own requests stay out.
const RAW_V6_TYPES: [u32; 5] = [1, 2, 3, 4, 129];

/// `ICMP6_FILTER` from `<netinet/icmp6.h>` (level `IPPROTO_ICMPV6`).
const ICMP6_FILTER: libc::c_int = 1;

/// The `ICMP_FILTER` mask of a raw IPv4 socket: a set bit drops that type.
fn icmp_filter(keep_types: &[u32]) -> u32 {
    !keep_types.iter().fold(0u32, |m, t| m | (1 << t))
}

/// The `ICMP6_FILTER` of a raw IPv6 socket: 256 bits, a set bit blocks
/// that type (Linux semantics).
fn icmp6_filter(keep_types: &[u32]) -> IcmpV6Filter {
    let mut filter = [u32::MAX; 8];
    for &t in keep_types {
        filter[(t >> 5) as usize] &= !(1 << (t & 31));
    }
    IcmpV6Filter(filter)
}

/// Set the ICMP type filter of a raw socket of `family` so the kernel does
/// not even copy the other types to us (our own looped-back requests,
/// neighbour discovery, other traffic).
fn set_type_filter(socket: &Socket, family: Family, keep_types: &[u32]) -> io::Result<()> {
    match family {
        Family::V4 => raw_opt::set(socket, libc::SOL_RAW, ICMP_FILTER, &icmp_filter(keep_types)),
        Family::V6 => raw_opt::set(
            socket,
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            &icmp6_filter(keep_types),
        ),
    }
}

fn opt<T: std::fmt::Display + Copy>(
    name: &'static str,
    value: T,
    r: io::Result<()>,
) -> Result<(), SetupError> {
    r.map_err(|source| SetupError::Option {
        name,
        value: value.to_string(),
        source,
    })
}

fn nix_opt(name: &'static str, r: nix::Result<()>) -> Result<(), SetupError> {
    opt(name, 1, r.map_err(io::Error::from))
}

/// Receive-side options: kernel receive timestamps, TTL control messages,
/// the error queue (datagram) or the type filter (raw), and transmit
/// timestamps when asked for.
fn set_receive_options(
    socket: &Socket,
    family: Family,
    kind: IcmpKind,
    tx_timestamps: bool,
) -> Result<(), SetupError> {
    nix_opt(
        "SO_TIMESTAMPNS",
        setsockopt(socket, sockopt::ReceiveTimestampns, &true),
    )?;
    match (family, kind) {
        (Family::V4, IcmpKind::Dgram) => {
            nix_opt(
                "IP_RECVTTL",
                setsockopt(socket, sockopt::Ipv4RecvTtl, &true),
            )?;
            // ICMP errors about our probes arrive on the error queue.
            nix_opt(
                "IP_RECVERR",
                setsockopt(socket, sockopt::Ipv4RecvErr, &true),
            )?;
        }
        (Family::V6, IcmpKind::Dgram) => {
            nix_opt(
                "IPV6_RECVHOPLIMIT",
                setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true),
            )?;
            nix_opt(
                "IPV6_RECVERR",
                setsockopt(socket, sockopt::Ipv6RecvErr, &true),
            )?;
        }
        (Family::V4, IcmpKind::Raw) => {
            opt(
                "ICMP_FILTER",
                "replies and errors",
                set_type_filter(socket, family, &RAW_V4_TYPES),
            )?;
        }
        (Family::V6, IcmpKind::Raw) => {
            nix_opt(
                "IPV6_RECVHOPLIMIT",
                setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true),
            )?;
            opt(
                "ICMP6_FILTER",
                "replies and errors",
                set_type_filter(socket, family, &RAW_V6_TYPES),
            )?;
        }
    }
    if tx_timestamps {
        use nix::sys::socket::TimestampingFlag as F;
        let flags = F::SOF_TIMESTAMPING_TX_SOFTWARE | F::SOF_TIMESTAMPING_SOFTWARE;
        nix_opt(
            "SO_TIMESTAMPING",
            setsockopt(socket, sockopt::Timestamping, &flags),
        )?;
    }
    Ok(())
}

/// Send-side options: TTL, don't-fragment, type of service, buffers.
fn set_send_options(
    socket: &Socket,
    family: Family,
    opts: &SocketOptions,
) -> Result<(), SetupError> {
    let v4 = family == Family::V4;
    if let Some(ttl) = opts.ttl {
        if v4 {
            opt("IP_TTL", ttl, socket.set_ttl_v4(ttl))?;
        } else {
            opt("IPV6_UNICAST_HOPS", ttl, socket.set_unicast_hops_v6(ttl))?;
        }
    }
    if opts.dont_fragment {
        if v4 {
            let r = raw_opt::set(
                socket,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                &libc::IP_PMTUDISC_DO,
            );
            opt("IP_MTU_DISCOVER", "IP_PMTUDISC_DO", r)?;
        } else {
            let r = raw_opt::set(
                socket,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                &libc::IPV6_PMTUDISC_DO,
            );
            opt("IPV6_MTU_DISCOVER", "IPV6_PMTUDISC_DO", r)?;
        }
    }
    if let Some(tos) = opts.tos {
        if v4 {
            opt("IP_TOS", tos, socket.set_tos_v4(u32::from(tos)))?;
        } else {
            opt("IPV6_TCLASS", tos, socket.set_tclass_v6(u32::from(tos)))?;
        }
    }
    if opts.recv_buffer > 0 {
        // Privileged: past rmem_max. Otherwise the kernel caps it.
        if setsockopt(socket, sockopt::RcvBufForce, &opts.recv_buffer).is_err() {
            let _ = socket.set_recv_buffer_size(opts.recv_buffer);
        }
    }
    if opts.send_buffer > 0 && setsockopt(socket, sockopt::SndBufForce, &opts.send_buffer).is_err()
    {
        let _ = socket.set_send_buffer_size(opts.send_buffer);
    }
    Ok(())
}

/// Open an ICMP socket of `family` and `kind` with `opts` applied.
pub fn open_icmp(
    family: Family,
    kind: IcmpKind,
    opts: &SocketOptions,
) -> Result<IcmpSocket, SetupError> {
    let (domain, proto) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = match kind {
        IcmpKind::Dgram => Type::DGRAM,
        IcmpKind::Raw => Type::RAW,
    };
    let socket = Socket::new(domain, ty, Some(proto)).map_err(SetupError::Create)?;
    socket.set_nonblocking(true).map_err(SetupError::Create)?;
    set_receive_options(&socket, family, kind, opts.tx_timestamps)?;
    set_send_options(&socket, family, opts)?;
    if let Some(dev) = &opts.device {
        socket
            .bind_device(Some(dev.as_bytes()))
            .map_err(|source| SetupError::Device {
                device: dev.clone(),
                source,
            })?;
    }
    if let Some(src) = opts.source {
        let matches = matches!(
            (family, src),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        );
        if matches {
            socket
                .bind(&SocketAddr::new(src, 0).into())
                .map_err(|source| SetupError::Source { addr: src, source })?;
        }
    }
    Ok(IcmpSocket {
        socket,
        family,
        kind,
    })
}

/// Make an open raw socket send-only: its ICMP filter blocks every type,
/// so the kernel never copies a message to it (every raw ICMP socket would
/// otherwise get its own copy of every reply), and its receive buffer is
/// shrunk to the minimum unless `keep_buffer` (its error queue holds
/// transmit timestamps). More raw sockets can then share the sending.
pub fn make_send_only(s: &IcmpSocket, keep_buffer: bool) -> io::Result<()> {
    if s.kind != IcmpKind::Raw {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "only raw ICMP sockets can be made send-only",
        ));
    }
    set_type_filter(&s.socket, s.family, &[])?;
    if keep_buffer {
        return Ok(());
    }
    // The kernel rounds this up to its minimum.
    s.socket.set_recv_buffer_size(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;

    use super::*;

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

    #[test]
    fn raw_type_filters_read_back() {
        // Root only (raw sockets); elsewhere there is nothing to test.
        let opts = SocketOptions::default();
        let Ok(v4) = open_icmp(Family::V4, IcmpKind::Raw, &opts) else {
            return;
        };
        let mask: u32 = raw_opt::get(&v4.socket, libc::SOL_RAW, ICMP_FILTER).unwrap();
        // Replies (0) and errors pass; echo requests (8) are dropped.
        assert_eq!(mask & 1, 0);
        assert_eq!(mask & (1 << 3), 0);
        assert_ne!(mask & (1 << 8), 0);
        make_send_only(&v4, false).unwrap();
        let mask: u32 = raw_opt::get(&v4.socket, libc::SOL_RAW, ICMP_FILTER).unwrap();
        assert_eq!(mask, u32::MAX);
        if let Ok(v6) = open_icmp(Family::V6, IcmpKind::Raw, &opts) {
            let f: IcmpV6Filter =
                raw_opt::get(&v6.socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER).unwrap();
            assert_eq!(f, icmp6_filter(&RAW_V6_TYPES));
            // Echo reply (129) passes, echo request (128) is blocked.
            assert_eq!(f.0[4] & (1 << 1), 0);
            assert_ne!(f.0[4] & 1, 0);
        }
    }

    #[test]
    fn bad_option_values_name_the_option() {
        let opts = SocketOptions {
            ttl: Some(0),
            ..SocketOptions::default()
        };
        let r = open_icmp(Family::V4, IcmpKind::Raw, &opts)
            .or_else(|_| open_icmp(Family::V4, IcmpKind::Dgram, &opts));
        match r {
            Err(e @ SetupError::Option { .. }) => assert!(e.to_string().contains("IP_TTL"), "{e}"),
            Err(e) => assert!(e.is_denied(), "{e}"),
            Ok(_) => panic!("a TTL of 0 was accepted"),
        }
        let opts = SocketOptions {
            device: Some("nosuch0".into()),
            ..SocketOptions::default()
        };
        let r = open_icmp(Family::V4, IcmpKind::Raw, &opts)
            .or_else(|_| open_icmp(Family::V4, IcmpKind::Dgram, &opts));
        match r {
            Err(e @ SetupError::Device { .. }) => assert!(e.to_string().contains("nosuch0"), "{e}"),
            Err(e) => assert!(e.is_denied(), "{e}"),
            Ok(_) => panic!("a missing interface was accepted"),
        }
    }

    #[test]
    fn a_send_only_raw_socket_receives_nothing() {
        // Root only (raw sockets); elsewhere there is nothing to test.
        let opts = SocketOptions::default();
        let Ok(listener) = open_icmp(Family::V4, IcmpKind::Raw, &opts) else {
            return;
        };
        let sender = open_icmp(Family::V4, IcmpKind::Raw, &opts).unwrap();
        make_send_only(&sender, false).unwrap();
        assert!(sender.socket.recv_buffer_size().unwrap() < 64 << 10);
        // An echo request to 127.0.0.1 from the send-only socket: its
        // reply reaches the ordinary raw socket, never the send-only one.
        let mut req = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
        let sum = sockbox_wire::checksum::checksum(&req);
        req[2..4].copy_from_slice(&sum.to_be_bytes());
        let to: SocketAddr = "127.0.0.1:0".parse().unwrap();
        sender.socket.send_to(&req, &to.into()).unwrap();
        listener.socket.set_nonblocking(false).unwrap();
        listener
            .socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut got_reply = false;
        let mut buf = [0u8; 256];
        for _ in 0..16 {
            let Ok(n) = (&listener.socket).read(&mut buf) else {
                break;
            };
            let bytes = &buf[..n];
            let ihl = usize::from(bytes[0] & 0x0f) * 4;
            if bytes[ihl] == 0 && bytes[ihl + 4..ihl + 6] == [0x12, 0x34] {
                got_reply = true;
                break;
            }
        }
        assert!(got_reply, "the reply did not reach the ordinary raw socket");
        let r = (&sender.socket).read(&mut buf);
        assert_eq!(
            r.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::WouldBlock),
            "the send-only socket received something"
        );
        let dgram = IcmpSocket {
            socket: Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap(),
            family: Family::V4,
            kind: IcmpKind::Dgram,
        };
        assert!(make_send_only(&dgram, false).is_err());
    }
}
