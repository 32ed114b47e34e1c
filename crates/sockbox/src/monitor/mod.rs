//! Continuous monitoring: probe groups of targets for ever and export
//! what happens as Prometheus metrics, as smokeping_prober does (same
//! metric names, types, labels and buckets, so its dashboards and alerts
//! work unchanged), for very many targets on one core.
//!
//! - [`config`]: groups of targets (hosts, ranges, files; interval, size,
//!   family, source or interface, labels) and smokeping_prober's YAML file;
//! - [`shard`]: split one list among N probers by a stable hash;
//! - [`metrics`]: per-target counters in atomics, kept across reloads for
//!   the targets that stay; [`series`]: their labels; [`encode`]: the text
//!   exposition;
//! - [`http`]: `/metrics` over HTTP (hyper on the [`net`](crate::net)
//!   accept loop), rendered on a blocking thread from a snapshot of the
//!   counters, in chunks, so a slow scraper never holds up probing;
//! - [`Monitor`]: loads groups, re-resolves names periodically and on
//!   reload, and runs the ping engine per set of probe settings.
//!
//! ```no_run
//! use sockbox::monitor::{Monitor, MonitorOptions, config::Group, metrics::{Buckets, Metrics}};
//! use sockbox::monitor::http::MetricsServer;
//! use sockbox::net::{Bind, ServerOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Metrics::new(Buckets::default());
//! let group = Group { hosts: vec!["127.0.0.1".into()], ..Group::default() };
//! let shutdown = sockbox::Shutdown::new();
//! let mut monitor = Monitor::new(metrics.clone(), MonitorOptions::default());
//! monitor.start(vec![group]).await?; // opens the ICMP sockets
//! let http = MetricsServer::bind(&Bind::new("127.0.0.1:9374".parse()?), metrics, ServerOptions::default())?;
//! let serving = tokio::spawn(http.run(shutdown.clone()));
//! monitor.run(|| Ok(Vec::new()), sockbox::daemon::Reload::never(), shutdown).await;
//! serving.await?;
//! # Ok(()) }
//! ```

mod adapter;
pub mod config;
pub mod encode;
pub mod http;
pub mod metrics;
pub mod plan;
mod prober;
pub mod series;
pub mod shard;

use std::path::PathBuf;
use std::time::Duration;

pub use config::{ConfigError, Group, Network};
pub use metrics::{Buckets, Metrics};
pub use plan::{Resolve, SystemResolver};
pub use shard::{Shard, ShardError};

use crate::Shutdown;
use crate::daemon::Reload;
use crate::event::Events;
use crate::ping::SocketChoice;

/// Errors of the monitor; each names the input and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A target cannot be probed.
    #[error("target group {group}: {target:?}: {what}")]
    Target {
        /// Which group, from 1.
        group: usize,
        /// The target as written.
        target: String,
        /// What is wrong.
        what: String,
    },
    /// A file of targets cannot be read.
    #[error("target group {group}: cannot read the target file {path}: {source}")]
    TargetFile {
        /// Which group, from 1.
        group: usize,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No ICMP socket could be opened (the message says how to fix it).
    #[error("{0}")]
    Open(String),
    /// The sockets could not be registered with the runtime.
    #[error("cannot watch the ICMP sockets: {0}")]
    Register(std::io::Error),
    /// The engine stopped with an error.
    #[error("probing failed: {0}")]
    Probe(String),
}

/// What the monitor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A configuration is in force.
    Loaded {
        /// Targets (series) it has.
        targets: usize,
        /// Probing tasks running.
        probers: usize,
    },
    /// A reload failed; the previous configuration stays.
    LoadFailed {
        /// Why.
        error: String,
    },
    /// A name did not resolve (its last address, if any, is still probed).
    Unresolved {
        /// The name.
        host: String,
        /// Why.
        error: String,
    },
    /// A probing task stopped with an error; it starts again in a second.
    ProberFailed {
        /// Why.
        error: String,
    },
}

/// Events logged with `tracing`.
pub fn log_events() -> Events<MonitorEvent> {
    std::sync::Arc::new(|e: &MonitorEvent| match e {
        MonitorEvent::Loaded { targets, probers } => {
            tracing::info!(targets, probers, "configuration loaded");
        }
        MonitorEvent::LoadFailed { error } => {
            tracing::error!("reload failed, the previous configuration stays: {error}");
        }
        MonitorEvent::Unresolved { host, error } => {
            tracing::warn!(host, "cannot resolve: {error}");
        }
        MonitorEvent::ProberFailed { error } => {
            tracing::error!("{error}; probing again in 1s");
        }
    })
}

/// How the monitor runs.
#[derive(Clone)]
pub struct MonitorOptions {
    /// This prober's share of the targets.
    pub shard: Shard,
    /// How often names are looked up again (also on every reload).
    pub resolve_every: Duration,
    /// Which ICMP sockets to use.
    pub socket: SocketChoice,
    /// Where events go (default: `tracing`).
    pub events: Events<MonitorEvent>,
}

impl Default for MonitorOptions {
    /// Every target, names looked up every 5 minutes, datagram sockets
    /// first, events logged.
    fn default() -> Self {
        Self {
            shard: Shard::all(),
            resolve_every: Duration::from_secs(300),
            socket: SocketChoice::Auto,
            events: log_events(),
        }
    }
}

impl std::fmt::Debug for MonitorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorOptions")
            .field("shard", &self.shard)
            .field("resolve_every", &self.resolve_every)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// The prober: [`start`](Monitor::start) with the first groups (opens the
/// sockets: do it before dropping privileges), then
/// [`run`](Monitor::run) until shutdown.
pub struct Monitor<R: Resolve = SystemResolver> {
    state: prober::State<R>,
    events: Events<MonitorEvent>,
    resolve_every: Duration,
}

impl Monitor<SystemResolver> {
    /// A monitor counting into `metrics`, names looked up by the system.
    pub fn new(metrics: Metrics, options: MonitorOptions) -> Self {
        Self::with_resolver(metrics, options, SystemResolver)
    }
}

impl<R: Resolve> Monitor<R> {
    /// A monitor whose names are looked up by `resolver`.
    pub fn with_resolver(metrics: Metrics, options: MonitorOptions, resolver: R) -> Self {
        let events = options.events.clone();
        let resolve_every = options.resolve_every;
        Self {
            state: prober::State::new(metrics, options, resolver, events.clone()),
            events,
            resolve_every,
        }
    }

    /// Load the first groups and start probing them. Must run inside a
    /// tokio runtime.
    pub async fn start(&mut self, groups: Vec<Group>) -> Result<(), MonitorError> {
        self.state.load(groups).await
    }

    /// Load new groups now (what a reload does); on error the groups in
    /// force stay.
    pub async fn reload(&mut self, groups: Vec<Group>) -> Result<(), MonitorError> {
        self.state.load(groups).await
    }

    /// Probe until `shutdown`: on each `reload` call `load` for the new
    /// groups, and look names up again every `resolve_every`.
    pub async fn run<F>(mut self, mut load: F, mut reload: Reload, shutdown: Shutdown)
    where
        F: FnMut() -> Result<Vec<Group>, MonitorError>,
    {
        let period = self.resolve_every.max(Duration::from_secs(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                () = reload.changed() => {
                    let r = match load() {
                        Ok(groups) => self.state.load(groups).await,
                        Err(e) => {
                            self.state.metrics_loaded(false);
                            Err(e)
                        }
                    };
                    if let Err(e) = r {
                        self.events.on_event(&MonitorEvent::LoadFailed { error: e.to_string() });
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.state.refresh().await {
                        self.events.on_event(&MonitorEvent::LoadFailed { error: e.to_string() });
                    }
                }
            }
        }
        self.state.stop().await;
    }
}
