//! TCP socket state the standard library does not expose.

use std::io;
use std::os::fd::RawFd;

/// Bytes written to TCP socket `fd` that the peer has not acknowledged yet,
/// a FIN included (`SIOCOUTQ`): zero once the peer's kernel holds
/// everything this side sent. Closing the socket after that cannot destroy
/// what the peer has not read yet, even if a reset follows.
#[cfg(target_os = "linux")]
#[expect(unsafe_code)]
pub fn unacked(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ on a socket) writes one c_int through the
    // pointer, which points to a live, aligned c_int on this stack frame.
    // A bad descriptor makes the call fail with EBADF; nothing else is read
    // or written.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &raw mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Not available here: always an error.
#[cfg(not(target_os = "linux"))]
pub fn unacked(_fd: RawFd) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn counts_until_the_peer_has_it_all() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        // The acknowledgement may be delayed a little.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while unacked(c.as_raw_fd()).unwrap() != 0 {
            assert!(std::time::Instant::now() < deadline, "never acknowledged");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(unacked(-1).is_err());
    }
}
