//! Multicast socket options that socket2 does not wrap: IPv6
//! source-specific membership (`MCAST_JOIN_SOURCE_GROUP`, RFC 3678).

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A `sockaddr_in6` for `addr` (port 0, no scope: the interface index travels
/// separately in the request).
fn sockaddr_in6(addr: Ipv6Addr) -> libc::sockaddr_in6 {
    let sa = SocketAddrV6::new(addr, 0, 0, 0);
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: sa.ip().octets(),
        },
        sin6_scope_id: 0,
    }
}

/// Join IPv6 `group` on interface `ifindex`, accepting datagrams from
/// `source` only (`MCAST_JOIN_SOURCE_GROUP` at level `IPPROTO_IPV6`).
#[allow(unsafe_code)]
pub fn join_source_group_v6(
    fd: BorrowedFd<'_>,
    group: Ipv6Addr,
    source: Ipv6Addr,
    ifindex: u32,
) -> io::Result<()> {
    // SAFETY: group_source_req is plain old data (an integer and two
    // sockaddr_storage byte arrays); all-zero bytes are a valid value.
    let mut req: libc::group_source_req = unsafe { std::mem::zeroed() };
    req.gsr_interface = ifindex;
    let group_sa = sockaddr_in6(group);
    let source_sa = sockaddr_in6(source);
    // SAFETY: sockaddr_storage is larger than and at least as aligned as
    // sockaddr_in6 (128 bytes, 8-aligned vs 28 bytes, 4-aligned), so writing
    // one at the start of each storage field stays in bounds and aligned.
    unsafe {
        std::ptr::addr_of_mut!(req.gsr_group)
            .cast::<libc::sockaddr_in6>()
            .write(group_sa);
        std::ptr::addr_of_mut!(req.gsr_source)
            .cast::<libc::sockaddr_in6>()
            .write(source_sa);
    }
    // SAFETY: the fd is valid for the borrow; the pointer and length describe
    // `req`, which lives across the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::MCAST_JOIN_SOURCE_GROUP,
            std::ptr::addr_of!(req).cast::<libc::c_void>(),
            std::mem::size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn source_join_on_loopback_is_accepted_or_cleanly_refused() {
        let Ok(sock) = std::net::UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 on this machine
        };
        let lo = nix::net::if_::if_nametoindex("lo").unwrap_or(1);
        let r = join_source_group_v6(
            sock.as_fd(),
            "ff3e::8000:1".parse().unwrap(),
            "::1".parse().unwrap(),
            lo,
        );
        // Loopback lacks IFF_MULTICAST on some systems (ENODEV/EADDRNOTAVAIL);
        // what must never happen is EINVAL from a malformed request.
        if let Err(e) = r {
            assert_ne!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            assert_ne!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
        }
    }
}
