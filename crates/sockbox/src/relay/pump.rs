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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use socket2::SockRef;

use super::dump::{Dir, Dump, DumpDir};
use super::life::{Activity, FINISH_IDLE, FINISH_MAX, Life, Step};
use super::method::{choose, pipe_chunk, room};
use super::pace::Pacer;
use super::worker::{End, Side, Worker};
use super::{Flow, Outcome, Peer, RelayError, RelayOptions, Report, peer_error};
use crate::daemon::ServerStats;
use crate::sys::splice::{self, Ready, wait_ready};
use sockbox_wire::crlf::Crlf;

pub use super::stdio::{stdio_fds, take_stdout};
pub use super::worker::Stopper;

/// The largest UDP payload over IPv4; larger stdin chunks are split.
const MAX_DATAGRAM: usize = 65_507;

/// After the relay ends, how long the workers get to notice.
const WORKERS_WAIT: Duration = Duration::from_millis(300);

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
    pub peer: Peer,
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

/// Byte counts and the activity clock, shared with the workers.
#[derive(Clone)]
struct Counters {
    activity: Arc<Activity>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl Counters {
    fn new() -> Self {
        Self {
            activity: Arc::new(Activity::new()),
            sent: Arc::new(AtomicU64::new(0)),
            received: Arc::new(AtomicU64::new(0)),
        }
    }

    fn get(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// What the parts of one pump share.
struct Setup<'a> {
    opts: &'a RelayOptions,
    extras: &'a PumpExtras,
    stopper: &'a Stopper,
    peer: Peer,
    datagram: bool,
    counters: Counters,
}

/// The running workers: their end reports, and how many still run.
struct Crew {
    ends: mpsc::Receiver<(Side, End)>,
    running: usize,
}

/// Relay between `ends.input`/`ends.output` and `ends.socket` until the
/// rules in `opts` say it is over, or `stopper` fires. Blocks the calling
/// thread; spawns one thread per direction.
pub fn pump(
    ends: PumpEnds,
    opts: &RelayOptions,
    extras: &PumpExtras,
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
    let socket = Arc::new(socket);
    let setup = Setup {
        opts,
        extras,
        stopper,
        peer: peer.clone(),
        datagram,
        counters: Counters::new(),
    };
    if let Some(d) = &extras.dump {
        d.opened(&peer);
    }
    let mut rx_dump = extras
        .dump
        .as_ref()
        .map(|d| d.direction(&peer, Dir::Received));
    if let Some(report) = write_initial(&setup, output.as_fd(), rx_dump.as_mut())? {
        return Ok(report);
    }
    let mut crew = start(&setup, input, output, &socket, rx_dump)?;
    let result = supervise(&mut crew, &setup, &socket);
    teardown(&mut crew, &socket, &result, stopper);
    let (sent, received) = setup.counters.get();
    if let Some(d) = &extras.dump {
        d.closed(&peer, sent, received);
    }
    result.map(|outcome| Report {
        outcome,
        sent,
        received,
    })
}

/// Write the bytes received before the pump started; a report when the
/// output is already gone.
fn write_initial(
    s: &Setup<'_>,
    output: BorrowedFd<'_>,
    dump: Option<&mut DumpDir>,
) -> Result<Option<Report>, RelayError> {
    let first = &s.extras.initial_rx;
    if first.is_empty() {
        return Ok(None);
    }
    if let Some(d) = dump {
        d.record(first);
    }
    s.counters
        .received
        .fetch_add(first.len() as u64, Ordering::Relaxed);
    if let Some(stats) = &s.extras.stats {
        stats.add_in(first.len() as u64);
    }
    if s.opts.flow == Flow::SendOnly {
        return Ok(None);
    }
    match write_all_blocking(output, first, s.stopper) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(Report {
            outcome: Outcome::OutputClosed,
            sent: 0,
            received: first.len() as u64,
        })),
        Err(e) => Err(RelayError::LocalWrite(e)),
    }
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

/// Start the worker threads: local input to the socket (unless
/// receive-only) and the socket to the local output.
fn start(
    s: &Setup<'_>,
    input: OwnedFd,
    output: OwnedFd,
    socket: &Arc<OwnedFd>,
    rx_dump: Option<DumpDir>,
) -> Result<Crew, RelayError> {
    let (tx, ends) = mpsc::channel::<(Side, End)>();
    let mut running = 0;
    if s.opts.flow != Flow::RecvOnly {
        spawn(sender(s, input, socket)?, "relay-tx", &tx)?;
        running += 1;
    }
    spawn(receiver(s, output, socket, rx_dump)?, "relay-rx", &tx)?;
    running += 1;
    Ok(Crew { ends, running })
}

/// True when the relay copies through a buffer instead of splicing.
fn plain(s: &Setup<'_>) -> bool {
    s.datagram || s.extras.dump.is_some() || !s.opts.zero_copy
}

/// The worker moving local input to the socket.
fn sender(s: &Setup<'_>, input: OwnedFd, socket: &Arc<OwnedFd>) -> Result<Worker, RelayError> {
    let size = s.opts.buffer_size;
    let method = choose(input.as_fd(), !(plain(s) || s.opts.crlf), true, size)?;
    let mut chunk = pipe_chunk(&method, input.as_fd(), size);
    if s.datagram {
        // Room for the CRs -C may add.
        chunk = chunk.min(if s.opts.crlf {
            MAX_DATAGRAM / 2
        } else {
            MAX_DATAGRAM
        });
    }
    let pacer = (!s.datagram).then(|| Pacer::new(room(input.as_fd(), chunk)));
    Ok(Worker {
        side: Side::Tx,
        src: Arc::new(input),
        dst: Arc::clone(socket),
        stop: s.stopper.clone(),
        method,
        chunk,
        activity: Arc::clone(&s.counters.activity),
        bytes: Arc::clone(&s.counters.sent),
        other: Arc::clone(&s.counters.received),
        dump: s
            .extras
            .dump
            .as_ref()
            .map(|d| d.direction(&s.peer, Dir::Sent)),
        stats: s.extras.stats.clone(),
        discard: false,
        pacer,
        crlf: s.opts.crlf.then(Crlf::new),
    })
}

/// The worker moving the socket's data to the local output (or dropping
/// it, sending only).
fn receiver(
    s: &Setup<'_>,
    output: OwnedFd,
    socket: &Arc<OwnedFd>,
    dump: Option<DumpDir>,
) -> Result<Worker, RelayError> {
    let size = s.opts.buffer_size;
    let discard = s.opts.flow == Flow::SendOnly;
    let method = choose(output.as_fd(), !(plain(s) || discard), false, size)?;
    let mut chunk = pipe_chunk(&method, output.as_fd(), size);
    if s.datagram {
        chunk = chunk.max(65_536);
    }
    let pacer = (!s.datagram).then(|| Pacer::new(room(output.as_fd(), chunk)));
    Ok(Worker {
        side: Side::Rx,
        src: Arc::clone(socket),
        dst: Arc::new(output),
        stop: s.stopper.clone(),
        method,
        chunk,
        activity: Arc::clone(&s.counters.activity),
        bytes: Arc::clone(&s.counters.received),
        other: Arc::clone(&s.counters.sent),
        dump,
        stats: s.extras.stats.clone(),
        discard,
        pacer,
        crlf: None,
    })
}

fn spawn(w: Worker, name: &str, ends: &mpsc::Sender<(Side, End)>) -> Result<(), RelayError> {
    let ends = ends.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let side = w.side;
            let end = w.run();
            let _ = ends.send((side, end));
        })
        .map(|_| ())
        .map_err(RelayError::Setup)
}

/// What waiting for the workers gave.
enum Wait {
    /// A worker ended.
    End(Side, End),
    /// A timer of the rules is due.
    Timer,
    /// No worker is left to report.
    Gone,
}

fn next(crew: &Crew, life: &Life, activity: &Activity) -> Wait {
    let got = match life.deadline(activity.last()) {
        Some(d) => match crew
            .ends
            .recv_timeout(d.saturating_duration_since(Instant::now()))
        {
            Ok(ev) => Ok(ev),
            Err(mpsc::RecvTimeoutError::Timeout) => return Wait::Timer,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
        },
        None => crew.ends.recv().map_err(|_| ()),
    };
    match got {
        Ok((side, end)) => Wait::End(side, end),
        Err(()) => Wait::Gone,
    }
}

/// Apply the rules to the workers' ends and the clock until the relay is over.
fn supervise(crew: &mut Crew, s: &Setup<'_>, socket: &OwnedFd) -> Result<Outcome, RelayError> {
    let mut life = Life::new(s.opts);
    let mut sending = s.opts.flow != Flow::RecvOnly;
    loop {
        let (side, end) = match next(crew, &life, &s.counters.activity) {
            Wait::End(side, end) => (side, end),
            Wait::Timer => match life.on_timer(Instant::now(), s.counters.activity.last()) {
                Step::Finish(o) => return Ok(o),
                Step::Continue => continue,
            },
            Wait::Gone => return Ok(Outcome::Done),
        };
        crew.running -= 1;
        sending &= side != Side::Tx;
        match on_end(side, end, &mut life, s, socket)? {
            Step::Finish(Outcome::Done) if sending => {
                finish_sending(crew, &s.counters);
                return Ok(Outcome::Done);
            }
            Step::Finish(o) => return Ok(o),
            Step::Continue if crew.running == 0 => return Ok(Outcome::Done),
            Step::Continue => {}
        }
    }
}

/// One worker ended: what the rules make of it.
fn on_end(
    side: Side,
    end: End,
    life: &mut Life,
    s: &Setup<'_>,
    socket: &OwnedFd,
) -> Result<Step, RelayError> {
    let counts = s.counters.get();
    match (side, end) {
        (_, End::Stopped) => Ok(Step::Finish(Outcome::Stopped)),
        (Side::Tx, End::Eof) => {
            if s.opts.half_close && !s.datagram {
                let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Write);
            }
            Ok(life.local_eof(Instant::now()))
        }
        (Side::Rx, End::Eof) => Ok(life.remote_eof()),
        (Side::Tx, End::Read(e)) => Err(RelayError::LocalRead(e)),
        (Side::Rx, End::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(Step::Finish(Outcome::OutputClosed))
        }
        (Side::Rx, End::Write(e)) => Err(RelayError::LocalWrite(e)),
        (Side::Tx, End::Write(e)) => Err(peer_error(&s.peer, e, s.datagram, true, counts)),
        (Side::Rx, End::Read(e)) => Err(peer_error(&s.peer, e, s.datagram, false, counts)),
    }
}

/// The peer's EOF ended a relay whose local input is still open: let what
/// that input already holds reach the peer first, until the sender pauses
/// for [`FINISH_IDLE`] (or for at most [`FINISH_MAX`]).
fn finish_sending(crew: &mut Crew, counters: &Counters) {
    let give_up = Instant::now() + FINISH_MAX;
    let mut last = counters.get().0;
    while crew.running > 0 {
        let wait = FINISH_IDLE.min(give_up.saturating_duration_since(Instant::now()));
        match crew.ends.recv_timeout(wait) {
            Ok(_) => crew.running -= 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = counters.get().0;
                if now == last || Instant::now() >= give_up {
                    return;
                }
                last = now;
            }
        }
    }
}

/// Wake the workers, close the connection for real (a worker stuck writing
/// stdout may still hold the fd) and give them a moment.
fn teardown(
    crew: &mut Crew,
    socket: &OwnedFd,
    result: &Result<Outcome, RelayError>,
    stopper: &Stopper,
) {
    stopper.stop();
    if matches!(
        result,
        Ok(Outcome::Quit | Outcome::Stopped | Outcome::Idle(_))
    ) {
        drain(socket);
    }
    let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Both);
    let until = Instant::now() + WORKERS_WAIT;
    while crew.running > 0 {
        match crew
            .ends
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(_) => crew.running -= 1,
            Err(_) => break,
        }
    }
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
