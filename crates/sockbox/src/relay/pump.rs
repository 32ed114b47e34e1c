//! The fast path: one connection between two local file descriptors
//! (standard input and output) and a connected socket, one blocking thread
//! per direction.
//!
//! Each direction picks how it moves bytes:
//! - `splice(2)` straight between a pipe and the socket when the local end
//!   is a pipe (`head -c 4G /dev/zero | sockbox connect …`);
//! - `splice(2)` through an internal pipe when the local end is a regular
//!   file, a socket or `/dev/null`;
//! - `read`/`write` with a userspace buffer for terminals, for UDP (one
//!   datagram per chunk), when dumping traffic, and whenever the kernel
//!   refuses splice (`EINVAL`).
//!
//! Every wait is a `poll(2)` that also watches a stop fd, so [`Stopper`]
//! ends a relay from another thread. A write to a blocked standard output
//! cannot be interrupted; such a thread is left behind when the relay ends
//! (the socket is shut down regardless).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use socket2::SockRef;

use super::dump::{Dir, Dump};
use super::life::{Activity, Life, Step};
use super::pace::Pacer;
use super::worker::{End, Side, Worker, choose, pipe_chunk, room};
use super::{Flow, Outcome, RelayError, RelayOptions, Report, is_reset};
use crate::daemon::ServerStats;
use crate::sys::splice::{self, Ready, wait_ready};

/// The largest UDP payload over IPv4; larger stdin chunks are split.
const MAX_DATAGRAM: usize = 65_507;

/// Stops a running [`pump`] from any thread. Cheap to clone.
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

/// The file descriptors of one relay.
#[derive(Debug)]
pub struct PumpEnds {
    /// Local input (a duplicate of stdin, say).
    pub input: OwnedFd,
    /// Local output (a duplicate of stdout, say).
    pub output: OwnedFd,
    /// The connected socket (TCP or connected UDP).
    pub socket: OwnedFd,
    /// The peer, for messages and the dump.
    pub peer: SocketAddr,
    /// True for UDP: one datagram per chunk, no half-close.
    pub datagram: bool,
}

/// Optional extras for a [`pump`].
#[derive(Debug, Default)]
pub struct PumpExtras {
    /// Record traffic here (forces read/write).
    pub dump: Option<Dump>,
    /// Count bytes here (in = from the peer).
    pub stats: Option<ServerStats>,
    /// Bytes already received from the peer, written to the output first
    /// (the first datagram of a UDP listener).
    pub initial_rx: Vec<u8>,
}

fn write_all_blocking(fd: BorrowedFd<'_>, mut data: &[u8], stop: &Stopper) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if wait_ready(fd, true, stop.fd(), None)? == Ready::Stop {
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Relay between `ends.input`/`ends.output` and `ends.socket` until the
/// rules in `opts` say it is over, or `stopper` fires. Blocks the calling
/// thread; spawns one thread per direction.
#[allow(clippy::needless_pass_by_value)] // the extras are spent on this relay
pub fn pump(
    ends: PumpEnds,
    opts: &RelayOptions,
    extras: PumpExtras,
    stopper: &Stopper,
) -> Result<Report, RelayError> {
    let PumpEnds {
        input,
        output,
        socket,
        peer,
        datagram,
    } = ends;
    splice::set_nonblocking(socket.as_fd(), true).map_err(RelayError::Setup)?;
    let plain = datagram || extras.dump.is_some() || !opts.zero_copy;
    let socket = Arc::new(socket);
    let activity = Arc::new(Activity::new());
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    if let Some(d) = &extras.dump {
        d.opened(peer);
    }

    let mut rx_dump = extras
        .dump
        .as_ref()
        .map(|d| d.direction(peer, Dir::Received));
    if !extras.initial_rx.is_empty() {
        if let Some(d) = &mut rx_dump {
            d.record(&extras.initial_rx);
        }
        received.fetch_add(extras.initial_rx.len() as u64, Ordering::Relaxed);
        if let Some(s) = &extras.stats {
            s.add_in(extras.initial_rx.len() as u64);
        }
        if opts.flow != Flow::SendOnly
            && let Err(e) = write_all_blocking(output.as_fd(), &extras.initial_rx, stopper)
        {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(Report {
                    outcome: Outcome::OutputClosed,
                    sent: 0,
                    received: extras.initial_rx.len() as u64,
                });
            }
            return Err(RelayError::LocalWrite(e));
        }
    }

    let (ev_tx, ev_rx) = mpsc::channel::<(Side, End)>();
    let mut running = 0;
    let spawn = |w: Worker, name: &str| {
        let ev = ev_tx.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let side = w.side;
                let end = w.run();
                let _ = ev.send((side, end));
            })
            .map(|_| ())
            .map_err(RelayError::Setup)
    };

    if opts.flow != Flow::RecvOnly {
        let method = choose(input.as_fd(), !plain, true, opts.buffer_size)?;
        let mut chunk = pipe_chunk(&method, input.as_fd(), opts.buffer_size);
        if datagram {
            chunk = chunk.min(MAX_DATAGRAM);
        }
        let pacer = (!datagram).then(|| Pacer::new(room(input.as_fd(), chunk)));
        spawn(
            Worker {
                side: Side::Tx,
                src: Arc::new(input),
                dst: Arc::clone(&socket),
                stop: stopper.clone(),
                method,
                chunk,
                activity: Arc::clone(&activity),
                bytes: Arc::clone(&sent),
                dump: extras.dump.as_ref().map(|d| d.direction(peer, Dir::Sent)),
                stats: extras.stats.clone(),
                discard: false,
                pacer,
            },
            "relay-tx",
        )?;
        running += 1;
    }
    {
        let discard = opts.flow == Flow::SendOnly;
        let method = choose(output.as_fd(), !(plain || discard), false, opts.buffer_size)?;
        let mut chunk = pipe_chunk(&method, output.as_fd(), opts.buffer_size);
        if datagram {
            chunk = chunk.max(65_536);
        }
        let pacer = (!datagram).then(|| Pacer::new(room(output.as_fd(), chunk)));
        spawn(
            Worker {
                side: Side::Rx,
                src: Arc::clone(&socket),
                dst: Arc::new(output),
                stop: stopper.clone(),
                method,
                chunk,
                activity: Arc::clone(&activity),
                bytes: Arc::clone(&received),
                dump: rx_dump,
                stats: extras.stats.clone(),
                discard,
                pacer,
            },
            "relay-rx",
        )?;
        running += 1;
    }
    drop(ev_tx);

    let mut life = Life::new(opts);
    let counts = || {
        (
            sent.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
        )
    };
    let result: Result<Outcome, RelayError> = loop {
        let ev = match life.deadline(activity.last()) {
            Some(d) => match ev_rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Step::Finish(o) = life.on_timer(Instant::now(), activity.last()) {
                        break Ok(o);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(Outcome::Done),
            },
            None => match ev_rx.recv() {
                Ok(ev) => ev,
                Err(_) => break Ok(Outcome::Done),
            },
        };
        running -= 1;
        let step = match ev {
            (_, End::Stopped) => break Ok(Outcome::Stopped),
            (Side::Tx, End::Eof) => {
                if opts.half_close && !datagram {
                    let _ = SockRef::from(&*socket).shutdown(std::net::Shutdown::Write);
                }
                life.local_eof(Instant::now())
            }
            (Side::Rx, End::Eof) => life.remote_eof(),
            (Side::Tx, End::Read(e)) => break Err(RelayError::LocalRead(e)),
            (Side::Rx, End::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                break Ok(Outcome::OutputClosed);
            }
            (Side::Rx, End::Write(e)) => break Err(RelayError::LocalWrite(e)),
            (Side::Tx, End::Write(e)) => break Err(peer_error(peer, e, datagram, true, counts())),
            (Side::Rx, End::Read(e)) => break Err(peer_error(peer, e, datagram, false, counts())),
        };
        if let Step::Finish(o) = step {
            break Ok(o);
        }
        if running == 0 {
            break Ok(Outcome::Done);
        }
    };

    // Tear down: wake the workers, close the connection for real (a worker
    // stuck writing stdout may still hold the fd), give them a moment.
    stopper.stop();
    let sock = SockRef::from(&*socket);
    if matches!(
        result,
        Ok(Outcome::Quit | Outcome::Stopped | Outcome::Idle(_))
    ) {
        drain(&socket);
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
    let until = Instant::now() + Duration::from_millis(300);
    while running > 0 {
        match ev_rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(_) => running -= 1,
            Err(_) => break,
        }
    }
    let (s, r) = counts();
    if let Some(d) = &extras.dump {
        d.closed(peer, s, r);
    }
    result.map(|outcome| Report {
        outcome,
        sent: s,
        received: r,
    })
}

/// Read and drop what is queued, so closing does not answer with a reset.
fn drain(socket: &OwnedFd) {
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..64 {
        match nix::unistd::read(socket.as_fd(), &mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// A socket error as the relay reports it.
pub(crate) fn peer_error(
    peer: SocketAddr,
    e: io::Error,
    datagram: bool,
    sending: bool,
    (sent, received): (u64, u64),
) -> RelayError {
    if datagram && e.raw_os_error() == Some(libc::ECONNREFUSED) {
        RelayError::Unreachable(peer)
    } else if is_reset(&e) {
        RelayError::Reset {
            peer,
            sent,
            received,
        }
    } else if sending {
        RelayError::Send { peer, source: e }
    } else {
        RelayError::Recv { peer, source: e }
    }
}

/// Duplicates of this process's stdin and stdout for a [`pump`]; a closed
/// one is replaced by `/dev/null`.
pub fn stdio_fds() -> Result<(OwnedFd, OwnedFd), RelayError> {
    let open_null = |write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(RelayError::Setup)
    };
    let input = match splice::dup(std::io::stdin()) {
        Ok(fd) => fd,
        Err(_) => open_null(false)?,
    };
    let output = match splice::dup(std::io::stdout()) {
        Ok(fd) => fd,
        Err(_) => open_null(true)?,
    };
    Ok((input, output))
}
