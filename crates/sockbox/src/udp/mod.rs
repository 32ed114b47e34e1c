//! UDP datagrams: a [`Sender`] that sends to one or many targets (unicast,
//! broadcast, multicast) and collects replies from any source
//! ([`Sender::exchange`] sends and collects in one call), and a [`Listener`]
//! that reports what arrives and can answer each datagram with fixed text,
//! an echo, or the output of a program (a discovery responder). The
//! listener is a [`DatagramHandler`](crate::net::DatagramHandler) on the
//! [`UdpServer`](crate::net::UdpServer) skeleton.
//!
//! Multicast group membership and sending options live in [`mcast`]; the
//! broadcast addresses of this machine's interfaces in [`target`]; the
//! per-datagram program runner in [`exec`].
//!
//! Every error names what it was doing and, for the errors people actually
//! hit (`EACCES` on a broadcast, `ENETUNREACH`, `EMSGSIZE`, `EADDRINUSE`),
//! how to fix it.

mod exchange;
pub mod exec;
mod listen;
pub mod mcast;
mod send;
pub mod target;

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::net::BindError;

pub use exchange::{Exchange, ExchangeEvent, ExchangeReport, Payloads};
pub use listen::{ListenConfig, ListenEvent, ListenReport, Listener, ReplyMode};
pub use send::{Collect, Reply, SendConfig, SendReport, Sender};

/// Largest UDP payload over IPv4: 65535 minus the 20-byte IP and 8-byte UDP headers.
pub const MAX_PAYLOAD_V4: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms: 65535 minus the 8-byte UDP header.
pub const MAX_PAYLOAD_V6: usize = 65_527;

/// The largest payload one datagram to `ip` can carry.
pub fn max_payload(ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => MAX_PAYLOAD_V4,
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => MAX_PAYLOAD_V4,
        IpAddr::V6(_) => MAX_PAYLOAD_V6,
    }
}

/// Errors from the udp module (sending, listening, multicast, replies).
///
/// The messages say what failed and, where the fix is known, what to do
/// about it in system terms (a route, a capability, an interface); they
/// name no command-line flag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `socket(2)` failed.
    #[error("cannot create a UDP socket: {0}")]
    Socket(#[source] io::Error),
    /// Binding the local address failed.
    #[error("UDP: {0}{hint}", hint = bind_hint(.0))]
    Bind(#[source] BindError),
    /// Sending a datagram failed.
    #[error("cannot send to {1}: {0}{hint}", hint = send_hint(.0, .1))]
    Send(#[source] io::Error, SocketAddr),
    /// Receiving failed.
    #[error("cannot receive on UDP {1}: {0}")]
    Recv(#[source] io::Error, SocketAddr),
    /// An ICMP error came back from a unicast destination (port, host or
    /// network unreachable, or prohibited): no reply will come from there.
    #[error("{to}: {}", unreachable_text(.cause))]
    Unreachable {
        /// The destination the error is about.
        to: SocketAddr,
        /// The error the kernel turned the ICMP message into.
        cause: io::Error,
    },
    /// A socket option could not be set.
    #[error("cannot set {what}: {source}")]
    SockOpt {
        /// The option, e.g. `SO_BROADCAST`.
        what: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A payload larger than one datagram can carry.
    #[error(
        "a datagram of {len} bytes is over the UDP limit of {max} bytes to {to}; \
         send less (split it, or use a stream)"
    )]
    TooLarge {
        /// The payload length.
        len: usize,
        /// The limit for this address family.
        max: usize,
        /// The destination.
        to: SocketAddr,
    },
    /// No destination was given.
    #[error("no destination address to send to")]
    NoTargets,
    /// Destinations of both IPv4 and IPv6 in one sender.
    #[error("cannot send to {0} and {1} from one socket: pick IPv4 or IPv6 destinations, not both")]
    MixedFamilies(SocketAddr, SocketAddr),
    /// Every interface's broadcast was asked for, but no interface has a
    /// broadcast address.
    #[error("no interface that is up has an IPv4 broadcast address (see `sockbox ifaces`)")]
    NoBroadcastInterface,
    /// A multicast command got an address that is not a multicast group.
    #[error(
        "{0} is not a multicast group address: IPv4 groups are 224.0.0.0/4 \
         (e.g. 239.1.2.3), IPv6 groups are ff00::/8 (e.g. ff02::1:3)"
    )]
    NotMulticast(IpAddr),
    /// A source address for source-specific multicast of the wrong family.
    #[error("source {src} and group {group} must both be IPv4 or both IPv6")]
    SourceFamily {
        /// The source address.
        src: IpAddr,
        /// The group.
        group: IpAddr,
    },
    /// The interface for multicast lacks what the group's family needs.
    #[error(
        "interface {iface} has no IPv4 address, which IPv4 multicast sending needs; add one or use an IPv6 group"
    )]
    IfaceNoIpv4 {
        /// The interface name.
        iface: String,
    },
    /// No interface carries the address that was to name one.
    #[error("no interface has address {0}; `sockbox ifaces` lists this machine's addresses")]
    NoIfaceWithAddress(IpAddr),
    /// Listing or finding interfaces failed.
    #[error(transparent)]
    Iface(#[from] crate::iface::Error),
    /// The interface asked for is down.
    #[error("interface {name} is down; bring it up (`ip link set {name} up`)")]
    IfaceDown {
        /// The interface name.
        name: String,
    },
    /// The broadcast of an interface that has no IPv4 broadcast address.
    #[error(
        "interface {name} has no IPv4 broadcast address (loopback, point-to-point, /31, /32 or \
         no IPv4 address; `sockbox ifaces` shows them)"
    )]
    NoBroadcastOn {
        /// The interface name.
        name: String,
    },
    /// Tying the socket to an interface failed.
    #[error(transparent)]
    Tie(#[from] crate::sys::device::TieError),
    /// Neither `SO_BINDTODEVICE` nor a source address could tie the socket
    /// to the interface.
    #[error(
        "cannot send out of {name}: SO_BINDTODEVICE was not permitted (it needs CAP_NET_RAW: \
         run as root or `setcap cap_net_raw+ep sockbox`) and {name} has no {family} address to \
         send from"
    )]
    IfaceUntied {
        /// The interface name.
        name: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// Joining a multicast group failed.
    #[error("cannot join multicast group {group}{on}: {source}{hint}",
        on = .iface.as_deref().map(|i| format!(" on {i}")).unwrap_or_default(),
        hint = join_hint(.source))]
    Join {
        /// The group.
        group: IpAddr,
        /// The interface, if one was chosen.
        iface: Option<String>,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The program that answers a datagram gave no answer.
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// Reading the datagrams to send failed.
    #[error("cannot read the datagrams to send: {0}")]
    Input(#[source] io::Error),
}

/// More on a failed UDP bind than [`BindError`] says: which tool shows the
/// holder of a port, how to grant a low port.
fn bind_hint(e: &BindError) -> String {
    match e.source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) if e.addr.port() < 1024 => {
            "; `setcap cap_net_bind_service+ep sockbox` grants low ports, or pick port 1024 or above"
                .to_owned()
        }
        Some(libc::EADDRINUSE) => format!("; `ss -ulpn` shows which socket holds port {}", e.addr.port()),
        Some(libc::EADDRNOTAVAIL) => "; `sockbox ifaces` lists this machine's addresses".to_owned(),
        _ => String::new(),
    }
}

fn send_hint(e: &io::Error, addr: &SocketAddr) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) => format!(
            "; {} looks like a broadcast address: sending to it needs SO_BROADCAST, \
             or a firewall rule rejects it",
            addr.ip()
        ),
        Some(libc::EPERM) => "; a firewall rule (nftables/iptables) rejects it".to_owned(),
        Some(libc::ENETUNREACH) if addr.ip() == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) => {
            "; 255.255.255.255 leaves by the default route and there is none: send to each \
             interface's broadcast address instead (`sockbox ifaces` shows them)"
                .to_owned()
        }
        Some(libc::ENETUNREACH) if addr.ip().is_multicast() => format!(
            "; no route to {}: choose the interface to send from (no multicast route is then \
             needed), or check `ip route`",
            addr.ip()
        ),
        Some(libc::ENETUNREACH) => format!(
            "; no route to {}: check `ip route`, or send to an address on a connected subnet",
            addr.ip()
        ),
        Some(libc::EHOSTUNREACH) => format!(
            "; {} is not reachable (no neighbour answers): check the address and the link",
            addr.ip()
        ),
        Some(libc::EMSGSIZE) => {
            "; the datagram is too large for the path: send less, or under the interface MTU \
             (`sockbox ifaces`) when fragmentation is not allowed"
                .to_owned()
        }
        Some(libc::EADDRNOTAVAIL) => {
            "; the local address cannot reach it (an IPv6 link-local address needs a scope, \
             e.g. fe80::1%eth0)"
                .to_owned()
        }
        _ => String::new(),
    }
}

/// The errors an ICMP message about a sent datagram turns into (with
/// `IP_RECVERR` set, on an unconnected socket too).
pub(crate) fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES)
    )
}

fn unreachable_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "port unreachable (nothing listens there)".to_owned(),
        Some(libc::EHOSTUNREACH) => {
            "host unreachable (an ICMP error came back: check the address and that the host is up)"
                .to_owned()
        }
        Some(libc::ENETUNREACH) => {
            "network unreachable (a router on the way has no route: check the address)".to_owned()
        }
        Some(libc::EACCES) => {
            "communication administratively prohibited (a firewall on the way rejects it)"
                .to_owned()
        }
        _ => format!("unreachable ({e})"),
    }
}

fn join_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENODEV) => {
            "; the interface does not exist or has no address of that family \
             (`sockbox ifaces` lists them)"
        }
        Some(libc::EADDRINUSE) => "; this socket already joined that group",
        Some(libc::ENOBUFS) => {
            "; too many memberships (raise net.ipv4.igmp_max_memberships or \
             net.ipv4.igmp_max_msf)"
        }
        Some(libc::EINVAL) => "; the group, source or interface is not valid for a join",
        _ => "",
    }
}

impl Error {
    /// True when the error is about what the user asked for (an address, a
    /// size, an interface) rather than the system: the CLI exits 2 for these.
    pub fn is_input(&self) -> bool {
        match self {
            Self::TooLarge { .. }
            | Self::NoTargets
            | Self::MixedFamilies(..)
            | Self::NotMulticast(_)
            | Self::SourceFamily { .. }
            | Self::IfaceNoIpv4 { .. }
            | Self::NoIfaceWithAddress(_)
            | Self::IfaceDown { .. }
            | Self::NoBroadcastOn { .. } => true,
            Self::Iface(e) => matches!(e, crate::iface::Error::NotFound { .. }),
            _ => false,
        }
    }

    /// The system error underneath, when there is one (to tell
    /// `EACCES` or `ENETUNREACH` apart).
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Self::Socket(e) | Self::Send(e, _) | Self::Recv(e, _) | Self::Input(e) => {
                e.raw_os_error()
            }
            Self::Bind(b) => b.source.raw_os_error(),
            Self::Unreachable { cause: e, .. }
            | Self::SockOpt { source: e, .. }
            | Self::Join { source: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_family() {
        assert_eq!(max_payload("10.0.0.1".parse().unwrap()), 65_507);
        assert_eq!(max_payload("::1".parse().unwrap()), 65_527);
        assert_eq!(max_payload("::ffff:10.0.0.1".parse().unwrap()), 65_507);
    }

    fn bind_err(errno: i32, at: &str) -> Error {
        Error::Bind(BindError {
            addr: at.parse().unwrap(),
            step: "bind".into(),
            source: io::Error::from_raw_os_error(errno),
        })
    }

    #[test]
    fn errors_carry_the_fix() {
        let to: SocketAddr = "10.0.0.255:9".parse().unwrap();
        let e = Error::Send(io::Error::from_raw_os_error(libc::EACCES), to);
        assert!(e.to_string().contains("SO_BROADCAST"), "{e}");
        let e = Error::Send(io::Error::from_raw_os_error(libc::ENETUNREACH), to);
        assert!(e.to_string().contains("ip route"), "{e}");
        let all: SocketAddr = "255.255.255.255:9".parse().unwrap();
        let e = Error::Send(io::Error::from_raw_os_error(libc::ENETUNREACH), all);
        assert!(e.to_string().contains("each interface's broadcast"), "{e}");
        let e = Error::Send(io::Error::from_raw_os_error(libc::EMSGSIZE), to);
        assert!(e.to_string().contains("send less"), "{e}");
        let e = bind_err(libc::EACCES, "0.0.0.0:80");
        assert!(e.to_string().contains("cap_net_bind_service"), "{e}");
        assert_eq!(e.os_error(), Some(libc::EACCES));
        let e = bind_err(libc::EADDRINUSE, "0.0.0.0:80");
        assert!(e.to_string().contains("ss -ulpn"), "{e}");
        assert!(Error::NotMulticast("10.0.0.1".parse().unwrap()).is_input());
        let e = Error::Unreachable {
            to: "127.0.0.1:9".parse().unwrap(),
            cause: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        assert_eq!(
            e.to_string(),
            "127.0.0.1:9: port unreachable (nothing listens there)"
        );
        assert!(!bind_err(libc::EACCES, "0.0.0.0:80").is_input());
    }

    #[test]
    fn messages_name_no_command_line_flag() {
        let to: SocketAddr = "239.1.2.3:9".parse().unwrap();
        let errs = [
            Error::Send(io::Error::from_raw_os_error(libc::EACCES), to),
            Error::Send(io::Error::from_raw_os_error(libc::ENETUNREACH), to),
            Error::NoBroadcastInterface,
            Error::IfaceDown {
                name: "eth1".into(),
            },
            Error::NoBroadcastOn { name: "lo".into() },
            Error::Join {
                group: to.ip(),
                iface: None,
                source: io::Error::from_raw_os_error(libc::ENODEV),
            },
            bind_err(libc::EACCES, "0.0.0.0:80"),
        ];
        for e in errs {
            let text = e.to_string();
            assert!(!text.contains("--"), "{text}");
        }
    }
}
