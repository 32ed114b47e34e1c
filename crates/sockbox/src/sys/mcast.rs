//! Multicast socket options that socket2 does not wrap: IPv6
//! source-specific membership (`MCAST_JOIN_SOURCE_GROUP`, RFC 3678).

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::BorrowedFd;

use super::sockopt::{self, GroupSourceReq, Storage};

/// Join IPv6 `group` on interface `ifindex`, accepting datagrams from
/// `source` only (`MCAST_JOIN_SOURCE_GROUP` at level `IPPROTO_IPV6`).
pub fn join_source_group_v6(
    fd: BorrowedFd<'_>,
    group: Ipv6Addr,
    source: Ipv6Addr,
    ifindex: u32,
) -> io::Result<()> {
    let req = GroupSourceReq {
        interface: ifindex,
        pad: 0,
        group: Storage::in6(group),
        source: Storage::in6(source),
    };
    sockopt::set(&fd, libc::IPPROTO_IPV6, libc::MCAST_JOIN_SOURCE_GROUP, &req)
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
