//! Send one magic packet along one [`Route`].
//!
//! Each UDP socket is tied to its route's interface with `SO_BINDTODEVICE`
//! (falling back to binding the interface's source address where that is
//! not permitted), so a directed broadcast leaves by the right NIC even on a
//! machine whose default route points elsewhere, or that has none.

use std::io;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use sockbox_wire::magic::ETHERTYPE;
use socket2::{Domain, Protocol, Socket, Type};

use super::Error;
use super::plan::{IfaceRef, Route};
use crate::sys::packet::PacketSocket;

pub use crate::sys::device::Binding;
use crate::sys::device::{self, Device, is_permission};

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

/// A raw 0x0842 socket on `iface` (for sending and for listening); a
/// permission error says how to get `CAP_NET_RAW`.
pub(crate) fn open_raw(iface: &IfaceRef) -> Result<PacketSocket, Error> {
    PacketSocket::open(iface.index, ETHERTYPE).map_err(|source| {
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
    })
}

/// Send `packet` along `route`.
pub async fn send(route: &Route, packet: &[u8]) -> Result<Sent, Error> {
    let (result, binding) = match route {
        Route::Udp {
            dest,
            iface,
            source,
        } => {
            let (udp, binding) = udp_socket(*dest, iface.as_ref(), *source)?;
            (udp.send_to(packet, dest).await, binding)
        }
        Route::Raw { iface, dest } => {
            let raw = open_raw(iface)?;
            (raw.send_to(packet, dest.0).await, Binding::Device)
        }
    };
    let bytes = result.map_err(|source| Error::Send {
        route: route.to_string(),
        source,
    })?;
    Ok(Sent {
        route: route.clone(),
        bytes,
        binding,
    })
}

/// A UDP socket for `dest`, tied to `iface` (and bound to `source`) when
/// the route names them, and how it is tied.
fn udp_socket(
    dest: SocketAddr,
    iface: Option<&IfaceRef>,
    source: Option<IpAddr>,
) -> Result<(tokio::net::UdpSocket, Binding), Error> {
    let sock = Socket::new(Domain::for_address(dest), Type::DGRAM, Some(Protocol::UDP))
        .map_err(sock_err(format!("cannot open a UDP socket for {dest}")))?;
    if dest.is_ipv4() {
        sock.set_broadcast(true).map_err(sock_err(format!(
            "cannot set SO_BROADCAST on the socket for {dest}"
        )))?;
    }
    let device = iface.map(|i| Device {
        name: &i.name,
        index: i.index,
    });
    let tied = device::tie(&sock, dest, device, source, 0).map_err(|e| Error::Socket {
        what: e.what,
        source: e.source,
    })?;
    sock.set_nonblocking(true)
        .map_err(sock_err(format!("cannot set up the socket for {dest}")))?;
    let udp = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock))
        .map_err(sock_err(format!("cannot set up the socket for {dest}")))?;
    Ok((udp, tied.binding))
}

#[cfg(test)]
mod tests {
    use super::*;
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
