//! The flags of `sockbox ping` (clap), iputils ping's and fping's.

use std::path::PathBuf;

pub const AFTER_HELP: &str = "\
Two styles. One target prints like iputils ping (a line per reply, then statistics). Several
targets, -g, -f, targets on stdin, or any option only fping has (-a -u -g -f -C -t -r -B -e -l
-p -Q -o -x -X -b -H -S -M -O -R -d -A -N, bare -s) print like fping and exit like fping.
Shared by both: -c -i -q -D -I -4 -6 -n (a no-op in ping style: addresses are never looked up),
-W -w --ttl --rate --json --socket -v. `-s N` is the payload size (ping); `-s` alone is fping's
final statistics (--stats). Durations take units (10ms, 1.5s); a bare number is seconds for
-i/-W/-w in ping style and milliseconds for -i/-p/-t in fping style; -Q takes seconds. Every
duration is at most a year.

Targets from ranges (-g, IPv4 and IPv6, any size), files and stdin are read as the run goes:
memory follows the probes in flight (and, with -c/-C/-l/-Q, a summary line per target).

Sockets: the unprivileged ICMP datagram socket is tried first (Linux, allowed by
net.ipv4.ping_group_range), then a raw socket (root or CAP_NET_RAW); capabilities are
dropped once the sockets are open. Replies are matched by a random per-run token and a
32-bit sequence in the payload; foreign, duplicate, late and bad-checksum replies are
counted apart (see --json totals). Each probe's send time is its own (the kernel's transmit
timestamp where RTTs are shown) and the receive time is the kernel's.

--json prints one object per line: \"reply\" (target, addr, from, seq, bytes, ttl, rtt_ms,
duplicate), \"timeout\" (target, addr, seq), \"error\" (ICMP error quoting a probe: from,
error), \"send_error\", \"unresolved\" (target, error), a \"summary\" per target as it finishes
(sent, received, duplicates, timeouts, errors, send_errors, loss_pct, min/avg/max/mdev_ms,
alive), then \"totals\" (targets, alive, unreachable, unresolved, sent, received, counters
{foreign, duplicates, bad_checksum, corrupt, late, errors, send_errors, malformed},
elapsed_ms, ending, socket_v4/socket_v6).

Examples:
  sockbox ping -c 3 127.0.0.1              # like ping -c 3
  sockbox ping -a -g 192.168.1.0/24        # alive hosts of a subnet, like fping -a -g
  sockbox ping -g 10.0.0.1-10.0.0.50 -r 1  # a dash range, one retry
  sockbox ping -C 5 -q host1 host2         # per-target RTT columns, like fping -C
  sockbox ping -f hosts.txt --json         # one JSON object per event and per target
  sockbox ping -g 127.0.0.0/8 -i 0 -r 0 -a -q   # 16.7 million addresses, bounded memory

Exit codes, ping style: 0 a reply came; 1 none did; 2 bad arguments or a name that does not
resolve; 3 system failure (no ICMP socket: the message says how to fix it).
fping style (as fping documents them): 0 every target replied (or, with -x/-X, enough did);
1 some did not; 2 a name did not resolve; 3 bad arguments; 4 system failure.";

/// Arguments of `sockbox ping` (boxed: the option set is large).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    #[command(flatten)]
    pub opts: Box<Opts>,
    /// The prober's flags (`--serve` and the daemon layer).
    #[command(flatten)]
    pub serve: Box<super::serve::ServeArgs>,
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
    /// None: read them from stdin.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from a file, one per line (`-` for stdin; `#` starts a comment).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Treat the targets as ranges: CIDR (IPv4 or IPv6), A-B, or a START END pair.
    #[arg(short = 'g', long = "generate")]
    pub generate: bool,
    /// Probes per target (default: fping style until alive, ping style forever).
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
    /// Probe every target until interrupted, then print its statistics (fping -l).
    #[arg(short = 'l', long = "loop", conflicts_with_all = ["count", "vcount"])]
    pub looping: bool,
    /// Gap between any two probes (ping style: 1s; fping style: 10ms).
    #[arg(short = 'i', long = "interval", value_name = "DUR")]
    pub interval: Option<String>,
    /// Probes per second over all targets (instead of -i).
    #[arg(long = "rate", value_name = "PPS", conflicts_with = "interval")]
    pub rate: Option<f64>,
    /// Gap between probes to the same target with -c/-C/-l (default 1000ms).
    #[arg(short = 'p', long = "period", value_name = "DUR")]
    pub period: Option<String>,
    /// Reply timeout, ping style (bare number = seconds; default 10s).
    #[arg(
        short = 'W',
        long = "timeout",
        value_name = "DUR",
        conflicts_with = "fping_timeout"
    )]
    pub timeout: Option<String>,
    /// Reply timeout, fping style (bare number = ms; default 500ms, grows by -B per retry;
    /// with -c/-C/-l the period, at most 2000ms). 0: no reply counts.
    #[arg(short = 't', value_name = "DUR")]
    pub fping_timeout: Option<String>,
    /// Retries per target in the default until-alive mode (fping -r; default 3).
    #[arg(short = 'r', long = "retry", alias = "retries", value_name = "N")]
    pub retries: Option<u32>,
    /// Timeout multiplier per retry, 1.0 to 5.0 (fping -B; default 1.5).
    #[arg(short = 'B', long = "backoff", value_name = "F")]
    pub backoff: Option<f64>,
    /// Stop after this long whatever is left (ping -w; bare number = seconds).
    #[arg(short = 'w', long = "deadline", value_name = "DUR")]
    pub deadline: Option<String>,
    /// Echo data bytes per probe, 12 to 65000 (ping -s N).
    #[arg(
        short = 's',
        long = "size",
        value_name = "BYTES",
        conflicts_with = "fping_size"
    )]
    pub size: Option<usize>,
    /// Echo data bytes per probe (fping -b).
    #[arg(short = 'b', value_name = "BYTES")]
    pub fping_size: Option<usize>,
    /// Print global statistics at the end (fping -s; a bare -s).
    #[arg(long = "stats")]
    pub stats: bool,
    /// IP TTL / IPv6 hop limit of the probes, 1 to 255.
    #[arg(long = "ttl", value_name = "N", conflicts_with = "fping_ttl")]
    pub ttl: Option<u32>,
    /// IP TTL (fping -H).
    #[arg(short = 'H', value_name = "N")]
    pub fping_ttl: Option<u32>,
    /// Send from this interface name or source address.
    #[arg(
        short = 'I',
        long = "interface",
        alias = "iface",
        value_name = "IFACE|ADDR"
    )]
    pub interface: Option<String>,
    /// Send from this source address (fping -S).
    #[arg(short = 'S', long = "src", value_name = "ADDR")]
    pub source: Option<String>,
    /// Set the don't-fragment bit (fping -M).
    #[arg(short = 'M', long = "dontfrag")]
    pub dontfrag: bool,
    /// Type of service / traffic class byte, decimal or 0xNN (fping -O).
    #[arg(short = 'O', long = "tos", value_name = "N")]
    pub tos: Option<String>,
    /// Random bytes as echo data instead of a fixed pattern (fping -R).
    #[arg(short = 'R', long = "random")]
    pub random: bool,
    /// Show only targets that are alive.
    #[arg(short = 'a', long = "alive")]
    pub alive: bool,
    /// Show only targets that are unreachable.
    #[arg(short = 'u', long = "unreachable", alias = "unreach")]
    pub unreachable: bool,
    /// Quiet: no per-probe lines (ping style: header and statistics only).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Like -q, plus per-target statistics every SECS seconds (fping -Q).
    #[arg(short = 'Q', long = "squiet", value_name = "SECS")]
    pub squiet: Option<String>,
    /// Show the round-trip time of alive targets (fping -e).
    #[arg(short = 'e', long = "elapsed")]
    pub elapsed: bool,
    /// Print a timestamp before each reply/timeout line (ping -D, fping -D).
    #[arg(short = 'D', long = "timestamp")]
    pub timestamp: bool,
    /// Show the outage time (lost probes × period) in the statistics (fping -o).
    #[arg(short = 'o', long = "outage")]
    pub outage: bool,
    /// Exit 0 when at least N targets are alive, else 1 (fping -x).
    #[arg(short = 'x', long = "reachable", value_name = "N")]
    pub reachable: Option<u32>,
    /// Like -x, and stop as soon as N targets answered (fping -X).
    #[arg(
        short = 'X',
        long = "fast-reachable",
        value_name = "N",
        conflicts_with = "reachable"
    )]
    pub fast_reachable: Option<u32>,
    /// Show targets given as addresses by their reverse-DNS name (fping -n).
    #[arg(short = 'n', long = "name")]
    pub name: bool,
    /// Show every target by its reverse-DNS name (fping -d).
    #[arg(short = 'd', long = "rdns", conflicts_with = "name")]
    pub rdns: bool,
    /// Show targets by address (with -n/-d: "name (address)") (fping -A).
    #[arg(short = 'A', long = "addr")]
    pub addr: bool,
    /// Output for netdata (needs -l and -Q) (fping -N).
    #[arg(short = 'N', long = "netdata")]
    pub netdata: bool,
    /// Ignored, for fping 2.4 compatibility (fping -T).
    #[arg(short = 'T', value_name = "N", hide = true)]
    pub ignored_t: Option<String>,
    /// Resolve names to IPv4 only; refuse IPv6 addresses.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Resolve names to IPv6 only; refuse IPv4 addresses.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// One JSON object per line: reply, timeout, error, summary per target, totals.
    #[arg(long = "json")]
    pub json: bool,
    /// Which ICMP socket to use: auto (datagram, then raw), dgram or raw.
    #[arg(long = "socket", value_name = "KIND", default_value = "auto", value_parser = ["auto", "dgram", "raw"])]
    pub socket: String,
    /// Where each probe's send time comes from: auto (the kernel's transmit
    /// timestamp when RTTs are shown), kernel, or clock (read around each
    /// sendmmsg call). For measurements.
    #[arg(long = "send-time", value_name = "SOURCE", default_value = "auto", hide = true,
          value_parser = ["auto", "kernel", "clock"])]
    pub send_time: String,
    /// Print the socket kinds and the foreign/late/bad-checksum counts to stderr at the end.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

impl Opts {
    /// True when an option only fping has was given (it selects fping style).
    pub fn has_fping_only(&self) -> bool {
        self.generate
            || self.file.is_some()
            || self.alive
            || self.unreachable
            || self.vcount.is_some()
            || self.looping
            || self.period.is_some()
            || self.fping_timeout.is_some()
            || self.retries.is_some()
            || self.backoff.is_some()
            || self.fping_size.is_some()
            || self.stats
            || self.fping_ttl.is_some()
            || self.source.is_some()
            || self.dontfrag
            || self.tos.is_some()
            || self.random
            || self.squiet.is_some()
            || self.elapsed
            || self.outage
            || self.reachable.is_some()
            || self.fast_reachable.is_some()
            || self.rdns
            || self.addr
            || self.netdata
            || self.ignored_t.is_some()
    }
}
