//! Wake-on-LAN: send magic packets so that multi-NIC machines work without a
//! default route, and listen for them to prove delivery.
//!
//! Sending is two steps, so a dry run and the tests can look at the first
//! without touching the network:
//!
//! 1. [`plan::plan`] turns a [`plan::SendConfig`] and the interface list into
//!    [`Route`]s: the directed broadcast of every up, non-loopback IPv4
//!    interface (each socket bound to its interface), unicast or WAN
//!    addresses, `ff02::1` per interface, raw 0x0842 Ethernet frames;
//! 2. [`send::send`] sends one packet along one route and says how the
//!    socket was bound.
//!
//! [`hosts`] reads hosts files (`MAC [ADDR[:PORT]] [name]`) and named hosts
//! in `hosts.toml`. [`listen`] receives magic packets on UDP and raw
//! 0x0842 frames and decodes them wherever they sit in the payload.

pub mod hosts;
pub mod listen;
pub mod plan;
mod repeat;
pub mod send;
pub mod target;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::net::BindError;

pub use plan::{Plan, Route, SendConfig};
pub use repeat::{Job, Repeat, SendEvent, SendReport, send_all};
pub use target::ToSpec;

/// Everything that can go wrong in Wake-on-LAN.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing interfaces failed, or a named interface does not exist.
    #[error(transparent)]
    Iface(#[from] crate::iface::Error),
    /// An interface that was asked for is down.
    #[error("interface {name} is down; bring it up (`ip link set {name} up`)")]
    InterfaceDown {
        /// The interface name.
        name: String,
    },
    /// An interface that was asked for has no IPv4 broadcast address.
    #[error(
        "interface {name} has no IPv4 broadcast address (point-to-point, /31, /32 or no IPv4 \
         address); send to an address, to ff02::1 or as raw Ethernet frames on it instead"
    )]
    NoBroadcastOn {
        /// The interface name.
        name: String,
    },
    /// No interface at all has an IPv4 broadcast address.
    #[error(
        "no up, non-loopback interface has an IPv4 broadcast address; send to the target's \
         address instead (unicast, a subnet's broadcast, or a WAN address with port forwarding)"
    )]
    NoBroadcastInterface,
    /// Sending to `ff02::1` found no interface to send on.
    #[error(
        "no up, non-loopback, multicast-capable interface has an IPv6 address to send to ff02::1 from"
    )]
    NoIpv6Interface,
    /// A destination that cannot be parsed.
    #[error("invalid destination {input:?}: {reason}")]
    BadDestination {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host name that does not resolve.
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// Opening or setting up a socket failed.
    #[error("{what}: {source}")]
    Socket {
        /// What was being done, naming the interface or address.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sending failed.
    #[error("sending to {route} failed: {source}")]
    Send {
        /// The route, as shown to the user.
        route: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen for magic packets on UDP: {0}")]
    Bind(#[source] BindError),
    /// Receiving UDP datagrams failed for good.
    #[error("receiving UDP datagrams on {addr} failed: {source}")]
    Recv {
        /// The listening address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A raw socket needs privileges.
    #[error(
        "raw Ethernet on {iface} needs CAP_NET_RAW: run as root or \
         `sudo setcap cap_net_raw+ep $(command -v sockbox)` ({source})"
    )]
    RawPermission {
        /// The interface.
        iface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A hosts file cannot be read.
    #[error("cannot read hosts file {}: {source}", path.display())]
    HostsRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A line of a hosts file is wrong.
    #[error("{}:{line}: {reason}", path.display())]
    HostsLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A `hosts.toml` is not valid.
    #[error("{}: {reason}", path.display())]
    HostsToml {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A command-line target meant as a MAC address that is not one.
    #[error(transparent)]
    BadMac(#[from] sockbox_wire::mac::ParseError),
    /// A target that is neither a MAC address nor a known host name.
    #[error("{input:?} is not a MAC address ({mac_error}) and no host has that name ({searched})")]
    UnknownHost {
        /// The argument.
        input: String,
        /// Why it is not a MAC.
        mac_error: String,
        /// Where names were looked up.
        searched: String,
    },
}

impl Error {
    /// True when the error is in what the user gave (exit code 2) rather
    /// than a failure of the system (exit code 3).
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Iface(crate::iface::Error::NotFound { .. })
            | Self::InterfaceDown { .. }
            | Self::NoBroadcastOn { .. }
            | Self::NoBroadcastInterface
            | Self::NoIpv6Interface
            | Self::BadDestination { .. }
            | Self::Resolve { .. }
            | Self::HostsRead { .. }
            | Self::HostsLine { .. }
            | Self::HostsToml { .. }
            | Self::UnknownHost { .. }
            | Self::BadMac(_) => true,
            Self::Iface(_)
            | Self::Socket { .. }
            | Self::Send { .. }
            | Self::Bind(_)
            | Self::Recv { .. }
            | Self::RawPermission { .. } => false,
        }
    }
}
