//! Which local address a datagram was sent to (`IP_PKTINFO`,
//! `IPV6_RECVPKTINFO`), and answering from that address, so a server bound
//! to the wildcard on a host with several addresses replies from the one
//! the client wrote to (a client with a connected socket drops anything
//! else).
//!
//! A datagram that arrived on a broadcast or multicast address is answered
//! from the receiving interface (its index in the control message; for IPv4
//! the kernel's `ipi_spec_dst`, the interface address it would reply from).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::Socket;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Where a datagram arrived, from its packet-info control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// An IPv4 datagram (also on a dual-stack IPv6 socket).
    V4 {
        /// The destination address in its header (may be a broadcast or a group).
        dst: Ipv4Addr,
        /// The local address the kernel would answer from (`ipi_spec_dst`).
        spec_dst: Ipv4Addr,
        /// The receiving interface.
        ifindex: u32,
    },
    /// An IPv6 datagram.
    V6 {
        /// The destination address in its header.
        dst: Ipv6Addr,
        /// The receiving interface.
        ifindex: u32,
    },
}

impl Arrival {
    /// The address the datagram was sent to.
    pub fn dst(&self) -> IpAddr {
        match *self {
            Self::V4 { dst, .. } => IpAddr::V4(dst),
            Self::V6 { dst, .. } => IpAddr::V6(dst),
        }
    }

    /// The source to answer from and the interface to force (0: by route).
    /// IPv4: `spec_dst`, and the interface when the datagram was a broadcast
    /// or multicast. IPv6: the destination (unspecified for a multicast, so
    /// the kernel picks the interface's address), and the interface for
    /// multicast and link-local. `None` when nothing better than the
    /// kernel's own choice is known (an IPv4 datagram seen only through
    /// `IPV6_PKTINFO`, which cannot tell a directed broadcast from a host).
    fn reply_from(&self) -> Option<(IpAddr, u32)> {
        match *self {
            Self::V4 {
                dst,
                spec_dst,
                ifindex,
            } => {
                let forced = dst.is_multicast() || dst != spec_dst;
                Some((IpAddr::V4(spec_dst), if forced { ifindex } else { 0 }))
            }
            Self::V6 { dst, ifindex } => {
                // An IPv4 datagram seen only through IPV6_PKTINFO: it may
                // have been a directed broadcast, which is no source.
                if dst.to_ipv4_mapped().is_some() {
                    return None;
                }
                if dst.is_multicast() {
                    Some((IpAddr::V6(Ipv6Addr::UNSPECIFIED), ifindex))
                } else if dst.is_unicast_link_local() {
                    Some((IpAddr::V6(dst), ifindex))
                } else {
                    Some((IpAddr::V6(dst), 0))
                }
            }
        }
    }
}

/// Ask for packet-info control messages on `sock`: `IP_PKTINFO` on IPv4;
/// `IPV6_RECVPKTINFO` on IPv6 and, for the IPv4 datagrams a dual-stack
/// socket gets, `IP_PKTINFO` too (best effort: IPv6-only sockets may refuse).
pub fn enable(sock: &Socket, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        setsockopt(sock, sockopt::Ipv6RecvPacketInfo, &true)?;
        let _ = setsockopt(sock, sockopt::Ipv4PacketInfo, &true);
    } else {
        setsockopt(sock, sockopt::Ipv4PacketInfo, &true)?;
    }
    Ok(())
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Receive one datagram into `buf` (cut to its size) with its sender and,
/// when the socket has [`enable`]d it, where it arrived.
pub async fn recv_from(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Arrival>)> {
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::READABLE, || {
        let mut cmsg = nix::cmsg_space!(libc::in_pktinfo, libc::in6_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf[..])];
        let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .map_err(io::Error::from)?;
        let from = msg
            .address
            .as_ref()
            .and_then(socket_addr)
            .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
        let (mut v4, mut v6) = (None, None);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4PacketInfo(i) => {
                        v4 = Some(Arrival::V4 {
                            dst: Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr)),
                            spec_dst: Ipv4Addr::from(u32::from_be(i.ipi_spec_dst.s_addr)),
                            ifindex: u32::try_from(i.ipi_ifindex).unwrap_or(0),
                        });
                    }
                    ControlMessageOwned::Ipv6PacketInfo(i) => {
                        v6 = Some(Arrival::V6 {
                            dst: Ipv6Addr::from(i.ipi6_addr.s6_addr),
                            ifindex: i.ipi6_ifindex,
                        });
                    }
                    _ => {}
                }
            }
        }
        // An IPv4 datagram on a dual-stack socket carries both: the IPv4
        // one knows the address to answer a broadcast from.
        Ok((msg.bytes, from, v4.or(v6)))
    })
    .await
}

/// Send `payload` to `to`, from the address `via` says the datagram being
/// answered arrived on (see the module documentation); without `via` (or
/// with nothing better known) the kernel picks the source as usual.
pub async fn send_to(
    sock: &UdpSocket,
    payload: &[u8],
    to: SocketAddr,
    via: Option<&Arrival>,
) -> io::Result<usize> {
    let Some((src, ifindex)) = via.and_then(Arrival::reply_from) else {
        return sock.send_to(payload, to).await;
    };
    let fd = sock.as_raw_fd();
    let dest = SockaddrStorage::from(to);
    let info4 = match src {
        IpAddr::V4(a) => Some(libc::in_pktinfo {
            ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(a).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        }),
        IpAddr::V6(_) => None,
    };
    let info6 = match src {
        IpAddr::V6(a) => Some(libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: a.octets(),
            },
            ipi6_ifindex: ifindex,
        }),
        IpAddr::V4(_) => None,
    };
    sock.async_io(Interest::WRITABLE, || {
        let iov = [IoSlice::new(payload)];
        let cmsg = match (&info4, &info6) {
            (Some(i), _) => ControlMessage::Ipv4PacketInfo(i),
            (None, Some(i)) => ControlMessage::Ipv6PacketInfo(i),
            (None, None) => return Err(io::Error::other("no packet info to send")),
        };
        sendmsg(fd, &iov, &[cmsg], MsgFlags::empty(), Some(&dest)).map_err(io::Error::from)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_from_the_address_written_to_or_the_interface() {
        let uni = Arrival::V4 {
            dst: Ipv4Addr::new(10, 0, 0, 2),
            spec_dst: Ipv4Addr::new(10, 0, 0, 2),
            ifindex: 3,
        };
        assert_eq!(uni.reply_from(), Some(("10.0.0.2".parse().unwrap(), 0)));
        let bcast = Arrival::V4 {
            dst: Ipv4Addr::new(10, 0, 0, 255),
            spec_dst: Ipv4Addr::new(10, 0, 0, 2),
            ifindex: 3,
        };
        assert_eq!(bcast.reply_from(), Some(("10.0.0.2".parse().unwrap(), 3)));
        let group = Arrival::V6 {
            dst: "ff02::1:3".parse().unwrap(),
            ifindex: 4,
        };
        assert_eq!(group.reply_from(), Some(("::".parse().unwrap(), 4)));
        let global = Arrival::V6 {
            dst: "2001:db8::2".parse().unwrap(),
            ifindex: 4,
        };
        assert_eq!(
            global.reply_from(),
            Some(("2001:db8::2".parse().unwrap(), 0))
        );
        let mapped = Arrival::V6 {
            dst: "::ffff:10.0.0.255".parse().unwrap(),
            ifindex: 4,
        };
        assert_eq!(mapped.reply_from(), None);
    }

    #[tokio::test]
    async fn the_arrival_address_is_reported_and_used() {
        let std = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let sock = Socket::from(std);
        enable(&sock, false).unwrap();
        let srv = UdpSocket::from_std(sock.into()).unwrap();
        let port = srv.local_addr().unwrap().port();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Written to 127.0.0.2: the answer must come from there, not from
        // 127.0.0.1 the kernel would pick for a wildcard socket.
        let to: SocketAddr = SocketAddr::new("127.0.0.2".parse().unwrap(), port);
        c.send_to(b"hi", to).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from, arr) = recv_from(&srv, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
        let arr = arr.unwrap();
        assert_eq!(arr.dst(), to.ip());
        send_to(&srv, b"ho", from, Some(&arr)).await.unwrap();
        let (n, src) = c.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], src), (&b"ho"[..], to));
    }
}
