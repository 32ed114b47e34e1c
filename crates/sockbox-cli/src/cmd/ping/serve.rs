//! `sockbox ping --serve ADDR:PORT`: the long-running Prometheus prober.
//! The targets and probe settings come from ping's own flags (one group)
//! and from `--config` (smokeping_prober's YAML file, re-read on SIGHUP);
//! the prober runs on the daemon layer and serves `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sockbox::monitor::http::MetricsServer;
use sockbox::monitor::{
    Buckets, Group, Metrics, Monitor, MonitorError, MonitorOptions, Network, Shard, config,
};
use std::sync::Arc;

use sockbox::net::{Bind, ServerEvent, ServerOptions};
use sockbox::ping::SocketChoice;

use super::opts::Opts;
use crate::cmd::serve::{DaemonArgs, path_arg, serve_with};
use crate::exit::{SUCCESS, usage};

/// Long help of `--serve`.
pub const SERVE_HELP: &str = "\
Run as a Prometheus prober serving /metrics on ADDR:PORT (`:9374` for every address) instead
of a ping run: every target is probed every -i (default 1s, a bare number is seconds; or -p,
where a bare number is milliseconds, as fping) for ever, and /metrics serves smokeping_prober's metrics (smokeping_requests_total, smokeping_response_duration_seconds, smokeping_response_ttl,
smokeping_response_duplicates_total, smokeping_send_errors_total, smokeping_receive_errors_total;
labels host, ip, source) plus sockbox_target_up, sockbox_target_lost_total,
sockbox_target_icmp_errors_total{type}, sockbox_target_resolve_errors_total and the prober's own
sockbox_packets_sent_total / sockbox_packets_received_total. A probe counts in
smokeping_requests_total once answered or timed out (-W in seconds or -t in milliseconds,
default: the interval, at least 1s).
Targets: the command line (hosts, addresses, ranges; -f FILE) and --config FILE, a
smokeping_prober YAML file (groups with hosts, interval, network ip/ip4/ip6, size, source, tos,
labels; sockbox adds files, interface, timeout, ttl). SIGHUP re-reads the files and looks names
up again, keeping the counters of targets that stay; names are also looked up every
--resolve-every. --shard I/N keeps the targets whose FNV-1a hash falls in share I of N, so N
probers split one list. Example:
  sockbox ping --serve 127.0.0.1:9374 -g 192.0.2.0/24 --config /etc/sockbox/targets.yml --daemon";

/// Flags of the prober mode.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Prober (--serve)")]
pub struct ServeArgs {
    /// Run as a Prometheus prober serving /metrics on ADDR:PORT (`:9374` for every address).
    #[arg(long, value_name = "ADDR:PORT", long_help = SERVE_HELP)]
    pub serve: Option<String>,
    /// Target groups from a smokeping_prober YAML file (re-read on SIGHUP).
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub config: Option<PathBuf>,
    /// Probe only share I of N of the targets (stable FNV-1a hash of each target).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// RTT histogram buckets in seconds, comma-separated (default: smokeping_prober's).
    #[arg(long, value_name = "LIST")]
    pub buckets: Option<String>,
    /// How often names are looked up again (also on SIGHUP).
    #[arg(long, value_name = "DUR", value_parser = crate::input::duration)]
    pub resolve_every: Option<Duration>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

impl ServeArgs {
    /// True when a prober-only flag was given.
    pub fn any(&self) -> bool {
        let d = &self.daemon;
        self.serve.is_some()
            || self.config.is_some()
            || self.shard.is_some()
            || self.buckets.is_some()
            || self.resolve_every.is_some()
            || d.daemon
            || d.pid_file.is_some()
            || d.user.is_some()
            || d.group.is_some()
            || d.chroot.is_some()
            || d.log_file.is_some()
            || d.notify
    }
}

/// `ADDR:PORT`, `[V6]:PORT`, `:PORT` (every address) or `NAME:PORT`.
fn listen_on(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bad = || {
        usage(format!(
            "--serve {text:?}: expected ADDR:PORT, [V6ADDR]:PORT or :PORT"
        ))
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = (!host.is_empty()).then_some(host);
    sockbox::net::listen_addr(host, port, sockbox::net::Family::Any)
        .map_err(|e| usage(format!("--serve {text:?}: {e}")))
}

/// A ping duration flag: with a unit, or a bare number of `bare`.
fn duration_flag(
    flag: &str,
    v: Option<&String>,
    bare: Duration,
) -> anyhow::Result<Option<Duration>> {
    v.map(|s| super::plan::parse_duration(flag, s, bare))
        .transpose()
}

/// A `-O` value: decimal or `0x` hex, 0 to 255.
fn tos_flag(s: &str) -> anyhow::Result<u8> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| usage(format!("-O {s:?}: expected 0 to 255, decimal or 0xNN")))
}

/// Refuse ping flags that mean nothing to a prober.
fn refuse_run_flags(o: &Opts) -> anyhow::Result<()> {
    for (given, flag) in [
        (o.count.is_some(), "-c"),
        (o.vcount.is_some(), "-C"),
        (o.deadline.is_some(), "-w"),
        (o.json, "--json"),
        (o.alive, "-a"),
        (o.unreachable, "-u"),
        (o.rate.is_some(), "--rate"),
        (o.squiet.is_some(), "-Q"),
        (o.reachable.is_some() || o.fast_reachable.is_some(), "-x/-X"),
    ] {
        if given {
            return Err(usage(format!(
                "{flag} does not go with --serve: the prober probes every target every -i for \
                 ever and reports through /metrics"
            )));
        }
    }
    if o.file.as_deref().is_some_and(|f| f.as_os_str() == "-") {
        return Err(usage(
            "-f -: with --serve, targets come from files that SIGHUP re-reads, not stdin",
        ));
    }
    Ok(())
}

/// The group ping's own flags describe (`None` without targets).
fn flag_group(o: &Opts) -> anyhow::Result<Option<Group>> {
    refuse_run_flags(o)?;
    if o.targets.is_empty() && o.file.is_none() {
        return Ok(None);
    }
    let mut g = Group {
        hosts: o.targets.clone(),
        files: o
            .file
            .iter()
            .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
            .collect(),
        size: o.size.or(o.fping_size).unwrap_or(56),
        ttl: o.ttl.or(o.fping_ttl),
        tos: o.tos.as_deref().map(tos_flag).transpose()?,
        ..Group::default()
    };
    // The units ping's help gives: -p and -t as fping (a bare number is
    // milliseconds), -i and -W as ping (seconds).
    let (secs, millis) = (Duration::from_secs(1), Duration::from_millis(1));
    let interval = duration_flag("-p", o.period.as_ref(), millis)?.or(duration_flag(
        "-i",
        o.interval.as_ref(),
        secs,
    )?);
    if let Some(i) = interval {
        g.interval = i;
    }
    g.timeout = duration_flag("-W", o.timeout.as_ref(), secs)?.or(duration_flag(
        "-t",
        o.fping_timeout.as_ref(),
        millis,
    )?);
    g.network = if o.ipv4 {
        Network::V4
    } else if o.ipv6 {
        Network::V6
    } else {
        Network::Any
    };
    if let Some(i) = &o.interface {
        match i.parse() {
            Ok(a) => g.source = Some(a),
            Err(_) => g.interface = Some(i.clone()),
        }
    }
    if let Some(s) = &o.source {
        g.source = Some(
            s.parse()
                .map_err(|_| usage(format!("-S {s:?}: expected an IP address")))?,
        );
    }
    g.validate(1)
        .map_err(|e| usage(format!("{e} (from the command line)")))?;
    Ok(Some(g))
}

/// Every group: the command line's, then the configuration file's.
fn load(cli: Option<&Group>, file: Option<&PathBuf>) -> Result<Vec<Group>, MonitorError> {
    let mut groups: Vec<Group> = cli.cloned().into_iter().collect();
    if let Some(f) = file {
        groups.extend(config::load_config(f)?);
    }
    Ok(groups)
}

fn monitor_err(e: MonitorError) -> anyhow::Error {
    match e {
        MonitorError::Open(_) | MonitorError::Register(_) | MonitorError::Probe(_) => {
            anyhow::Error::new(e)
        }
        other => usage(other.to_string()),
    }
}

/// Run the prober.
pub fn run(o: &Opts, s: &ServeArgs) -> anyhow::Result<u8> {
    let Some(addr) = s.serve.as_deref() else {
        return Err(usage(
            "--config, --shard, --buckets, --resolve-every and the daemon flags need --serve ADDR:PORT",
        ));
    };
    let addr = listen_on(addr)?;
    let cli = flag_group(o)?;
    let buckets = match &s.buckets {
        Some(b) => Buckets::parse(b).map_err(|e| usage(format!("--buckets: {e}")))?,
        None => Buckets::default(),
    };
    let socket = match o.socket.as_str() {
        "dgram" => SocketChoice::Dgram,
        "raw" => SocketChoice::Raw,
        _ => SocketChoice::Auto,
    };
    let options = MonitorOptions {
        shard: s.shard.unwrap_or_default(),
        resolve_every: s.resolve_every.unwrap_or(Duration::from_secs(300)),
        socket,
        ..MonitorOptions::default()
    };
    let file = s.config.clone();
    let groups = load(cli.as_ref(), file.as_ref()).map_err(monitor_err)?;
    if groups.is_empty() {
        return Err(usage(
            "no targets: give hosts, addresses or ranges, -f FILE, or --config FILE",
        ));
    }
    let grace = s.daemon.grace;
    serve_with(&s.daemon, tracing::Level::INFO, |mut ctx| async move {
        let metrics = Metrics::new(buckets);
        let mut monitor = Monitor::new(metrics.clone(), options);
        monitor.start(groups).await.map_err(monitor_err)?;
        // Scrapes come every few seconds: connections are logged at debug.
        let logged = sockbox::net::log_events();
        let events: sockbox::event::Events<ServerEvent> =
            Arc::new(move |e: &ServerEvent| match e {
                ServerEvent::Accepted { .. } | ServerEvent::Closed { .. } => {
                    tracing::debug!("{e:?}");
                }
                other => logged.on_event(other),
            });
        let opts = ServerOptions {
            stats: ctx.stats.clone(),
            grace,
            events,
            ..ServerOptions::default()
        };
        let http = MetricsServer::bind(&Bind::new(addr), metrics, opts)
            .map_err(|e| anyhow::Error::new(e).context(format!("--serve {addr}")))?;
        tracing::info!(listen = %http.local_addr(), "prober serving /metrics");
        ctx.ready()?;
        let serving = tokio::spawn(http.run(ctx.shutdown.clone()));
        let reload = std::mem::replace(&mut ctx.reload, sockbox::daemon::Reload::never());
        monitor
            .run(
                move || load(cli.as_ref(), file.as_ref()),
                reload,
                ctx.shutdown.clone(),
            )
            .await;
        let _ = serving.await;
        Ok(SUCCESS)
    })
}
