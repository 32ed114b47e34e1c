//! ICMP echo to many targets (the engine behind `sockbox ping`).
//!
//! * the unprivileged datagram socket first and a raw socket as fallback
//!   ([`socket::open`]); one socket per address family for all targets, or
//!   for big sweeps on datagram sockets one per core, each sent on by its
//!   own thread (the kernel serializes senders on one socket);
//! * every probe carries a per-process random token and a 32-bit sequence
//!   in its data ([`probe`]), so replies are matched exactly, for any number
//!   of targets and runs of any length; foreign replies, duplicates, bad
//!   checksums, late and corrupt replies are counted apart ([`Counters`]);
//! * round-trip times from kernel receive timestamps (`SO_TIMESTAMPNS`)
//!   and a send time of each probe's own: the kernel's transmit timestamp
//!   (`SO_TIMESTAMPING`) when asked for, else a clock read around each
//!   `sendmmsg` call, divided among its packets;
//! * targets streamed from a [`TargetSource`] (ranges, files, pipes of any
//!   length): memory follows the probes in flight, not the target count;
//! * batched `sendmmsg`/`recvmmsg`, split over the cores, so a /16 sweep
//!   takes a fraction of a second.
//!
//! The logic is in [`engine`] (no I/O, tested with made-up packets) and
//! [`driver`] (the async loop, tested against an in-memory network through
//! the [`Transport`] trait).
//!
//! Two entry points:
//!
//! * [`run`]: a sweep or a ping run over targets from a [`TargetSource`],
//!   reporting to an [`Observer`] (also for runs that never end:
//!   [`Mode::Forever`]);
//! * [`wait_until_up`]: probe one address until it answers or time runs out
//!   (used by `sockbox wake --wait`).

pub mod config;
pub mod driver;
pub mod engine;
pub mod event;
mod flight;
mod lanes;
#[cfg(test)]
mod mock;
pub mod probe;
pub mod socket;
pub mod source;
mod stash;
pub mod stats;
pub mod targets;
#[cfg(test)]
mod tests;
mod transport;

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::sys::ping::SetupError;
pub use crate::sys::ping::{IcmpKind, SocketOptions, drop_capabilities};
pub use crate::sys::ping_io::SendFailure;
pub use config::{DEFAULT_MAX_ACTIVE, DEFAULT_MAX_IN_FLIGHT};
pub use driver::Ending;
pub use engine::{
    ConfigError, Counters, EngineConfig, Event, IcmpError, Incoming, IncomingKind, Mode, Observer,
    QueuedIcmpError, Reply, Target, TargetRef, Totals,
};
pub use socket::{
    FamilySockets, IcmpTransport, MAX_LANES, OpenError, OpenSockets, SendReport, SendSpan,
    SocketChoice, Transport,
};
pub use source::{ChannelSource, IterSource, Next, TargetSource};
pub use stats::{Rtt, TargetStats};
pub use targets::{AddrRange, FamilyPref, Spec};

use crate::Shutdown;

/// Errors of the ping module; each names the input and, where there is
/// one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// A target word that is neither an address nor a host name.
    #[error("bad target {0:?}: expected an IP address or a host name")]
    BadTarget(String),
    /// A range that cannot be expanded.
    #[error("bad range {0:?}: {1}")]
    BadRange(String, String),
    /// A host name that does not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    /// Settings that do not fit together.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No ICMP socket could be opened for a family that has targets.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Registering the socket with the runtime failed.
    #[error("cannot watch the ICMP socket: {0}")]
    Register(io::Error),
    /// Waiting on the sockets failed.
    #[error("waiting for ICMP replies failed: {0}")]
    Io(io::Error),
}

/// Settings of a ping run.
#[derive(Debug, Clone, PartialEq)]
pub struct PingConfig {
    /// How many probes per target.
    pub mode: Mode,
    /// Minimum gap between any two probes (zero: as fast as possible).
    pub interval: Duration,
    /// Gap between two probes to one target.
    pub period: Duration,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Echo data bytes per probe (at least [`probe::ID_LEN`]).
    pub payload_len: usize,
    /// Stop everything after this long (`ping -w`).
    pub deadline: Option<Duration>,
    /// Most probes in flight at once (see [`EngineConfig::max_in_flight`]).
    pub max_in_flight: usize,
    /// Most targets probed at once (see [`EngineConfig::max_active`]).
    pub max_active: usize,
    /// Random-looking echo data (fping -R).
    pub random_payload: bool,
    /// On `shutdown`, send nothing more but let the probes in flight be
    /// answered or time out, for at most this long, before returning, so
    /// the probes sent are counted (a prober restarting with new targets);
    /// those still unsettled then are left out. `None`: stop at once,
    /// leaving every probe in flight uncounted (Ctrl-C).
    pub settle_on_stop: Option<Duration>,
}

impl Default for PingConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Count(1),
            interval: Duration::from_millis(10),
            period: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            payload_len: 56,
            deadline: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_active: DEFAULT_MAX_ACTIVE,
            random_payload: false,
            settle_on_stop: None,
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Totals over every target (per-target results went out in
    /// [`Event::Done`]).
    pub totals: Totals,
    /// Everything that was not a fresh reply.
    pub counters: Counters,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Why it ended.
    pub ending: Ending,
    /// Every target of the source was taken in (false when stopped early).
    pub source_ended: bool,
    /// Places of the in-flight ring at the end (its memory is this times
    /// about 32 bytes).
    pub ring_capacity: usize,
}

/// Ping the targets of `source` over `transport` as `cfg` says, reporting
/// to `obs`, until done, the deadline, or `shutdown`.
pub async fn run<T: Transport, S: TargetSource>(
    cfg: &PingConfig,
    source: &mut S,
    transport: &mut T,
    shutdown: &Shutdown,
    obs: &mut impl Observer,
) -> Result<Outcome, PingError> {
    run_with_token(cfg, source, transport, shutdown, obs, rand::random()).await
}

async fn run_with_token<T: Transport, S: TargetSource>(
    cfg: &PingConfig,
    source: &mut S,
    transport: &mut T,
    shutdown: &Shutdown,
    obs: &mut impl Observer,
    token: u64,
) -> Result<Outcome, PingError> {
    let start = Instant::now();
    let ecfg = EngineConfig {
        mode: cfg.mode,
        interval: cfg.interval,
        period: cfg.period,
        timeout: cfg.timeout,
        payload_len: cfg.payload_len,
        token,
        max_in_flight: cfg.max_in_flight,
        max_active: cfg.max_active,
        random_payload: cfg.random_payload,
    };
    let mut engine = engine::Engine::new(ecfg, start)?;
    // A deadline too far to represent is no deadline at all.
    let deadline = cfg.deadline.and_then(|d| start.checked_add(d));
    let ending = driver::drive(
        &mut engine,
        source,
        transport,
        shutdown,
        deadline,
        cfg.settle_on_stop,
        obs,
    )
    .await
    .map_err(PingError::Io)?;
    Ok(Outcome {
        totals: engine.totals(),
        counters: engine.counters(),
        elapsed: start.elapsed(),
        ending,
        ring_capacity: engine.ring_capacity(),
        source_ended: engine.source_ended(),
    })
}

/// Settings for [`wait_until_up`].
#[derive(Debug, Clone, PartialEq)]
pub struct WaitConfig {
    /// Gap between probes.
    pub interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Which sockets to try.
    pub socket: SocketChoice,
    /// Socket options (interface, TTL…).
    pub options: SocketOptions,
}

impl Default for WaitConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            socket: SocketChoice::Auto,
            options: SocketOptions::default(),
        }
    }
}

/// Probe `addr` every `cfg.interval` until it answers (returns the first
/// round-trip time), `cfg.timeout` passes (returns `None`) or `shutdown`
/// fires (returns `None`). Opens its own socket.
pub async fn wait_until_up(
    addr: IpAddr,
    cfg: &WaitConfig,
    shutdown: &Shutdown,
) -> Result<Option<Duration>, PingError> {
    let opened = socket::open(cfg.socket, addr.is_ipv4(), addr.is_ipv6(), &cfg.options, 1);
    let (v4, v6) = if addr.is_ipv4() {
        (Some(opened.v4?), None)
    } else {
        (None, Some(opened.v6?))
    };
    let mut transport = IcmpTransport::new(v4, v6, 1024).map_err(PingError::Register)?;
    wait_on(addr, cfg, &mut transport, shutdown).await
}

/// [`wait_until_up`] over sockets opened beforehand (for callers that open
/// sockets, then drop privileges, then start the runtime): open with
/// [`socket::open`], wrap with [`IcmpTransport::new`], then call this.
/// `cfg.socket` and `cfg.options` are not used here.
pub async fn wait_on<T: Transport>(
    addr: IpAddr,
    cfg: &WaitConfig,
    transport: &mut T,
    shutdown: &Shutdown,
) -> Result<Option<Duration>, PingError> {
    let interval = cfg.interval.max(Duration::from_millis(1));
    // Float-to-int casts saturate; the +1 must too.
    let count =
        ((cfg.timeout.as_secs_f64() / interval.as_secs_f64()).ceil() as u32).saturating_add(1);
    let run_cfg = PingConfig {
        mode: Mode::Count(count.max(1)),
        interval: Duration::ZERO,
        period: interval,
        timeout: interval.max(Duration::from_secs(1)).min(cfg.timeout),
        payload_len: 56,
        deadline: Some(cfg.timeout),
        ..PingConfig::default()
    };
    let stop = shutdown.child();
    let mut first: Option<Duration> = None;
    let mut obs = |ev: &Event<'_>| {
        if let Event::Reply(r) = ev
            && first.is_none()
        {
            first = Some(r.rtt);
            stop.trigger();
        }
    };
    let mut source = IterSource(std::iter::once(Target::addr(addr)));
    run(&run_cfg, &mut source, transport, &stop, &mut obs).await?;
    Ok(first)
}
