//! `sockbox ping`: ICMP echo to one target (output like iputils `ping`) or
//! many targets and ranges (output like `fping`), or JSON lines.

mod format;
mod output;
mod progress;
mod serve;

use std::io::BufRead;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use sockbox::Shutdown;
use sockbox::ping::targets::{self, FamilyPref, Spec, Target};
use sockbox::ping::{
    FamilySockets, IcmpTransport, Mode, OpenError, PingConfig, PingError, SocketChoice,
    SocketOptions,
};

use crate::cmd::runtime;
use crate::exit::{PARTIAL, SUCCESS, USAGE, usage};
use output::{Printer, Style};

const AFTER_HELP: &str = "\
One target prints like iputils ping (a line per reply, then statistics); several targets,
ranges (-g) or a file (-f) print like fping. Durations take units (10ms, 1.5s); a bare
number means seconds for -i/-W/-w with one target (ping habits) and milliseconds for
-i/-p/-t with many (fping habits).

Sockets: the unprivileged ICMP datagram socket is tried first (Linux, allowed by
net.ipv4.ping_group_range), then a raw socket (root or CAP_NET_RAW); capabilities are
dropped once the sockets are open. Replies are matched by a random per-run token and a
32-bit sequence in the payload; foreign, duplicate, late and bad-checksum replies are
counted apart (see --json totals).

--json prints one object per line with a \"type\": \"reply\" (target, addr, from, seq, bytes,
ttl, rtt_ms, duplicate), \"timeout\" (target, addr, seq), \"error\" (ICMP error quoting a probe:
from, error), \"send_error\", \"unresolved\" (target, error), then one \"summary\" per target
(sent, received, duplicates, errors, loss_pct, min/avg/max/mdev_ms, alive) and \"totals\"
(targets, alive, unreachable, unresolved, sent, received, counters {foreign, duplicates,
bad_checksum, corrupt, late, errors, malformed}, elapsed_ms, ending, socket_v4/socket_v6).

Examples:
  sockbox ping -c 3 127.0.0.1              # like ping -c 3
  sockbox ping -a -g 192.168.1.0/24        # alive hosts of a subnet, like fping -a -g
  sockbox ping -g 10.0.0.1-10.0.0.50 -r 1  # a dash range, one retry
  sockbox ping -C 5 -q host1 host2         # per-target RTT columns, like fping -C
  sockbox ping -f hosts.txt --json         # one JSON object per event and per target
  sockbox ping -g 127.0.0.0/16 -i 0 -a -q  # sweep 65534 addresses as fast as possible

Exit codes: 0 every target replied; 1 some did not; 2 bad arguments or a name that does
not resolve (as fping); 3 system failure (no ICMP socket: the message says how to fix it).";

/// Arguments of `sockbox ping` (boxed: the option set is large).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    #[command(flatten)]
    opts: Box<Opts>,
    #[command(flatten)]
    serve: Box<serve::ServeArgs>,
}

impl std::ops::Deref for Args {
    type Target = Opts;
    fn deref(&self) -> &Opts {
        &self.opts
    }
}

/// The options of `sockbox ping`.
#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Hosts, addresses, or with -g ranges (CIDR `10.0.0.0/24`, `A-B`, or START END).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from a file, one per line (`-` for stdin; `#` starts a comment).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Treat the targets as ranges: CIDR, A-B, or a START END pair.
    #[arg(short = 'g', long = "generate")]
    pub generate: bool,
    /// Probes per target (default: 1 with many targets until alive, forever with one).
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u32>,
    /// Like -c, then print each target's RTTs in columns (fping -C).
    #[arg(
        short = 'C',
        long = "vcount",
        value_name = "N",
        conflicts_with = "count"
    )]
    pub vcount: Option<u32>,
    /// Gap between any two probes (one target: 1s; many: 10ms).
    #[arg(short = 'i', long = "interval", value_name = "DUR")]
    pub interval: Option<String>,
    /// Probes per second over all targets (instead of -i).
    #[arg(long = "rate", value_name = "PPS", conflicts_with = "interval")]
    pub rate: Option<f64>,
    /// Gap between probes to the same target, many-target mode (default 1000ms).
    #[arg(short = 'p', long = "period", value_name = "DUR")]
    pub period: Option<String>,
    /// Reply timeout, ping style (bare number = seconds; default 10s for one target).
    #[arg(
        short = 'W',
        long = "timeout",
        value_name = "DUR",
        conflicts_with = "fping_timeout"
    )]
    pub timeout: Option<String>,
    /// Reply timeout, fping style (bare number = ms; default 500ms, grows by -B per retry).
    #[arg(short = 't', value_name = "DUR")]
    pub fping_timeout: Option<String>,
    /// Retries per target in the default until-alive mode (fping -r).
    #[arg(short = 'r', long = "retries", value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Timeout multiplier per retry (fping -B).
    #[arg(short = 'B', long = "backoff", value_name = "F", default_value_t = 1.5)]
    pub backoff: f64,
    /// Stop after this long whatever is left (ping -w; bare number = seconds).
    #[arg(short = 'w', long = "deadline", value_name = "DUR")]
    pub deadline: Option<String>,
    /// Echo data bytes per probe (at least 12, for the probe id).
    #[arg(short = 's', long = "size", value_name = "BYTES", default_value_t = 56)]
    pub size: usize,
    /// IP TTL / IPv6 hop limit of the probes.
    #[arg(long = "ttl", value_name = "N")]
    pub ttl: Option<u32>,
    /// Send from this interface name or source address.
    #[arg(short = 'I', long = "interface", value_name = "IFACE|ADDR")]
    pub interface: Option<String>,
    /// Show only targets that are alive.
    #[arg(short = 'a', long = "alive")]
    pub alive: bool,
    /// Show only targets that are unreachable.
    #[arg(short = 'u', long = "unreachable")]
    pub unreachable: bool,
    /// Quiet: no per-probe lines, only summaries.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show the round-trip time of alive targets (fping -e).
    #[arg(short = 'e', long = "elapsed")]
    pub elapsed: bool,
    /// Resolve names to IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Resolve names to IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// One JSON object per line: reply, timeout, error, summary per target, totals.
    #[arg(long = "json")]
    pub json: bool,
    /// Which ICMP socket to use: auto (datagram, then raw), dgram or raw.
    #[arg(long = "socket", value_name = "KIND", default_value = "auto", value_parser = ["auto", "dgram", "raw"])]
    pub socket: String,
    /// Print the socket kinds and the foreign/late/bad-checksum counts to stderr at the end.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

/// A duration flag: with a unit via humantime, bare numbers in `bare` units.
fn parse_duration(flag: &str, s: &str, bare: Duration) -> anyhow::Result<Duration> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        if !v.is_finite() || !(0.0..=1e9).contains(&v) {
            return Err(usage(format!("{flag} {s:?}: out of range")));
        }
        return Ok(bare.mul_f64(v));
    }
    humantime::parse_duration(t).map_err(|e| {
        usage(format!(
            "{flag} {s:?}: {e} (use e.g. 10ms, 1.5s or a bare number)"
        ))
    })
}

/// Read target words from a file or stdin: one per line, `#` comments.
fn read_target_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let src = crate::input::Source::from_arg(Some(path));
    let name = src.name();
    let reader = std::io::BufReader::new(src.open()?);
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(|e| usage(format!("cannot read {name}: {e}")))?;
        let word = line.split('#').next().unwrap_or("").trim();
        out.extend(word.split_whitespace().map(str::to_owned));
    }
    Ok(out)
}

/// Everything decided from the flags, before any socket exists.
struct Plan {
    style: Style,
    cfg: PingConfig,
    /// Address targets in order, names still to resolve (index into targets).
    targets: Vec<Target>,
    names: Vec<(usize, String)>,
    choice: SocketChoice,
    opts: SocketOptions,
    pref: FamilyPref,
}

fn plan(a: &Args) -> anyhow::Result<Plan> {
    let mut words = a.targets.clone();
    if let Some(f) = &a.file {
        words.extend(read_target_file(f)?);
    }
    if words.is_empty() {
        return Err(usage(
            "no targets: give hosts, addresses, -g RANGE or -f FILE",
        ));
    }
    let pref = if a.ipv4 {
        FamilyPref::V4
    } else if a.ipv6 {
        FamilyPref::V6
    } else {
        FamilyPref::Any
    };
    let mut targets = Vec::new();
    let mut names = Vec::new();
    if a.generate {
        let ranges: Vec<String> =
            if words.len() == 2 && !words[0].contains(['/', '-']) && !words[1].contains(['/', '-'])
            {
                vec![format!("{}-{}", words[0], words[1])]
            } else {
                words.clone()
            };
        for r in &ranges {
            let addrs = targets::expand_range(r).map_err(|e| usage(e.to_string()))?;
            targets.extend(addrs.into_iter().map(Target::addr));
        }
    } else {
        for w in &words {
            match targets::parse_spec(w).map_err(|e| usage(e.to_string()))? {
                Spec::Addr(addr) => targets.push(Target::addr(addr)),
                Spec::Name(n) => {
                    names.push((targets.len(), n.clone()));
                    // Placeholder until resolved; the name is kept.
                    targets.push(Target {
                        name: Some(n.into()),
                        addr: IpAddr::from([0, 0, 0, 0]),
                    });
                }
            }
        }
    }
    let many = a.generate
        || a.file.is_some()
        || targets.len() > 1
        || a.alive
        || a.unreachable
        || a.vcount.is_some();
    let style = Style::from_args(a, many);
    let secs = Duration::from_secs(1);
    let millis = Duration::from_millis(1);
    let (bare_i, default_i) = if many {
        (millis, Duration::from_millis(10))
    } else {
        (secs, secs)
    };
    let interval = match (&a.interval, a.rate) {
        (Some(s), _) => parse_duration("-i", s, bare_i)?,
        (None, Some(pps)) if pps.is_finite() && pps > 0.0 => Duration::from_secs_f64(1.0 / pps),
        (None, Some(pps)) => return Err(usage(format!("--rate {pps}: must be above zero"))),
        (None, None) => default_i,
    };
    let timeout = match (&a.timeout, &a.fping_timeout) {
        (Some(s), _) => parse_duration("-W", s, secs)?,
        (None, Some(s)) => parse_duration("-t", s, millis)?,
        (None, None) if many => Duration::from_millis(500),
        (None, None) => Duration::from_secs(10),
    };
    let period = match &a.period {
        Some(s) => parse_duration("-p", s, millis)?,
        None if many => secs,
        None => interval,
    };
    let deadline = a
        .deadline
        .as_deref()
        .map(|s| parse_duration("-w", s, secs))
        .transpose()?;
    let mode = match (a.count.or(a.vcount), many) {
        (Some(0), _) => return Err(usage("-c/-C 0: the count must be at least 1")),
        (Some(n), _) => Mode::Count(n),
        (None, true) => Mode::Alive {
            retries: a.retries,
            backoff: a.backoff,
        },
        (None, false) => Mode::Forever,
    };
    let mut opts = SocketOptions {
        ttl: a.ttl,
        // Big buffers so a fast sweep loses no replies.
        recv_buffer: 8 << 20,
        send_buffer: 1 << 20,
        // DF on probes that fit any path: saves the kernel an IP ID each.
        dont_fragment: a.size + 28 <= 576,
        ..SocketOptions::default()
    };
    if let Some(i) = &a.interface {
        match i.parse::<IpAddr>() {
            Ok(addr) => opts.source = Some(addr),
            Err(_) => opts.device = Some(i.clone()),
        }
    }
    let choice = match a.socket.as_str() {
        "dgram" => SocketChoice::Dgram,
        "raw" => SocketChoice::Raw,
        _ => SocketChoice::Auto,
    };
    Ok(Plan {
        style,
        cfg: PingConfig {
            mode,
            interval,
            period,
            timeout,
            payload_len: a.size,
            deadline,
        },
        targets,
        names,
        choice,
        opts,
        pref,
    })
}

/// Run `sockbox ping`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    if a.serve.any() {
        return serve::run(a, &a.serve);
    }
    let mut p = plan(a)?;
    if a.size < sockbox::ping::probe::ID_LEN || a.size > 65_000 {
        return Err(usage(format!(
            "-s {}: the payload must be 12 to 65000 bytes (the first 12 carry the probe id)",
            a.size
        )));
    }
    // Open sockets while single-threaded, then drop capabilities for good.
    let has_names = !p.names.is_empty();
    let want_v4 = (has_names && p.pref != FamilyPref::V6)
        || p.targets
            .iter()
            .any(|t| t.name.is_none() && t.addr.is_ipv4());
    let want_v6 = (has_names && p.pref != FamilyPref::V4)
        || p.targets
            .iter()
            .any(|t| t.name.is_none() && t.addr.is_ipv6());
    // A sweep sends from one thread per core, each on its own datagram
    // socket (the kernel serializes senders on one socket).
    let lanes = if p.targets.len() > sockbox::ping::socket::BATCH {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    };
    let opened = sockbox::ping::socket::open(p.choice, want_v4, want_v6, &p.opts, lanes);
    if let Err(e) = sockbox::ping::drop_capabilities() {
        tracing::debug!("could not drop capabilities: {e}");
    }
    // One thread: the loop is a single task, and a multi-thread runtime
    // would wake a second thread for every readiness edge of the socket
    // (big sends are spread over threads by the transport itself).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let shutdown = Shutdown::new();
        runtime::shutdown_on_signals(&shutdown)?;
        // Resolve names concurrently; failures are reported, the rest go on.
        let unresolved = resolve(&mut p).await;
        let needs = |v4: bool| p.targets.iter().any(|t| t.addr.is_ipv4() == v4);
        let v4 = take_socket(opened.v4, needs(true))?;
        let v6 = take_socket(opened.v6, needs(false))?;
        let kinds = (v4.as_ref().map(|s| s.kind), v6.as_ref().map(|s| s.kind));
        let addrs: Vec<IpAddr> = p.targets.iter().map(|t| t.addr).collect();
        let mut printer = Printer::new(
            p.style.clone(),
            std::mem::take(&mut p.targets),
            &p.cfg,
            kinds,
        );
        printer.set_verbose(a.verbose);
        // A closed stdout (`| head`) ends the run.
        printer.stop_on_write_error(shutdown.clone());
        for (name, err) in &unresolved {
            printer.unresolved(name, err);
        }
        if addrs.is_empty() {
            printer.finish_empty(unresolved.len());
            return Ok(USAGE);
        }
        let max_packet = p.cfg.payload_len + 8 + 60;
        let mut transport = IcmpTransport::new(v4, v6, max_packet)
            .map_err(|e| anyhow::anyhow!("cannot watch the ICMP sockets: {e}"))?;
        printer.start();
        let outcome = sockbox::ping::run(&p.cfg, addrs, &mut transport, &shutdown, &mut printer)
            .await
            .map_err(|e| match e {
                PingError::Config(c) => usage(c.to_string()),
                other => anyhow::Error::new(other),
            })?;
        let all_alive = printer.finish(&outcome, unresolved.len())?;
        Ok(if !unresolved.is_empty() {
            USAGE
        } else if all_alive {
            SUCCESS
        } else {
            PARTIAL
        })
    })
}

/// Resolve the plan's names in place; returns the names that failed (and
/// removes them from the targets).
async fn resolve(p: &mut Plan) -> Vec<(String, String)> {
    if p.names.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = p.names.iter().map(|(_, n)| n.clone()).collect();
    let results = targets::resolve_all(&names, p.pref, 64).await;
    let mut failed = Vec::new();
    let mut drop_idx = Vec::new();
    for ((idx, name), r) in p.names.iter().zip(results) {
        match r {
            Ok(addr) => p.targets[*idx].addr = addr,
            Err(e) => {
                let why = match e {
                    PingError::Resolve(_, io) => io.to_string(),
                    other => other.to_string(),
                };
                failed.push((name.clone(), why));
                drop_idx.push(*idx);
            }
        }
    }
    for i in drop_idx.into_iter().rev() {
        p.targets.remove(i);
    }
    failed
}

fn take_socket(
    r: Result<FamilySockets, OpenError>,
    needed: bool,
) -> anyhow::Result<Option<FamilySockets>> {
    match r {
        Ok(s) => Ok(Some(s)),
        Err(e) if needed && !matches!(e, OpenError::NotWanted) => Err(anyhow::Error::new(e)),
        Err(_) => Ok(None),
    }
}
