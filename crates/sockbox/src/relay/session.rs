//! The async engine: one relayed connection between a [`LocalIn`]/[`LocalOut`]
//! pair and a [`RemoteIn`]/[`RemoteOut`] pair, under the same lifecycle rules
//! as the blocking pump.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::dump::{Dir, Dump, DumpDir};
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::event::{RelayEvent, log_events};
use super::life::{Activity, FINISH_IDLE, FINISH_MAX, Life, Step};
use super::{Flow, Outcome, Peer, RelayError, RelayOptions, Report, peer_error};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::event::Events;
use sockbox_wire::crlf::Crlf;

/// Everything one session moves data between.
pub(crate) struct Ends {
    pub(crate) local_in: LocalIn,
    pub(crate) local_out: LocalOut,
    pub(crate) remote_in: RemoteIn,
    pub(crate) remote_out: RemoteOut,
    pub(crate) peer: Peer,
    /// When the peer's EOF ends the session, still send what the local
    /// input already holds (off for a client sharing standard input: ncat
    /// drops such a client at its EOF, freeing its slot at once).
    pub(crate) finish_input: bool,
}

/// Extras shared by the sessions of a server.
#[derive(Clone)]
pub(crate) struct Extras {
    pub(crate) dump: Option<Dump>,
    pub(crate) stats: Option<ServerStats>,
    pub(crate) events: Events<RelayEvent>,
}

impl Default for Extras {
    fn default() -> Self {
        Self {
            dump: None,
            stats: None,
            events: log_events(),
        }
    }
}

/// Which end of a direction failed.
enum DirEnd {
    Read(io::Error),
    Write(io::Error),
}

/// Byte counts and the activity clock of one session.
struct Meter<'a> {
    sent: AtomicU64,
    received: AtomicU64,
    activity: Activity,
    stats: Option<&'a ServerStats>,
}

impl Meter<'_> {
    fn account(&self, n: usize, inbound: bool) {
        let counter = if inbound { &self.received } else { &self.sent };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        self.activity.touch();
        if let Some(s) = self.stats {
            if inbound {
                s.add_in(n as u64);
            } else {
                s.add_out(n as u64);
            }
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Local input to the peer until local EOF; then the half-close, if asked.
async fn send_loop(
    local_in: &mut LocalIn,
    remote_out: &mut RemoteOut,
    mut dump: Option<DumpDir>,
    meter: &Meter<'_>,
    (cap, half_close, crlf): (usize, bool, bool),
) -> Result<(), DirEnd> {
    let mut buf = Vec::with_capacity(cap);
    let mut crlf = crlf.then(Crlf::new);
    let mut converted = Vec::new();
    loop {
        let n = local_in
            .read_chunk(&mut buf, cap)
            .await
            .map_err(DirEnd::Read)?;
        if n == 0 {
            break;
        }
        let out = match &mut crlf {
            Some(c) => {
                converted.clear();
                c.convert(&buf, &mut converted);
                &converted
            }
            None => &buf,
        };
        remote_out.write_all(out).await.map_err(DirEnd::Write)?;
        if let Some(d) = &mut dump {
            d.record(out);
        }
        meter.account(out.len(), false);
    }
    if half_close {
        remote_out.close().await;
    }
    Ok(())
}

/// The peer's data (after `first`, already received) to the local output
/// until the peer's EOF; then the local output is closed.
async fn recv_loop(
    remote_in: &mut RemoteIn,
    local_out: &mut LocalOut,
    mut dump: Option<DumpDir>,
    meter: &Meter<'_>,
    (cap, first): (usize, Option<&[u8]>),
) -> Result<(), DirEnd> {
    if let Some(first) = first {
        if let Some(d) = &mut dump {
            d.record(first);
        }
        meter.account(first.len(), true);
        local_out.write_all(first).await.map_err(DirEnd::Write)?;
    }
    let mut buf = Vec::with_capacity(cap);
    loop {
        let n = remote_in
            .read_chunk(&mut buf, cap)
            .await
            .map_err(DirEnd::Read)?;
        if n == 0 {
            break;
        }
        if let Some(d) = &mut dump {
            d.record(&buf);
        }
        meter.account(n, true);
        local_out.write_all(&buf).await.map_err(DirEnd::Write)?;
    }
    local_out.close().await;
    Ok(())
}

/// Run one session until the rules end it or `stop` fires.
pub(crate) async fn run(
    ends: Ends,
    opts: &RelayOptions,
    extras: &Extras,
    initial_rx: Option<&[u8]>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let Ends {
        mut local_in,
        mut local_out,
        mut remote_in,
        mut remote_out,
        peer,
        finish_input,
    } = ends;
    let datagram = remote_out.is_datagram();
    let cap = opts.buffer_size.clamp(16 * 1024, 256 * 1024);
    let meter = Meter {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        activity: Activity::new(),
        stats: extras.stats.as_ref(),
    };
    let dump = extras.dump.as_ref();
    if let Some(d) = dump {
        d.opened(&peer);
    }
    if opts.flow == Flow::SendOnly {
        local_out = LocalOut::Discard;
    }
    let tx_dump = dump.map(|d| d.direction(&peer, Dir::Sent));
    let rx_dump = dump.map(|d| d.direction(&peer, Dir::Received));
    let tx = send_loop(
        &mut local_in,
        &mut remote_out,
        tx_dump,
        &meter,
        (cap, opts.half_close, opts.crlf),
    );
    let rx = recv_loop(
        &mut remote_in,
        &mut local_out,
        rx_dump,
        &meter,
        (cap, initial_rx),
    );
    tokio::pin!(tx, rx);
    let result = supervise(tx, rx, opts, &meter, (&peer, datagram, finish_input), stop).await;
    let (sent, received) = meter.counts();
    if let Some(d) = dump {
        d.closed(&peer, sent, received);
    }
    result.map(|outcome| Report {
        outcome,
        sent,
        received,
    })
}

/// Drive both directions and the timers until the rules end the session.
async fn supervise<T, R>(
    mut tx: Pin<&mut T>,
    mut rx: Pin<&mut R>,
    opts: &RelayOptions,
    meter: &Meter<'_>,
    (peer, datagram, finish_input): (&Peer, bool, bool),
    stop: &Shutdown,
) -> Result<Outcome, RelayError>
where
    T: Future<Output = Result<(), DirEnd>>,
    R: Future<Output = Result<(), DirEnd>>,
{
    let mut life = Life::new(opts);
    let mut tx_done = opts.flow == Flow::RecvOnly;
    let mut rx_done = false;
    let mut output_closed = false;
    loop {
        let deadline = life.deadline(meter.activity.last());
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            r = tx.as_mut(), if !tx_done => {
                tx_done = true;
                match r {
                    Ok(()) => life.local_eof(Instant::now()),
                    Err(DirEnd::Read(e)) => return Err(RelayError::LocalRead(e)),
                    Err(DirEnd::Write(e)) => {
                        return Err(peer_error(peer, e, datagram, true, meter.counts()));
                    }
                }
            }
            r = rx.as_mut(), if !rx_done => {
                rx_done = true;
                match r {
                    Ok(()) => life.remote_eof(),
                    Err(DirEnd::Read(e)) => {
                        return Err(peer_error(peer, e, datagram, false, meter.counts()));
                    }
                    Err(DirEnd::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                        // The program stopped reading; let it finish writing.
                        output_closed = true;
                        Step::Continue
                    }
                    Err(DirEnd::Write(e)) => return Err(RelayError::LocalWrite(e)),
                }
            }
            () = timer => life.on_timer(Instant::now(), meter.activity.last()),
            () = stop.wait() => Step::Finish(Outcome::Stopped),
        };
        if let Step::Finish(outcome) = step {
            if outcome == Outcome::Done && !tx_done && finish_input {
                finish_sending(tx, meter).await;
            }
            return Ok(outcome);
        }
        if tx_done && rx_done {
            return Ok(if output_closed {
                Outcome::OutputClosed
            } else {
                Outcome::Done
            });
        }
    }
}

/// The peer's EOF ended a session whose local input is still open: let
/// what that input already holds reach the peer first, until it pauses
/// for [`FINISH_IDLE`] (or for at most [`FINISH_MAX`]).
async fn finish_sending<T: Future>(mut tx: Pin<&mut T>, meter: &Meter<'_>) {
    let give_up = Instant::now() + FINISH_MAX;
    let mut last = meter.counts().0;
    loop {
        let wait = FINISH_IDLE.min(give_up.saturating_duration_since(Instant::now()));
        if tokio::time::timeout(wait, tx.as_mut()).await.is_ok() {
            return;
        }
        let now = meter.counts().0;
        if now == last || Instant::now() >= give_up {
            return;
        }
        last = now;
    }
}
