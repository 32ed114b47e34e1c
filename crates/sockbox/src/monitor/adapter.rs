//! The one place that knows the ping engine's interface: it opens the
//! sockets of a probe group, runs the engine on a group's targets for
//! ever, and turns engine events into per-target observations. Everything
//! else in the monitor sees only [`ProbeSettings`], [`ProbeTarget`] and
//! [`TargetCells`].

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use sockbox_wire::icmp::Family;

use super::MonitorError;
use super::metrics::{Buckets, ErrorKind, Globals, TargetCells};
use super::shard::Shard;
use crate::Shutdown;
use crate::ping::engine::{Incoming, IncomingKind};
use crate::ping::{
    Event, FamilySockets, IcmpKind, IcmpTransport, IterSource, Mode, OpenError, PingConfig,
    SendReport, SocketChoice, SocketOptions, Target, Transport,
};

/// What decides how a group's targets are probed (groups with equal
/// settings share one engine and its sockets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSettings {
    /// Time between two probes to one target.
    pub interval: Duration,
    /// Reply timeout.
    pub timeout: Duration,
    /// Echo data bytes.
    pub size: usize,
    /// Source address.
    pub source: Option<IpAddr>,
    /// Interface.
    pub interface: Option<String>,
    /// TTL / hop limit.
    pub ttl: Option<u32>,
    /// Type of service byte.
    pub tos: Option<u8>,
}

/// A target as the engine probes it.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// Where probes go.
    pub addr: IpAddr,
    /// Where what happens is counted.
    pub cells: Arc<TargetCells>,
}

/// The addresses of a range word (`10.0.0.0/24`, `10.0.0.1-10.0.0.9`)
/// that belong to `shard`, refusing a share of more than `room` (and a
/// range of more than `room` times the shard count before expanding it).
pub fn expand_range(word: &str, room: usize, shard: Shard) -> Result<Vec<IpAddr>, String> {
    let range = crate::ping::targets::parse_range(word).map_err(|e| e.to_string())?;
    // Each shard takes about 1/N of a range: the range may be N times the
    // room (and what this shard takes is counted against the room too).
    let most = room as u128 * u128::from(shard.count());
    if range.len() > most {
        return Err(format!(
            "{} addresses is more than the {most} a prober with {room} targets still to take can \
             split among {} shards",
            range.len(),
            shard.count()
        ));
    }
    let mut owned = Vec::new();
    for a in range {
        if shard.owns(&a.to_string()) {
            if owned.len() == room {
                return Err(format!(
                    "this shard's share of {word} is more than the {room} targets one prober may \
                     still take"
                ));
            }
            owned.push(a);
        }
    }
    Ok(owned)
}

/// Open the sockets for `settings`, for the families wanted.
pub fn open(
    settings: &ProbeSettings,
    v4: bool,
    v6: bool,
    choice: SocketChoice,
) -> Result<Probe, MonitorError> {
    let opts = SocketOptions {
        ttl: settings.ttl,
        device: settings.interface.clone(),
        source: settings.source,
        tos: settings.tos,
        // Each probe's send time from the kernel: exact RTTs however many
        // probes leave together.
        tx_timestamps: true,
        // Room for a second of replies from many targets.
        recv_buffer: 8 << 20,
        send_buffer: 4 << 20,
        ..SocketOptions::default()
    };
    let opened = crate::ping::socket::open(choice, v4, v6, &opts, 1);
    let take = |r: Result<FamilySockets, OpenError>| match r {
        Ok(s) => Ok(Some(s)),
        Err(OpenError::NotWanted) => Ok(None),
        Err(e) => Err(MonitorError::Open(e.to_string())),
    };
    let v4 = take(opened.v4)?;
    let v6 = take(opened.v6)?;
    let max_packet = settings.size + 8 + 60;
    let inner = IcmpTransport::new(v4, v6, max_packet).map_err(MonitorError::Register)?;
    Ok(Probe { inner })
}

/// A probe group's open sockets.
#[derive(Debug)]
pub struct Probe {
    inner: IcmpTransport,
}

/// The transport with the prober's own counters on the way through.
struct Counting<'a> {
    inner: &'a mut IcmpTransport,
    globals: &'a Globals,
}

impl Transport for Counting<'_> {
    fn kind(&self, family: Family) -> Option<IcmpKind> {
        self.inner.kind(family)
    }

    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        report: &mut SendReport,
    ) -> io::Result<()> {
        let before = report.failed.len();
        let r = self.inner.send(family, packets, dests, report);
        if r.is_ok() {
            let refused = report.failed.len() - before;
            self.globals
                .packets_sent
                .fetch_add((packets.len() - refused) as u64, Relaxed);
        }
        r
    }

    fn send_window(&self) -> usize {
        self.inner.send_window()
    }

    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize> {
        // Transmit timestamps come back as messages too: not received packets.
        let mut packets = 0u64;
        let r = self.inner.recv(family, &mut |inc| {
            if inc.kind != IncomingKind::SendStamp {
                packets += 1;
            }
            f(inc);
        });
        match &r {
            Ok(_) => {
                self.globals.packets_received.fetch_add(packets, Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                self.globals.receive_errors.fetch_add(1, Relaxed);
            }
        }
        r
    }

    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        self.inner.readable()
    }
}

/// The longest a group waits, on a new target list, for its probes in
/// flight to be answered before it starts again.
const SETTLE_MAX: Duration = Duration::from_millis(500);

/// Probe `targets` every `settings.interval` until `stop` fires, counting
/// into their cells; after `stop`, the probes in flight may still be
/// answered or time out (for at most [`SETTLE_MAX`]) before it returns. The first round is spread evenly over 4/5 of the
/// interval; the pace leaves a fifth of headroom, so wake-ups that come
/// late (a busy machine) never stretch a round beyond the interval.
pub async fn run(
    probe: &mut Probe,
    settings: &ProbeSettings,
    targets: &[ProbeTarget],
    stop: &Shutdown,
    buckets: &Buckets,
    globals: &Globals,
) -> Result<(), MonitorError> {
    let n = u32::try_from(targets.len().max(1)).unwrap_or(u32::MAX);
    let cfg = PingConfig {
        mode: Mode::Forever,
        interval: settings.interval * 4 / 5 / n,
        period: settings.interval,
        timeout: settings.timeout,
        payload_len: settings.size,
        deadline: None,
        // A new target list lets the probes in flight settle, so the
        // requests and losses exported add up to the packets sent, but for
        // a short while only: probing waits meanwhile. What a live target
        // answers comes in well within it; what is still out then (a silent
        // target's probe) is left uncounted.
        settle_on_stop: Some(settings.timeout.min(SETTLE_MAX)),
        ..PingConfig::default()
    };
    // The engine numbers targets in the order it takes them: ours.
    let list: Vec<Target> = targets.iter().map(|t| Target::addr(t.addr)).collect();
    let mut source = IterSource(list.into_iter());
    let cell = |i: u64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| targets.get(i))
            .map(|t| &*t.cells)
    };
    let mut obs = |ev: &Event<'_>| match ev {
        Event::Reply(r) => {
            if let Some(c) = cell(r.target.index) {
                if r.duplicate {
                    c.duplicate();
                } else {
                    c.reply(buckets, r.rtt, r.ttl);
                }
            }
        }
        Event::Timeout { target, .. } => {
            if let Some(c) = cell(target.index) {
                c.lost();
            }
        }
        Event::Late { target, .. } => {
            // Counted as they come: a run of Mode::Forever ends only on a
            // reload or shutdown.
            globals.late_replies.fetch_add(1, Relaxed);
            if let Some(c) = cell(target.index) {
                c.late();
            }
        }
        Event::Error(e) => {
            if let Some(c) = cell(e.target.index) {
                c.icmp_error(ErrorKind::of(e.message));
            }
        }
        Event::SendFailed { target, .. } => {
            if let Some(c) = cell(target.index) {
                c.send_error();
            }
        }
        Event::Unresolved { .. } | Event::Done { .. } => {}
    };
    let mut transport = Counting {
        inner: &mut probe.inner,
        globals,
    };
    crate::ping::run(&cfg, &mut source, &mut transport, stop, &mut obs)
        .await
        .map_err(|e| MonitorError::Probe(e.to_string()))?;
    Ok(())
}
