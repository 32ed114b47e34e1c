//! Reverse DNS: the host name of an address (`getnameinfo` with
//! `NI_NAMEREQD`), for showing targets by name. Blocking: call it from a
//! blocking thread.

use std::net::{IpAddr, SocketAddr};

use nix::sys::socket::{SockaddrLike, SockaddrStorage};

/// The name `addr` resolves back to, if any.
pub fn name_of(addr: IpAddr) -> Option<String> {
    let sa = SockaddrStorage::from(SocketAddr::new(addr, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid socket address of `sa.len()` bytes; `host`
    // is a writable buffer of the length passed; no service buffer is
    // asked for (null with length 0). getnameinfo writes a NUL-terminated
    // string into `host` on success and touches nothing else.
    #[expect(unsafe_code)]
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    let bytes: Vec<u8> = host
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_name() {
        // /etc/hosts maps 127.0.0.1 to localhost on every system we run on.
        let n = name_of("127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])));
        assert!(n.is_some_and(|n| !n.is_empty()));
    }
}
