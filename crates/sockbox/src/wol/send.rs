//! Send one magic packet along one [`Route`].
//!
//! Each UDP socket is tied to its route's interface with `SO_BINDTODEVICE`
//! (falling back to binding the interface's source address where that is
//! not permitted), so a directed broadcast leaves by the right NIC even on a
//! machine whose default route points elsewhere, or that has none.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use serde::Serialize;
use sockbox_wire::magic::ETHERTYPE;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Error;
use super::plan::Route;

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

/// A packet that left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// Where it went.
    pub route: Route,
    /// Bytes handed to the kernel.
    pub bytes: usize,
    /// How the socket was tied to the interface.
    pub binding: Binding,
}

fn sock_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Socket { what, source }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// Send `packet` along `route`.
pub async fn send(route: &Route, packet: &[u8]) -> Result<Sent, Error> {
    match route {
        Route::Udp {
            dest,
            iface,
            source,
        } => {
            let iface_name = iface.as_ref().map(|i| i.name.as_str());
            let sock = Socket::new(Domain::for_address(*dest), Type::DGRAM, Some(Protocol::UDP))
                .map_err(sock_err(format!("cannot open a UDP socket for {dest}")))?;
            if dest.is_ipv4() {
                sock.set_broadcast(true).map_err(sock_err(format!(
                    "cannot set SO_BROADCAST on the socket for {dest}"
                )))?;
            }
            let mut binding = Binding::Routed;
            if let Some(i) = iface {
                match sock.bind_device(Some(i.name.as_bytes())) {
                    Ok(()) => binding = Binding::Device,
                    Err(e) if is_permission(&e) => {}
                    Err(source) => {
                        return Err(Error::Socket {
                            what: format!("cannot bind the socket to interface {}", i.name),
                            source,
                        });
                    }
                }
                if let SocketAddr::V6(d) = dest
                    && d.ip().is_multicast()
                {
                    {
                        sock.set_multicast_if_v6(i.index).map_err(sock_err(format!(
                            "cannot select interface {} for IPv6 multicast",
                            i.name
                        )))?;
                    }
                }
            }
            if let Some(src) = source.filter(|s| s.is_ipv4() == dest.is_ipv4()) {
                let local = match src {
                    IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(
                        a,
                        0,
                        0,
                        iface.as_ref().map_or(0, |i| i.index),
                    )),
                    IpAddr::V4(_) => SocketAddr::new(src, 0),
                };
                match sock.bind(&SockAddr::from(local)) {
                    Ok(()) => {
                        if binding == Binding::Routed {
                            binding = Binding::SourceAddress;
                        }
                    }
                    // Device binding already picks the interface; an address
                    // that cannot be bound (IPv6 still tentative) is no loss.
                    Err(_) if binding == Binding::Device => {}
                    Err(source) => {
                        return Err(Error::Socket {
                            what: format!(
                                "cannot bind source address {src} on {}",
                                iface_name.unwrap_or("?")
                            ),
                            source,
                        });
                    }
                }
            }
            sock.set_nonblocking(true)
                .map_err(sock_err(format!("cannot set up the socket for {dest}")))?;
            let udp = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock))
                .map_err(sock_err(format!("cannot set up the socket for {dest}")))?;
            let bytes = udp
                .send_to(packet, dest)
                .await
                .map_err(|source| Error::Send {
                    route: route.to_string(),
                    source,
                })?;
            Ok(Sent {
                route: route.clone(),
                bytes,
                binding,
            })
        }
        Route::Raw { iface, dest } => {
            let sock = crate::sys::packet::PacketSocket::open(iface.index, ETHERTYPE).map_err(
                |source| {
                    if is_permission(&source) {
                        Error::RawPermission {
                            iface: iface.name.clone(),
                            source,
                        }
                    } else {
                        Error::Socket {
                            what: format!("cannot open a raw 0x0842 socket on {}", iface.name),
                            source,
                        }
                    }
                },
            )?;
            let bytes = sock
                .send_to(packet, dest.0)
                .await
                .map_err(|source| Error::Send {
                    route: route.to_string(),
                    source,
                })?;
            Ok(Sent {
                route: route.clone(),
                bytes,
                binding: Binding::Device,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wol::plan::IfaceRef;
    use sockbox_wire::mac::MacAddr;
    use sockbox_wire::magic::{Repr, find};

    #[tokio::test]
    async fn unicast_to_loopback_arrives_intact() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dest = rx.local_addr().unwrap();
        let pkt = Repr::new(MacAddr([2, 0, 0, 0, 0, 9])).to_bytes();
        let route = Route::Udp {
            dest,
            iface: None,
            source: None,
        };
        let sent = send(&route, &pkt).await.unwrap();
        assert_eq!((sent.bytes, sent.binding), (102, Binding::Routed));
        let mut buf = [0u8; 200];
        let (n, _) =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(
            find(&buf[..n]).unwrap().repr.mac,
            MacAddr([2, 0, 0, 0, 0, 9])
        );
    }

    #[tokio::test]
    async fn bound_to_loopback_device_or_its_address() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let lo = crate::iface::list()
            .unwrap()
            .into_iter()
            .find(|i| i.flags.loopback)
            .unwrap();
        let route = Route::Udp {
            dest: rx.local_addr().unwrap(),
            iface: Some(IfaceRef {
                name: lo.name.clone(),
                index: lo.index,
            }),
            source: Some("127.0.0.1".parse().unwrap()),
        };
        let sent = send(&route, b"x").await.unwrap();
        assert_ne!(sent.binding, Binding::Routed);
    }

    #[tokio::test]
    async fn unknown_device_names_it() {
        let route = Route::Udp {
            dest: "127.0.0.1:9".parse().unwrap(),
            iface: Some(IfaceRef {
                name: "sbxnope0".into(),
                index: 999,
            }),
            source: None,
        };
        if let Err(e) = send(&route, b"x").await {
            assert!(e.to_string().contains("sbxnope0"), "{e}");
        }
    }
}
