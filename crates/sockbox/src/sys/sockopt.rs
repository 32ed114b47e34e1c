//! One generic `setsockopt` / `getsockopt` pair for the socket options that
//! neither socket2 nor nix wraps (ICMP type filters, path-MTU discovery,
//! source-specific multicast joins). Everything else goes through socket2.
//!
//! Only the plain C values listed here implement [`OptionValue`]: each is
//! fully initialised (no padding bytes) and valid for any bit pattern, so
//! the kernel may read or write it as raw bytes.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd};

mod sealed {
    pub trait Sealed {}
}

/// A value the kernel reads or writes as raw bytes. Sealed: implemented
/// only for the types of this module and C integers.
pub trait OptionValue: sealed::Sealed + Copy {
    /// The all-zero value, for `getsockopt` to fill in.
    fn zeroed() -> Self;
}

macro_rules! plain {
    ($($t:ty => $zero:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl OptionValue for $t {
            fn zeroed() -> Self {
                $zero
            }
        }
    )*};
}

plain! {
    libc::c_int => 0,
    u32 => 0,
    IcmpV6Filter => IcmpV6Filter([0; 8]),
    GroupSourceReq => GroupSourceReq::zeroed_req(),
}

/// Linux `struct icmp6_filter`: 256 bits, a set bit blocks that ICMPv6 type.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpV6Filter(pub [u32; 8]);

/// `struct sockaddr_storage` as bytes: 128 bytes, 8-byte aligned.
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage(pub [u8; 128]);

impl Storage {
    /// A `sockaddr_in6` for `addr` (port 0, no flow label, no scope: the
    /// interface index travels separately) at the start of the storage.
    pub fn in6(addr: Ipv6Addr) -> Self {
        let mut b = [0u8; 128];
        let family = libc::AF_INET6 as libc::sa_family_t;
        b[..2].copy_from_slice(&family.to_ne_bytes());
        // sin6_port (2 bytes) and sin6_flowinfo (4 bytes) stay zero.
        b[8..24].copy_from_slice(&addr.octets());
        // sin6_scope_id stays zero.
        Self(b)
    }
}

/// Linux `struct group_source_req` (RFC 3678), laid out by hand with the
/// padding after the interface index spelled out, so every byte is set.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSourceReq {
    /// Interface index.
    pub interface: u32,
    /// Padding up to the 8-byte alignment of the addresses.
    pub pad: u32,
    /// The group.
    pub group: Storage,
    /// The only source accepted.
    pub source: Storage,
}

impl GroupSourceReq {
    const fn zeroed_req() -> Self {
        Self {
            interface: 0,
            pad: 0,
            group: Storage([0; 128]),
            source: Storage([0; 128]),
        }
    }
}

// The hand-made layouts match the C ones.
const _: () = assert!(size_of::<GroupSourceReq>() == size_of::<libc::group_source_req>());
const _: () = assert!(align_of::<GroupSourceReq>() == align_of::<libc::group_source_req>());
const _: () = assert!(size_of::<Storage>() == size_of::<libc::sockaddr_storage>());
const _: () = assert!(size_of::<IcmpV6Filter>() == 32);

fn socklen<T>() -> libc::socklen_t {
    size_of::<T>() as libc::socklen_t
}

/// Set option `name` at `level` on `fd` to `value`.
pub fn set<T: OptionValue>(
    fd: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let fd = fd.as_fd();
    // SAFETY: the descriptor is borrowed for the call; the pointer and
    // length describe `*value`, which lives across the call and is plain
    // data with every byte initialised (OptionValue is sealed to such
    // types); the kernel only reads it.
    #[expect(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            socklen::<T>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Read option `name` at `level` of `fd`. Fails when the kernel returns
/// fewer bytes than `T` holds.
pub fn get<T: OptionValue>(fd: &impl AsFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let fd = fd.as_fd();
    let mut value = T::zeroed();
    let mut len = socklen::<T>();
    // SAFETY: the descriptor is borrowed for the call; the pointer and
    // length describe `value`, which is plain data valid for any bit
    // pattern (OptionValue is sealed to such types), so whatever the kernel
    // writes into it, up to `len` bytes, leaves a valid value.
    #[expect(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_mut(&mut value).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len != socklen::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "socket option {level}/{name}: the kernel returned {len} bytes, expected {}",
                socklen::<T>()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_int_option_reads_back_what_was_set() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for v in [libc::IP_PMTUDISC_DO, libc::IP_PMTUDISC_DONT] {
            set(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &v).unwrap();
            let got: libc::c_int = get(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER).unwrap();
            assert_eq!(got, v);
        }
        // A value the kernel refuses is an error, not a silent no-op.
        let e = set(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &99).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_short_read_is_an_error() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // SO_TYPE is an int: reading it as a 32-byte filter comes back short.
        let e = get::<IcmpV6Filter>(&s, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_sockaddr_in6_layout_matches_libc() {
        let a: Ipv6Addr = "ff3e::8000:1".parse().unwrap();
        let s = Storage::in6(a);
        let fam = libc::sa_family_t::from_ne_bytes([s.0[0], s.0[1]]);
        assert_eq!(i32::from(fam), libc::AF_INET6);
        assert_eq!(std::mem::offset_of!(libc::sockaddr_in6, sin6_addr), 8);
        assert_eq!(&s.0[8..24], &a.octets());
        assert_eq!(
            std::mem::offset_of!(libc::group_source_req, gsr_group),
            std::mem::offset_of!(GroupSourceReq, group)
        );
        assert_eq!(
            std::mem::offset_of!(libc::group_source_req, gsr_source),
            std::mem::offset_of!(GroupSourceReq, source)
        );
    }
}
