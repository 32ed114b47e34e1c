//! Tying a UDP socket to one interface: `SO_BINDTODEVICE`, plus binding the
//! interface's source address (which alone still steers the packet where
//! `SO_BINDTODEVICE` is not permitted). Shared by `wake --iface` and
//! `udp send --iface`.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use serde::Serialize;
use socket2::{SockAddr, Socket};

/// How a socket was tied to its interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// `SO_BINDTODEVICE` (or a raw socket bound to the interface).
    Device,
    /// Bound to the interface's address only (no permission for
    /// `SO_BINDTODEVICE`); the kernel picks the interface by route.
    SourceAddress,
    /// Not tied to an interface: the routing table decides.
    Routed,
}

/// The interface to tie to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device<'a> {
    /// Kernel name.
    pub name: &'a str,
    /// Kernel index (the scope of a link-local source, the IPv6 multicast
    /// interface).
    pub index: u32,
}

/// What [`tie`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tied {
    /// How the socket is tied.
    pub binding: Binding,
    /// True when the source address was bound (the socket has a local
    /// address now; otherwise the caller may still bind one).
    pub bound: bool,
}

/// A step of [`tie`] that failed: what it was doing, and the system error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct TieError {
    /// What was being done, naming the interface or address.
    pub what: String,
    /// The system error.
    #[source]
    pub source: io::Error,
}

/// True for the errors that mean "not allowed" (no `CAP_NET_RAW`).
pub fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// Tie `sock` (for destination `dest`) to `device` with `SO_BINDTODEVICE`
/// (a permission error falls back to the source address alone), select it
/// for IPv6 multicast, and bind `source` (port `port`) when it is of
/// `dest`'s family. A source that cannot be bound is no loss once the device
/// binding holds (an IPv6 address still tentative); without it, it is an
/// error.
pub fn tie(
    sock: &Socket,
    dest: SocketAddr,
    device: Option<Device<'_>>,
    source: Option<IpAddr>,
    port: u16,
) -> Result<Tied, TieError> {
    let mut binding = Binding::Routed;
    if let Some(d) = device {
        match sock.bind_device(Some(d.name.as_bytes())) {
            Ok(()) => binding = Binding::Device,
            Err(e) if is_permission(&e) => {}
            Err(source) => {
                return Err(TieError {
                    what: format!("cannot bind the socket to interface {}", d.name),
                    source,
                });
            }
        }
        if let SocketAddr::V6(v6) = dest
            && v6.ip().is_multicast()
        {
            sock.set_multicast_if_v6(d.index)
                .map_err(|source| TieError {
                    what: format!("cannot select interface {} for IPv6 multicast", d.name),
                    source,
                })?;
        }
    }
    let mut bound = false;
    if let Some(src) = source.filter(|s| s.is_ipv4() == dest.is_ipv4()) {
        let local = match src {
            IpAddr::V6(a) => {
                SocketAddr::V6(SocketAddrV6::new(a, port, 0, device.map_or(0, |d| d.index)))
            }
            IpAddr::V4(_) => SocketAddr::new(src, port),
        };
        match sock.bind(&SockAddr::from(local)) {
            Ok(()) => {
                bound = true;
                if binding == Binding::Routed {
                    binding = Binding::SourceAddress;
                }
            }
            Err(_) if binding == Binding::Device => {}
            Err(source) => {
                return Err(TieError {
                    what: format!(
                        "cannot bind source address {src} on {}",
                        device.map_or("?", |d| d.name)
                    ),
                    source,
                });
            }
        }
    }
    Ok(Tied { binding, bound })
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Type};

    fn udp4() -> Socket {
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap()
    }

    #[test]
    fn loopback_by_device_or_source_and_unknown_names_it() {
        let lo = crate::iface::list()
            .unwrap()
            .into_iter()
            .find(|i| i.flags.loopback)
            .unwrap();
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let dev = Device {
            name: &lo.name,
            index: lo.index,
        };
        let t = tie(
            &udp4(),
            dest,
            Some(dev),
            Some("127.0.0.1".parse().unwrap()),
            0,
        )
        .unwrap();
        assert_ne!(t.binding, Binding::Routed);
        let nope = Device {
            name: "sbxnope0",
            index: 999,
        };
        if let Err(e) = tie(&udp4(), dest, Some(nope), None, 0) {
            assert!(e.to_string().contains("sbxnope0"), "{e}");
        }
        let t = tie(&udp4(), dest, None, None, 0).unwrap();
        assert_eq!(
            t,
            Tied {
                binding: Binding::Routed,
                bound: false
            }
        );
    }
}
