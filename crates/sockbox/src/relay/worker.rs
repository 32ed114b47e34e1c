//! One direction of the blocking pump: the worker thread's loops for
//! `splice` straight through a pipe, `splice` through an internal pipe, and
//! plain `read`/`write` (chosen by [`super::method`]), and the [`Stopper`]
//! every wait also watches.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::RelayError;
use super::dump::DumpDir;
use super::life::Activity;
use super::method::Method;
use super::pace::Pacer;
use crate::daemon::ServerStats;
use crate::sys::splice::{self, FdKind, Ready, fd_kind, is_nonblocking, wait_ready, writable_now};
use sockbox_wire::crlf::Crlf;

/// Stops a running pump from any thread: every wait of its workers also
/// watches this. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stopper(Arc<(OwnedFd, OwnedFd)>);

impl Stopper {
    /// A stopper that has not fired.
    pub fn new() -> Result<Self, RelayError> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        nix::unistd::pipe2(flags)
            .map(|p| Self(Arc::new(p)))
            .map_err(|e| RelayError::Setup(e.into()))
    }

    /// Ask the relay to stop (the read end of a pipe becomes readable).
    pub fn stop(&self) {
        let _ = nix::unistd::write(self.0.1.as_fd(), b"x");
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.0.as_fd()
    }
}

/// Which direction a worker moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Tx,
    Rx,
}

/// How a worker's loop ended.
#[derive(Debug)]
pub(crate) enum End {
    Eof,
    Stopped,
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the destination failed.
    Write(io::Error),
}

/// One direction of a pump, run on its own thread.
pub(crate) struct Worker {
    pub(crate) side: Side,
    pub(crate) src: Arc<OwnedFd>,
    pub(crate) dst: Arc<OwnedFd>,
    pub(crate) stop: Stopper,
    pub(crate) method: Method,
    pub(crate) chunk: usize,
    pub(crate) activity: Arc<Activity>,
    pub(crate) bytes: Arc<AtomicU64>,
    /// The other direction's byte count (the pacer never pauses a
    /// direction whose peer answered since its last transfer).
    pub(crate) other: Arc<AtomicU64>,
    pub(crate) dump: Option<DumpDir>,
    pub(crate) stats: Option<ServerStats>,
    /// Read and drop (receive side of `--send-only`).
    pub(crate) discard: bool,
    /// Batch a streaming input (`None` for datagrams: one per read).
    pub(crate) pacer: Option<Pacer>,
    /// Turn bare LF into CRLF on the way (copying only).
    pub(crate) crlf: Option<Crlf>,
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
    ///
    /// The splice is tried first; only when it would block does the worker
    /// poll, so a busy stream costs one system call per batch.
    fn direct(&mut self) -> Result<(), End> {
        let (src, dst) = (Arc::clone(&self.src), Arc::clone(&self.dst));
        let mut stalls = 0u32;
        // The last wait was for the source: if the splice still would
        // block, the destination is what holds it up.
        let mut src_ready = false;
        loop {
            match splice::splice(src.as_fd(), dst.as_fd(), self.chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    stalls = 0;
                    src_ready = false;
                    self.account(n);
                    self.pace(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if src_ready {
                        self.blocked(dst.as_fd(), &mut stalls)?;
                    } else {
                        // Most often the source is simply drained: one poll.
                        self.wait(src.as_fd(), false)?;
                        src_ready = true;
                    }
                }
                Err(e) => return Err(self.splice_err(e)),
            }
        }
    }

    /// A splice would block although the source has data: wait until the
    /// destination has room. When it looks writable and the kernel still
    /// refuses (a pipe with free bytes but no free slot), back off a little.
    fn blocked(&self, dst: BorrowedFd<'_>, stalls: &mut u32) -> Result<(), End> {
        if !writable_now(dst) {
            *stalls = 0;
            return self.wait(dst, true);
        }
        *stalls += 1;
        if *stalls > 100 {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// After moving `n` bytes: pause if the input is streaming in small
    /// pieces one way, so the next call moves a larger batch.
    fn pace(&mut self, n: usize) {
        let other = self.other.load(Ordering::Relaxed);
        if let Some(p) = &mut self.pacer
            && let Some(d) = p.after(Instant::now(), n, other)
        {
            std::thread::sleep(d);
            p.resumed(Instant::now());
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
        // A source in blocking mode (a socket on stdin) would block inside
        // splice, out of reach of the stop fd: poll it first. A pipe never
        // blocks a splice (SPLICE_F_NONBLOCK), whatever its own mode.
        let poll_first = !is_nonblocking(src.as_fd()) && fd_kind(src.as_fd()) != FdKind::Pipe;
        loop {
            if poll_first {
                self.wait(src.as_fd(), false)?;
            }
            // The internal pipe is empty here, so a splice that would block
            // is waiting for the source.
            let n = match splice::splice(src.as_fd(), w.as_fd(), self.chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(src.as_fd(), false)?;
                    continue;
                }
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
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        // The output refuses splice: hand over what is
                        // already in the internal pipe by read/write, then
                        // let the caller fall back to copying.
                        self.flush_pipe(r.as_fd(), dst.as_fd(), left)?;
                        return Err(End::Write(e));
                    }
                    Err(e) => return Err(self.splice_err(e)),
                }
            }
            self.pace(n);
        }
    }

    /// Move `left` bytes out of the internal pipe with read/write.
    fn flush_pipe(
        &mut self,
        r: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        mut left: usize,
    ) -> Result<(), End> {
        let mut buf = vec![0u8; left.min(1 << 20)];
        while left > 0 {
            let want = left.min(buf.len());
            let n = match nix::unistd::read(r, &mut buf[..want]) {
                Ok(0) => return Err(End::Write(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => n,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(e) => return Err(End::Write(e.into())),
            };
            let mut at = 0;
            while at < n {
                match nix::unistd::write(dst, &buf[at..n]) {
                    Ok(m) => at += m,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => self.wait(dst, true)?,
                    Err(e) => return Err(End::Write(e.into())),
                }
            }
            left -= n;
            self.account(n);
        }
        Ok(())
    }

    /// read/write with a buffer; one datagram per chunk on UDP.
    fn copy(&mut self) -> End {
        let (src, dst) = (Arc::clone(&self.src), Arc::clone(&self.dst));
        let mut buf = vec![0u8; self.chunk];
        let mut converted = Vec::new();
        let poll_first = !is_nonblocking(src.as_fd());
        loop {
            if poll_first && let Err(end) = self.wait(src.as_fd(), false) {
                return end;
            }
            let n = match nix::unistd::read(src.as_fd(), &mut buf) {
                Ok(0) => return End::Eof,
                Ok(n) => n,
                Err(Errno::EAGAIN) => {
                    if let Err(end) = self.wait(src.as_fd(), false) {
                        return end;
                    }
                    continue;
                }
                Err(Errno::EINTR) => continue,
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
            let out = match &mut self.crlf {
                Some(c) => {
                    converted.clear();
                    c.convert(&buf[..n], &mut converted);
                    &converted[..]
                }
                None => &buf[..n],
            };
            let n = out.len();
            let mut at = 0;
            while at < n {
                match nix::unistd::write(dst.as_fd(), &out[at..n]) {
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
                d.record(out);
            }
            self.account(n);
            self.pace(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    fn worker(src: OwnedFd, dst: OwnedFd, method: Method) -> (Worker, Arc<AtomicU64>) {
        let bytes = Arc::new(AtomicU64::new(0));
        let w = Worker {
            side: Side::Rx,
            src: Arc::new(src),
            dst: Arc::new(dst),
            stop: Stopper::new().unwrap(),
            method,
            chunk: 1 << 16,
            activity: Arc::new(Activity::new()),
            bytes: Arc::clone(&bytes),
            other: Arc::new(AtomicU64::new(0)),
            dump: None,
            stats: None,
            discard: false,
            pacer: Some(Pacer::new(1 << 16)),
            crlf: None,
        };
        (w, bytes)
    }

    #[test]
    fn via_pipe_to_an_append_only_file_falls_back_without_losing_bytes() {
        let (mut peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"head:").unwrap();
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let appender = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        // Forced through the internal pipe, as if the probe had missed O_APPEND.
        let (r, w) = splice::pipe().unwrap();
        let (worker, bytes) = worker(
            OwnedFd::from(ours),
            OwnedFd::from(appender),
            Method::Via { r, w },
        );
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                peer.write_all(&data).unwrap();
            })
        };
        let t = std::thread::spawn(move || worker.run());
        writer.join().unwrap();
        let end = t.join().unwrap();
        assert!(matches!(end, End::Eof), "{end:?}");
        assert_eq!(bytes.load(Ordering::Relaxed), data.len() as u64);
        let mut got = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..5], b"head:");
        assert!(got[5..] == data[..], "bytes lost or reordered");
    }

    #[test]
    fn direct_splice_from_a_socket_into_a_pipe() {
        let (mut peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        let (r, w) = splice::pipe().unwrap();
        let (worker, _) = worker(OwnedFd::from(ours), w, Method::Direct);
        let t = std::thread::spawn(move || worker.run());
        peer.write_all(b"through splice").unwrap();
        drop(peer);
        assert!(matches!(t.join().unwrap(), End::Eof));
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "through splice");
    }

    #[test]
    fn stop_wakes_a_waiting_worker() {
        let (_peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        let (_r, w) = splice::pipe().unwrap();
        let (worker, _) = worker(OwnedFd::from(ours), w, Method::Copy);
        let stop = worker.stop.clone();
        let t = std::thread::spawn(move || worker.run());
        std::thread::sleep(Duration::from_millis(50));
        stop.stop();
        assert!(matches!(t.join().unwrap(), End::Stopped));
    }
}
