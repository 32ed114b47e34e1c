//! Raw Ethernet frames of one ethertype on one interface, through Linux
//! `AF_PACKET` datagram sockets (the kernel writes and strips the Ethernet
//! header; we see only the payload and the peer's MAC).
//!
//! Opening one needs `CAP_NET_RAW` (root, or `setcap cap_net_raw+ep`).

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use nix::sys::socket::{LinkAddr, recvfrom};
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// `PACKET_OUTGOING`: a frame this host sent, looped back to packet sockets.
const PACKET_OUTGOING: u8 = 4;

/// Where a received frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSource {
    /// The sender's hardware address.
    pub mac: [u8; 6],
    /// The interface it arrived on.
    pub ifindex: u32,
    /// True when this host sent the frame itself.
    pub outgoing: bool,
}

/// An `AF_PACKET`/`SOCK_DGRAM` socket bound to one interface and ethertype.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    ethertype: u16,
}

/// A `sockaddr_ll` for `ifindex`, `ethertype` and (for sending) `dest`.
fn link_addr(ifindex: u32, ethertype: u16, dest: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    #[expect(unsafe_code)]
    // SAFETY: `sockaddr_ll` is one of this platform's sockaddr types and is
    // smaller than `sockaddr_storage`; the storage is zeroed, a valid value.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = ethertype.to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dest);
    #[expect(unsafe_code)]
    // SAFETY: the family is AF_PACKET and the storage holds an initialised
    // `sockaddr_ll` of exactly the length given.
    unsafe {
        SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    }
}

impl PacketSocket {
    /// Open a socket for frames of `ethertype` on interface `ifindex`.
    /// Must be called inside a tokio runtime.
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<Self> {
        let proto = Protocol::from(i32::from(ethertype.to_be()));
        let sock = Socket::new(Domain::PACKET, Type::DGRAM, Some(proto))?;
        sock.bind(&link_addr(ifindex, ethertype, [0; 6]))?;
        sock.set_nonblocking(true)?;
        #[expect(unsafe_code)]
        // SAFETY: `sock` owns its descriptor, which stays open and the same
        // until the `AsyncFd` drops it; we never swap the inner socket.
        let fd = unsafe { AsyncFd::register(sock) }.map_err(io::Error::from)?;
        Ok(Self {
            fd,
            ifindex,
            ethertype,
        })
    }

    /// The interface index this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Send `payload` in one frame to hardware address `dest`.
    pub async fn send_to(&self, payload: &[u8], dest: [u8; 6]) -> io::Result<usize> {
        let addr = link_addr(self.ifindex, self.ethertype, dest);
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send_to(payload, &addr))
            .await
    }

    /// Receive one frame's payload into `buf`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, FrameSource)> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                let (n, addr) =
                    recvfrom::<LinkAddr>(s.as_raw_fd(), buf).map_err(io::Error::from)?;
                let src = addr.map_or(
                    FrameSource {
                        mac: [0; 6],
                        ifindex: self.ifindex,
                        outgoing: false,
                    },
                    |a| FrameSource {
                        mac: a.addr().unwrap_or([0; 6]),
                        ifindex: a.ifindex() as u32,
                        outgoing: a.pkttype() == PACKET_OUTGOING,
                    },
                );
                Ok((n, src))
            })
            .await
    }
}
