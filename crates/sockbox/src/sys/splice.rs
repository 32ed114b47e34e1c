//! Zero-copy moves between pipes, sockets and files with Linux `splice(2)`,
//! plus the small fd helpers the relay's fast path needs (kind of an fd,
//! pipe sizing, readiness polling with a stop fd).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};

/// What an fd is, as far as choosing a copy strategy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A pipe or FIFO: `splice` works directly.
    Pipe,
    /// A socket.
    Socket,
    /// A regular file.
    File,
    /// A terminal: always plain read/write.
    Tty,
    /// A character device that is not a terminal (`/dev/null`, `/dev/zero`).
    CharDevice,
    /// Anything else (block devices, directories, unknown).
    Other,
}

impl FdKind {
    /// True when `splice` may work with this fd on one side and a pipe on the other.
    pub fn splice_capable(self) -> bool {
        matches!(
            self,
            Self::Pipe | Self::Socket | Self::File | Self::CharDevice
        )
    }
}

/// Classify `fd` with `fstat` (and `isatty` for character devices).
pub fn fd_kind(fd: BorrowedFd<'_>) -> FdKind {
    let Ok(st) = fstat(fd) else {
        return FdKind::Other;
    };
    let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if fmt == SFlag::S_IFIFO {
        FdKind::Pipe
    } else if fmt == SFlag::S_IFSOCK {
        FdKind::Socket
    } else if fmt == SFlag::S_IFREG {
        FdKind::File
    } else if fmt == SFlag::S_IFCHR {
        if nix::unistd::isatty(fd).unwrap_or(false) {
            FdKind::Tty
        } else {
            FdKind::CharDevice
        }
    } else {
        FdKind::Other
    }
}

/// Grow the pipe behind `fd` towards `want` bytes (halving on refusal, never
/// below 64 KiB); returns the size it ended up with, if known.
pub fn grow_pipe(fd: BorrowedFd<'_>, want: usize) -> Option<usize> {
    let mut size = want;
    while size >= 64 * 1024 {
        let Ok(arg) = i32::try_from(size) else {
            size /= 2;
            continue;
        };
        if let Ok(got) = fcntl(fd, FcntlArg::F_SETPIPE_SZ(arg)) {
            return usize::try_from(got).ok();
        }
        size /= 2;
    }
    fcntl(fd, FcntlArg::F_GETPIPE_SZ)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// A new close-on-exec pipe `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Move up to `len` bytes from `from` to `to`; one of them must be a pipe.
/// The pipe side never blocks (`SPLICE_F_NONBLOCK`); a socket side blocks
/// only if the socket itself is in blocking mode. `Ok(0)` is end of input.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        match nix::fcntl::splice(from, None, to, None, len, flags) {
            Err(Errno::EINTR) => {}
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Put `fd` in non-blocking mode (or back).
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let bits = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let mut flags = OFlag::from_bits_truncate(bits);
    flags.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// What [`wait_ready`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// `fd` is ready (or in error/hang-up, which the next call will report).
    Fd,
    /// The stop fd became readable: give up.
    Stop,
    /// The timeout passed.
    Timeout,
}

/// Wait until `fd` is readable (`write == false`) or writable, or `stop` is
/// readable, or `timeout` passes (`None`: no limit).
pub fn wait_ready(
    fd: BorrowedFd<'_>,
    write: bool,
    stop: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let want = if write {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    };
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
    };
    loop {
        let mut fds = [PollFd::new(fd, want), PollFd::new(stop, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
            Ok(0) => return Ok(Ready::Timeout),
            Ok(_) => {
                if fds[1].any().unwrap_or(false) {
                    return Ok(Ready::Stop);
                }
                return Ok(Ready::Fd);
            }
        }
    }
}

/// True when `fd` is in non-blocking mode.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
    fcntl(fd, FcntlArg::F_GETFL)
        .is_ok_and(|bits| OFlag::from_bits_truncate(bits).contains(OFlag::O_NONBLOCK))
}

/// True when `fd` is writable right now.
pub fn writable_now(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// A duplicate of `fd` that owns its own descriptor (same open file).
pub fn dup(fd: impl AsFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn kinds_are_recognised() {
        let (r, _w) = pipe().unwrap();
        assert_eq!(fd_kind(r.as_fd()), FdKind::Pipe);
        let f = tempfile::tempfile().unwrap();
        assert_eq!(fd_kind(f.as_fd()), FdKind::File);
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(fd_kind(null.as_fd()), FdKind::CharDevice);
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(fd_kind(s.as_fd()), FdKind::Socket);
    }

    #[test]
    fn splice_moves_bytes_between_pipes_via_a_socket_pair() {
        let (mut left, right) = std::os::unix::net::UnixStream::pair().unwrap();
        let (rd, wr) = pipe().unwrap();
        left.write_all(b"hello splice").unwrap();
        let moved = splice(right.as_fd(), wr.as_fd(), 1 << 16).unwrap();
        assert_eq!(moved, 12);
        drop(wr);
        let mut out = String::new();
        std::fs::File::from(rd).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello splice");
    }

    #[test]
    fn pipes_grow() {
        let (r, _w) = pipe().unwrap();
        let got = grow_pipe(r.as_fd(), 1 << 20).unwrap();
        assert!(got >= 64 * 1024);
    }

    #[test]
    fn wait_ready_sees_stop_and_timeout() {
        let (r, _w) = pipe().unwrap();
        let (sr, mut sw) = {
            let (a, b) = pipe().unwrap();
            (a, std::fs::File::from(b))
        };
        let t = Some(Duration::from_millis(10));
        assert_eq!(
            wait_ready(r.as_fd(), false, sr.as_fd(), t).unwrap(),
            Ready::Timeout
        );
        sw.write_all(b"x").unwrap();
        assert_eq!(
            wait_ready(r.as_fd(), false, sr.as_fd(), t).unwrap(),
            Ready::Stop
        );
    }
}
