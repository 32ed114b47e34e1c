//! The async loop that connects an [`Engine`] to a [`Transport`] and a
//! [`TargetSource`]: read everything waiting, expire overdue probes, take
//! in as many targets as can be sent now, send what is due in batches
//! (each probe stamped with its own send time), then sleep until a socket
//! is readable, a timer is due, the source has more, or shutdown.

use std::io;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Message, Packet};
use tokio::time::Instant;

use super::engine::{Engine, Event, Observer, Probe};
use super::probe;
use super::socket::{BATCH, SendReport, Transport};
use super::source::{Next, TargetSource};
use crate::Shutdown;
use crate::sys::ping_io::SendFailure;

/// Most batches read per socket in one turn before sending again.
const RECV_TURN: usize = 64;

/// Prepared packet buffers for one family: the pattern is written once and
/// only the header and id change per probe.
struct Buffers {
    family: Family,
    bufs: Vec<Vec<u8>>,
    payload_len: usize,
    seed: Option<u64>,
    probes: Vec<Probe>,
}

impl Buffers {
    fn new(family: Family, payload_len: usize, seed: Option<u64>) -> Self {
        Self {
            family,
            bufs: Vec::new(),
            payload_len,
            seed,
            probes: Vec::new(),
        }
    }

    /// Make sure `n` buffers exist.
    fn reserve(&mut self, n: usize) {
        let ty = Message::EchoRequest.to_type(self.family).unwrap_or(8);
        while self.bufs.len() < n {
            let mut b = vec![0u8; 8 + self.payload_len];
            b[0] = ty;
            probe::write_pattern_seeded(&mut b[8..], self.seed);
            self.bufs.push(b);
        }
    }

    fn fill(&mut self, i: usize, p: &Probe, token: u64) {
        let buf = &mut self.bufs[i];
        let mut pkt = Packet::new_unchecked(&mut buf[..]);
        let (ident, seq_no) = probe::header_fields(p.seq);
        pkt.set_echo_ident(ident);
        pkt.set_echo_seq_no(seq_no);
        probe::write_id(pkt.payload_mut(), token, p.seq);
        // ICMPv6 checksums are always computed by the kernel; ICMPv4 ones
        // by us (raw sockets need it; datagram sockets redo it anyway).
        let mode = match self.family {
            Family::V4 => ChecksumMode::V4,
            Family::V6 => ChecksumMode::Kernel,
        };
        pkt.fill_checksum(&mode);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every target finished.
    Complete,
    /// The deadline passed.
    Deadline,
    /// Shutdown was triggered (Ctrl-C, or the caller had enough).
    Interrupted,
}

/// Send the probes queued in `bufs` (all of its family) and tell the
/// engine when each left, or that it failed.
fn send_family<T: Transport>(
    engine: &mut Engine,
    transport: &mut T,
    bufs: &mut Buffers,
    report: &mut SendReport,
    obs: &mut impl Observer,
) {
    let token = engine.config().token;
    let probes = std::mem::take(&mut bufs.probes);
    bufs.reserve(probes.len());
    for (i, p) in probes.iter().enumerate() {
        bufs.fill(i, p, token);
    }
    let packets: Vec<&[u8]> = bufs.bufs[..probes.len()]
        .iter()
        .map(Vec::as_slice)
        .collect();
    let dests: Vec<std::net::IpAddr> = probes.iter().map(|p| p.addr).collect();
    report.clear();
    let fallback = Instant::now();
    if let Err(e) = transport.send(bufs.family, &packets, &dests, report) {
        report.failed = (0..probes.len())
            .map(|i| (i, SendFailure::of(&e)))
            .collect();
    }
    report.sort();
    let mut failed = report.failed.iter().peekable();
    for (i, p) in probes.iter().enumerate() {
        if let Some(&(_, failure)) = failed.next_if(|f| f.0 == i) {
            engine.on_send_error(p, failure, obs);
        } else {
            engine.on_sent(p, report.time_of(i).unwrap_or(fallback));
        }
    }
    bufs.probes = probes;
    bufs.probes.clear();
}

/// Read everything waiting on every socket (bounded per turn). True when
/// a socket may still hold more.
fn read_all<T: Transport>(engine: &mut Engine, transport: &mut T, obs: &mut impl Observer) -> bool {
    let mut more = false;
    for fam in [Family::V4, Family::V6] {
        if transport.kind(fam).is_none() {
            continue;
        }
        for turn in 0..RECV_TURN {
            match transport.recv(fam, &mut |inc| engine.on_packet(inc, obs)) {
                Ok(n) if n >= BATCH => more |= turn + 1 == RECV_TURN,
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A pending socket error (e.g. an ICMP error reported
                    // on a datagram socket) is not fatal to the run.
                    tracing::debug!("recv on the {fam:?} ICMP socket: {e}");
                    break;
                }
            }
        }
    }
    more
}

/// What the source said when the engine took in targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceState {
    /// It may have more now.
    Open,
    /// Not yet: wait for it.
    Pending,
    /// No more targets.
    Ended,
}

/// Take in up to `room` targets.
fn admit<S: TargetSource>(
    engine: &mut Engine,
    source: &mut S,
    room: usize,
    obs: &mut impl Observer,
) -> SourceState {
    for _ in 0..room {
        match source.next() {
            Next::Target(t) => {
                engine.admit(t);
            }
            Next::Unresolved { name, error } => obs.event(&Event::Unresolved {
                name: &name,
                error: &error,
            }),
            Next::Pending => return SourceState::Pending,
            Next::End => {
                engine.source_done();
                return SourceState::Ended;
            }
        }
    }
    SourceState::Open
}

/// Run `engine` over `transport` with targets from `source` until every
/// target is done, `deadline` passes or `shutdown` fires. Events go to
/// `obs`. With `settle`, `shutdown` winds the engine down rather than
/// stopping it: nothing more is sent, and the run ends once the probes in
/// flight are answered or time out, or `settle` has passed (the deadline
/// still ends it at once).
pub async fn drive<T: Transport, S: TargetSource>(
    engine: &mut Engine,
    source: &mut S,
    transport: &mut T,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
    settle: Option<Duration>,
    obs: &mut impl Observer,
) -> io::Result<Ending> {
    let payload_len = engine.config().payload_len;
    let seed = engine
        .config()
        .random_payload
        .then_some(engine.config().token);
    let mut v4 = Buffers::new(Family::V4, payload_len, seed);
    let mut v6 = Buffers::new(Family::V6, payload_len, seed);
    let mut report = SendReport::default();
    let mut source_state = SourceState::Open;
    let mut settle_until: Option<Instant> = None;
    loop {
        // 1. Read everything waiting, then expire overdue probes.
        let more_to_read = read_all(engine, transport, obs);
        let now = Instant::now();
        engine.poll_timeouts(now, obs);
        let ending = if deadline.is_some_and(|d| now >= d) {
            Some(Ending::Deadline)
        } else if shutdown.is_triggered() && settle.is_none()
            || settle_until.is_some_and(|t| now >= t)
        {
            Some(Ending::Interrupted)
        } else {
            if shutdown.is_triggered() && !engine.winding_down() {
                engine.wind_down(obs);
                source_state = SourceState::Ended;
                settle_until = settle.and_then(|s| now.checked_add(s));
            }
            None
        };
        if let Some(ending) = ending {
            engine.stop(obs);
            obs.flush();
            return Ok(ending);
        }
        // 2. Take in what can be sent this turn, then send what is due.
        let window = transport.send_window();
        if source_state != SourceState::Ended {
            let room = engine.wants(window);
            source_state = if room > 0 {
                admit(engine, source, room, obs)
            } else {
                SourceState::Open
            };
        }
        if engine.is_done() {
            obs.flush();
            return Ok(finished(engine));
        }
        let now = Instant::now();
        let mut due = 0;
        while due < window {
            let Some(p) = engine.poll_send(now) else {
                break;
            };
            due += 1;
            match p.addr {
                std::net::IpAddr::V4(_) => v4.probes.push(p),
                std::net::IpAddr::V6(_) => v6.probes.push(p),
            }
        }
        for bufs in [&mut v4, &mut v6] {
            if !bufs.probes.is_empty() {
                send_family(engine, transport, bufs, &mut report, obs);
            }
        }
        if obs.wake_at().is_some_and(|w| w <= Instant::now()) {
            obs.tick(Instant::now());
        }
        obs.flush();
        // A failed send can finish the last target.
        if engine.is_done() {
            return Ok(finished(engine));
        }
        // 3. Wait for a reply, a timer, the source, or shutdown.
        if more_to_read || due >= window {
            tokio::task::yield_now().await;
            continue;
        }
        let wake = [engine.next_wakeup(), deadline, obs.wake_at(), settle_until]
            .into_iter()
            .flatten()
            .min();
        if wake.is_some_and(|w| w <= Instant::now()) {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = async {
            match wake {
                Some(w) => tokio::time::sleep_until(w).await,
                None => std::future::pending().await,
            }
        };
        // Once winding down, the shutdown that started it is no news.
        let stop = async {
            if engine.winding_down() {
                std::future::pending::<()>().await;
            } else {
                shutdown.wait().await;
            }
        };
        let source_wait = async {
            if source_state == SourceState::Pending {
                source.ready().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = transport.readable() => r?,
            () = sleep => {}
            () = source_wait => {}
            () = stop => {}
        }
    }
}

/// How a run whose targets are all done ended: interrupted if it was
/// winding down after a shutdown.
fn finished(engine: &Engine) -> Ending {
    if engine.winding_down() {
        Ending::Interrupted
    } else {
        Ending::Complete
    }
}
