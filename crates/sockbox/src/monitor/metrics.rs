//! What the prober counts, per target and in total, kept in atomics so the
//! probing task writes without locks and a scrape reads without stopping
//! it; and [`Metrics`], which holds them with the series a scrape shows
//! (a [`Generation`], swapped whole on reload).

use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sockbox_wire::icmp::Message;

use super::series::Generation;

/// smokeping_prober's default buckets, in seconds
/// (`prometheus.ExponentialBuckets(0.00005, 2, 20)`).
pub const DEFAULT_BUCKETS: [f64; 20] = [
    5e-05, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024,
    0.2048, 0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072, 26.2144,
];

/// Histogram bucket bounds (upper bounds in seconds, increasing; `+Inf` is
/// implied).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    bounds: Arc<[f64]>,
}

/// Bucket bounds that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketsError {
    /// A bound that is not a number.
    #[error("bucket bound {0:?} is not a number")]
    NotANumber(String),
    /// Bounds must be finite and strictly increasing.
    #[error("bucket bounds must be finite and strictly increasing: {0:?}")]
    Order(String),
    /// No bound at all.
    #[error("no bucket bounds given")]
    Empty,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            bounds: DEFAULT_BUCKETS.into(),
        }
    }
}

impl Buckets {
    /// These bounds; a trailing `+Inf` is dropped (it is always there).
    pub fn new(mut bounds: Vec<f64>) -> Result<Self, BucketsError> {
        if bounds.last().is_some_and(|b| *b == f64::INFINITY) {
            bounds.pop();
        }
        if bounds.is_empty() {
            return Err(BucketsError::Empty);
        }
        let ok = bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(BucketsError::Order(format!("{bounds:?}")));
        }
        Ok(Self {
            bounds: bounds.into(),
        })
    }

    /// A comma-separated list (smokeping_prober's `--buckets`).
    pub fn parse(list: &str) -> Result<Self, BucketsError> {
        let mut out = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let v = match word {
                "+Inf" | "Inf" | "inf" => f64::INFINITY,
                w => w
                    .parse::<f64>()
                    .map_err(|_| BucketsError::NotANumber(w.to_owned()))?,
            };
            out.push(v);
        }
        Self::new(out)
    }

    /// The bounds, in seconds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The bucket a value falls in (`bounds().len()` for `+Inf`): the first
    /// bound at or above it, as Prometheus' `le` means.
    pub fn index(&self, seconds: f64) -> usize {
        self.bounds.partition_point(|b| *b < seconds)
    }
}

/// Kinds of ICMP error counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Destination unreachable (any code).
    Unreachable,
    /// Time exceeded (TTL or reassembly).
    TimeExceeded,
    /// Packet too big (IPv6).
    PacketTooBig,
    /// Parameter problem.
    ParameterProblem,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order they are shown.
    pub const ALL: [Self; 5] = [
        Self::Unreachable,
        Self::TimeExceeded,
        Self::PacketTooBig,
        Self::ParameterProblem,
        Self::Other,
    ];

    /// The kind of an ICMP message.
    pub fn of(message: Message) -> Self {
        match message {
            Message::DstUnreachable => Self::Unreachable,
            Message::TimeExceeded => Self::TimeExceeded,
            Message::PacketTooBig => Self::PacketTooBig,
            Message::ParamProblem => Self::ParameterProblem,
            _ => Self::Other,
        }
    }

    /// Its `type` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::TimeExceeded => "time_exceeded",
            Self::PacketTooBig => "packet_too_big",
            Self::ParameterProblem => "parameter_problem",
            Self::Other => "other",
        }
    }
}

/// One target's counters. Written by the task probing it, read by scrapes.
///
/// A probe counts in `requests` once its fate is known: answered (then it
/// is in the histogram) or lost (no reply within the timeout). Probes the
/// system refused to send count in `send_errors` only.
#[derive(Debug)]
pub struct TargetCells {
    requests: AtomicU64,
    sum_ns: AtomicU64,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: Box<[AtomicU64]>,
    ttl: AtomicU64,
    duplicates: AtomicU64,
    send_errors: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
    icmp: [AtomicU64; 5],
    up: AtomicBool,
    resolve_errors: AtomicU64,
}

/// A copy of one target's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSnapshot {
    /// Probes whose fate is known (answered or lost).
    pub requests: u64,
    /// Probes answered (the histogram's count).
    pub replies: u64,
    /// Sum of the round-trip times, nanoseconds.
    pub sum_ns: u64,
    /// Replies per bucket, cumulative, `+Inf` last (equal to `replies`).
    pub cumulative: Vec<u64>,
    /// TTL of the last reply (0 before any).
    pub ttl: u64,
    /// Extra replies to probes already answered.
    pub duplicates: u64,
    /// Probes the system refused to send.
    pub send_errors: u64,
    /// Probes not answered within the timeout.
    pub lost: u64,
    /// Replies that came after their probe's timeout.
    pub late: u64,
    /// ICMP errors, in [`ErrorKind::ALL`] order.
    pub icmp: [u64; 5],
    /// The last probe settled was answered.
    pub up: bool,
    /// Failed look-ups of the target's name.
    pub resolve_errors: u64,
}

impl TargetCells {
    /// Zeroed counters for histograms over `buckets`.
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            requests: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            buckets: (0..=buckets.bounds().len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            ttl: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            late: AtomicU64::new(0),
            icmp: Default::default(),
            up: AtomicBool::new(false),
            resolve_errors: AtomicU64::new(0),
        }
    }

    /// A reply to a probe not answered before.
    pub fn reply(&self, buckets: &Buckets, rtt: Duration, ttl: Option<u8>) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        let i = buckets.index(rtt.as_secs_f64()).min(self.buckets.len() - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.requests.fetch_add(1, Relaxed);
        if let Some(t) = ttl {
            self.ttl.store(u64::from(t), Relaxed);
        }
        self.up.store(true, Relaxed);
    }

    /// A reply to a probe already answered.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    /// A probe got no reply within the timeout.
    pub fn lost(&self) {
        self.lost.fetch_add(1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
        self.up.store(false, Relaxed);
    }

    /// A reply came after its probe's timeout (the probe stays lost).
    pub fn late(&self) {
        self.late.fetch_add(1, Relaxed);
    }

    /// An ICMP error about one of its probes.
    pub fn icmp_error(&self, kind: ErrorKind) {
        let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(4);
        self.icmp[i].fetch_add(1, Relaxed);
    }

    /// The system refused to send a probe.
    pub fn send_error(&self) {
        self.send_errors.fetch_add(1, Relaxed);
    }

    /// Its name did not resolve.
    pub fn resolve_error(&self) {
        self.resolve_errors.fetch_add(1, Relaxed);
    }

    /// Mark it down (no address to probe).
    pub fn set_down(&self) {
        self.up.store(false, Relaxed);
    }

    /// The counters now. The histogram is internally consistent: its
    /// count is the sum of its buckets.
    pub fn snapshot(&self) -> TargetSnapshot {
        let mut cumulative = Vec::with_capacity(self.buckets.len());
        let mut acc = 0u64;
        for b in &*self.buckets {
            acc += b.load(Relaxed);
            cumulative.push(acc);
        }
        TargetSnapshot {
            requests: self.requests.load(Relaxed),
            replies: acc,
            sum_ns: self.sum_ns.load(Relaxed),
            cumulative,
            ttl: self.ttl.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            lost: self.lost.load(Relaxed),
            late: self.late.load(Relaxed),
            icmp: std::array::from_fn(|i| self.icmp[i].load(Relaxed)),
            up: self.up.load(Relaxed),
            resolve_errors: self.resolve_errors.load(Relaxed),
        }
    }
}

/// Counters of the whole prober.
#[derive(Debug, Default)]
pub struct Globals {
    /// Receive calls that failed (not "nothing waiting").
    pub receive_errors: AtomicU64,
    /// Echo requests handed to the system.
    pub packets_sent: AtomicU64,
    /// ICMP messages read (replies, errors, foreign).
    pub packets_received: AtomicU64,
    /// Replies that came after their probe's timeout.
    pub late_replies: AtomicU64,
    /// Probe groups that stopped with an error.
    pub prober_errors: AtomicU64,
    /// The last configuration load worked.
    pub reload_ok: AtomicBool,
    /// When the last load worked, Unix seconds (f64 bits).
    pub reload_time: AtomicU64,
    /// Configuration loads that failed.
    pub reload_failures: AtomicU64,
}

/// One reading of the reload metrics, consistent with itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reloads {
    /// The last configuration load worked.
    pub ok: bool,
    /// When the last load worked, Unix seconds.
    pub last_ok_unix: f64,
    /// Configuration loads that failed.
    pub failures: u64,
}

impl Globals {
    /// Record a configuration load. The outcome is stored last, so a
    /// reader that sees it ([`Globals::reloads`]) sees its count and time.
    pub fn loaded(&self, ok: bool) {
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.reload_time.store(now.to_bits(), SeqCst);
        } else {
            self.reload_failures.fetch_add(1, SeqCst);
        }
        self.reload_ok.store(ok, SeqCst);
    }

    /// The reload metrics, the outcome read first.
    pub fn reloads(&self) -> Reloads {
        let ok = self.reload_ok.load(SeqCst);
        Reloads {
            ok,
            last_ok_unix: f64::from_bits(self.reload_time.load(SeqCst)),
            failures: self.reload_failures.load(SeqCst),
        }
    }
}

/// The metrics of a prober: the buckets, the current series, the totals.
/// Cheap to clone (a handle).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    buckets: Buckets,
    current: RwLock<Arc<Generation>>,
    globals: Globals,
}

impl Metrics {
    /// No series yet.
    pub fn new(buckets: Buckets) -> Self {
        Self {
            inner: Arc::new(Inner {
                buckets,
                current: RwLock::new(Arc::new(Generation::default())),
                globals: Globals::default(),
            }),
        }
    }

    /// The histogram buckets.
    pub fn buckets(&self) -> &Buckets {
        &self.inner.buckets
    }

    /// The prober's totals.
    pub fn globals(&self) -> &Globals {
        &self.inner.globals
    }

    /// The series shown now.
    pub fn current(&self) -> Arc<Generation> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Show these series from now on.
    pub fn publish(&self, generation: Generation) {
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(generation);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_le() {
        let b = Buckets::default();
        assert_eq!(b.index(0.00005), 0, "le is inclusive");
        assert_eq!(b.index(0.000_050_1), 1);
        assert_eq!(b.index(0.0), 0);
        assert_eq!(b.index(26.2144), 19);
        assert_eq!(b.index(30.0), 20);
        assert_eq!(
            Buckets::parse("0.1, 0.5,1,+Inf").unwrap().bounds(),
            &[0.1, 0.5, 1.0]
        );
        assert!(matches!(
            Buckets::parse("0.5,0.1"),
            Err(BucketsError::Order(_))
        ));
        assert!(matches!(
            Buckets::parse("x"),
            Err(BucketsError::NotANumber(_))
        ));
        assert!(matches!(Buckets::parse(""), Err(BucketsError::Empty)));
    }

    #[test]
    fn cells_count_replies_losses_and_keep_the_histogram_consistent() {
        let b = Buckets::parse("0.001,0.01").unwrap();
        let c = TargetCells::new(&b);
        c.reply(&b, Duration::from_micros(500), Some(64));
        c.reply(&b, Duration::from_millis(5), Some(63));
        c.reply(&b, Duration::from_secs(2), None);
        c.duplicate();
        c.lost();
        c.late();
        c.icmp_error(ErrorKind::TimeExceeded);
        let s = c.snapshot();
        assert_eq!(s.cumulative, vec![1, 2, 3]);
        assert_eq!((s.replies, s.requests, s.lost, s.duplicates), (3, 4, 1, 1));
        assert_eq!(s.sum_ns, 2_005_500_000);
        assert_eq!(s.ttl, 63);
        assert!(!s.up, "the last probe settled was lost");
        assert_eq!(s.icmp, [0, 1, 0, 0, 0]);
        assert_eq!(s.late, 1, "a late reply counts apart, not as a reply");
    }
}
