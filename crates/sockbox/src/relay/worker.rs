//! One direction of the blocking pump: the worker thread's loops for
//! `splice` straight through a pipe, `splice` through an internal pipe, and
//! plain `read`/`write`, with the choice between them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use super::RelayError;
use super::dump::DumpDir;
use super::life::Activity;
use super::pump::Stopper;
use crate::daemon::ServerStats;
use crate::sys::splice::{self, FdKind, Ready, fd_kind, wait_ready, writable_now};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Which direction a worker moves.
pub(crate) enum Side {
    Tx,
    Rx,
}

#[derive(Debug)]
pub(crate) enum End {
    Eof,
    Stopped,
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the destination failed.
    Write(io::Error),
}

pub(crate) enum Method {
    Copy,
    Direct,
    Via { r: OwnedFd, w: OwnedFd },
}

pub(crate) struct Worker {
    pub(crate) side: Side,
    pub(crate) src: Arc<OwnedFd>,
    pub(crate) dst: Arc<OwnedFd>,
    pub(crate) stop: Stopper,
    pub(crate) method: Method,
    pub(crate) chunk: usize,
    pub(crate) activity: Arc<Activity>,
    pub(crate) bytes: Arc<AtomicU64>,
    pub(crate) dump: Option<DumpDir>,
    pub(crate) stats: Option<ServerStats>,
    /// Read and drop (receive side of `--send-only`).
    pub(crate) discard: bool,
}

impl Worker {
    fn account(&mut self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.activity.touch();
        if let Some(s) = &self.stats {
            match self.side {
                Side::Rx => s.add_in(n as u64),
                Side::Tx => s.add_out(n as u64),
            }
        }
    }

    /// Errors that come from the socket for this direction.
    fn socket_side(&self, e: &io::Error) -> bool {
        let sockety = matches!(
            e.raw_os_error(),
            Some(
                libc::ECONNRESET
                    | libc::ECONNREFUSED
                    | libc::ETIMEDOUT
                    | libc::ENOTCONN
                    | libc::EHOSTUNREACH
                    | libc::ENETUNREACH
                    | libc::ECONNABORTED
            )
        );
        match self.side {
            Side::Tx => sockety || e.raw_os_error() == Some(libc::EPIPE),
            Side::Rx => sockety,
        }
    }

    /// A splice error mapped to which end failed.
    fn splice_err(&self, e: io::Error) -> End {
        let socket = self.socket_side(&e);
        match (self.side, socket) {
            (Side::Tx, true) | (Side::Rx, false) => End::Write(e),
            (Side::Tx, false) | (Side::Rx, true) => End::Read(e),
        }
    }

    fn wait(&self, fd: BorrowedFd<'_>, write: bool) -> Result<(), End> {
        match wait_ready(fd, write, self.stop.fd(), None) {
            Ok(Ready::Stop) => Err(End::Stopped),
            Ok(_) => Ok(()),
            Err(e) => Err(End::Read(e)),
        }
    }

    pub(crate) fn run(mut self) -> End {
        loop {
            let r = match self.method {
                Method::Copy => return self.copy(),
                Method::Direct => self.direct(),
                Method::Via { .. } => self.via(),
            };
            match r {
                Err(End::Read(e) | End::Write(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // The kernel cannot splice these ends: fall back.
                    self.method = Method::Copy;
                }
                Err(end) => return end,
                Ok(()) => return End::Eof,
            }
        }
    }

    /// splice(src -> dst) where one of them is a pipe.
    fn direct(&mut self) -> Result<(), End> {
        let (src, dst) = (Arc::clone(&self.src), Arc::clone(&self.dst));
        let mut stalls = 0u32;
        loop {
            self.wait(src.as_fd(), false)?;
            match splice::splice(src.as_fd(), dst.as_fd(), self.chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    stalls = 0;
                    self.account(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if writable_now(dst.as_fd()) {
                        stalls += 1;
                        if stalls > 100 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    } else {
                        self.wait(dst.as_fd(), true)?;
                    }
                }
                Err(e) => return Err(self.splice_err(e)),
            }
        }
    }

    /// splice(src -> internal pipe -> dst).
    fn via(&mut self) -> Result<(), End> {
        let (src, dst) = (Arc::clone(&self.src), Arc::clone(&self.dst));
        let Method::Via { r, w } = &self.method else {
            return Ok(());
        };
        let (r, w) = (
            r.as_fd().try_clone_to_owned(),
            w.as_fd().try_clone_to_owned(),
        );
        let (Ok(r), Ok(w)) = (r, w) else {
            return Err(End::Read(io::Error::other(
                "cannot duplicate the internal pipe",
            )));
        };
        loop {
            self.wait(src.as_fd(), false)?;
            let n = match splice::splice(src.as_fd(), w.as_fd(), self.chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(self.splice_err(e)),
            };
            let mut left = n;
            while left > 0 {
                match splice::splice(r.as_fd(), dst.as_fd(), left) {
                    Ok(0) => return Err(End::Write(io::ErrorKind::WriteZero.into())),
                    Ok(m) => {
                        left -= m;
                        self.account(m);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.wait(dst.as_fd(), true)?;
                    }
                    Err(e) => {
                        // Bytes already in the internal pipe cannot go back:
                        // a fallback now would lose them, so this is final.
                        let end = self.splice_err(e);
                        return Err(match end {
                            End::Read(e) | End::Write(e)
                                if e.raw_os_error() == Some(libc::EINVAL) =>
                            {
                                End::Write(io::Error::other(format!(
                                    "the output refused splice after data was queued: {e}"
                                )))
                            }
                            other => other,
                        });
                    }
                }
            }
        }
    }

    /// read/write with a buffer; one datagram per chunk on UDP.
    fn copy(&mut self) -> End {
        let (src, dst) = (Arc::clone(&self.src), Arc::clone(&self.dst));
        let mut buf = vec![0u8; self.chunk];
        loop {
            if let Err(end) = self.wait(src.as_fd(), false) {
                return end;
            }
            let n = match nix::unistd::read(src.as_fd(), &mut buf) {
                Ok(0) => return End::Eof,
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => return End::Read(e.into()),
            };
            if self.side == Side::Rx
                && let Some(d) = &mut self.dump
            {
                d.record(&buf[..n]);
            }
            if self.discard {
                self.account(n);
                continue;
            }
            let mut at = 0;
            while at < n {
                match nix::unistd::write(dst.as_fd(), &buf[at..n]) {
                    Ok(m) => at += m,
                    Err(Errno::EAGAIN) => {
                        if let Err(end) = self.wait(dst.as_fd(), true) {
                            return end;
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return End::Write(e.into()),
                }
            }
            if self.side == Side::Tx
                && let Some(d) = &mut self.dump
            {
                d.record(&buf[..n]);
            }
            self.account(n);
        }
    }
}

pub(crate) fn choose(
    local: BorrowedFd<'_>,
    zero_copy: bool,
    size: usize,
) -> Result<Method, RelayError> {
    if !zero_copy {
        return Ok(Method::Copy);
    }
    Ok(match fd_kind(local) {
        FdKind::Pipe => {
            splice::grow_pipe(local, size);
            Method::Direct
        }
        FdKind::File | FdKind::Socket | FdKind::CharDevice => {
            let (r, w) = splice::pipe().map_err(RelayError::Setup)?;
            splice::grow_pipe(r.as_fd(), size);
            Method::Via { r, w }
        }
        FdKind::Tty | FdKind::Other => Method::Copy,
    })
}

pub(crate) fn pipe_chunk(method: &Method, local: BorrowedFd<'_>, size: usize) -> usize {
    let fd = match method {
        Method::Copy => return size.clamp(16 * 1024, 1 << 20),
        Method::Direct => local,
        Method::Via { r, .. } => r.as_fd(),
    };
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(64 * 1024)
}
