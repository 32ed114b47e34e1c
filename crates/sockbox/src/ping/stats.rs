//! Per-target statistics: counts, loss and round-trip times
//! (min/avg/max/mdev as iputils ping computes them).

use std::time::Duration;

/// Running round-trip-time statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rtt {
    count: u64,
    min_ns: u64,
    max_ns: u64,
    sum_ns: u64,
    sum_sq: f64,
}

impl Rtt {
    /// Add one sample.
    pub fn add(&mut self, rtt: Duration) {
        let v = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        if self.count == 0 || v < self.min_ns {
            self.min_ns = v;
        }
        self.max_ns = self.max_ns.max(v);
        self.count = self.count.saturating_add(1);
        self.sum_ns = self.sum_ns.saturating_add(v);
        self.sum_sq += (v as f64) * (v as f64);
    }

    /// Number of samples (a run-wide count may pass 2^32).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample.
    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.min_ns))
    }

    /// Largest sample.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.max_ns))
    }

    /// Mean.
    pub fn avg(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.sum_ns / self.count))
    }

    /// Mean deviation as iputils reports it: `sqrt(E[x²] − E[x]²)`.
    pub fn mdev(&self) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "a mean of up to 2^64 samples")]
        let n = self.count as f64;
        let mean = self.sum_ns as f64 / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        Some(Duration::from_nanos(var.sqrt() as u64))
    }
}

/// What happened to one target so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TargetStats {
    /// Probes sent (handed to the kernel without error).
    pub sent: u32,
    /// Probes answered (duplicates not counted).
    pub received: u32,
    /// Extra replies to probes already answered.
    pub duplicates: u32,
    /// Probes that got no reply within the timeout.
    pub timeouts: u32,
    /// ICMP errors quoting one of its probes.
    pub errors: u32,
    /// Probes the system refused to send (not counted in `sent`).
    pub send_errors: u32,
    /// Replies that came after their probe's timeout (the probe counts as
    /// timed out, the reply is not counted as received).
    pub late: u32,
    /// Round-trip times of the answered probes.
    pub rtt: Rtt,
}

impl TargetStats {
    /// Percentage of probes without a reply: 0 when none was tried, 100
    /// when every one the system refused to send.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return if self.send_errors > 0 { 100.0 } else { 0.0 };
        }
        f64::from(self.sent.saturating_sub(self.received)) * 100.0 / f64::from(self.sent)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rtt_summary_matches_hand_computation() {
        let mut r = Rtt::default();
        assert_eq!(r.min(), None);
        for ms in [10u64, 20, 30] {
            r.add(Duration::from_millis(ms));
        }
        assert_eq!(r.min().unwrap(), Duration::from_millis(10));
        assert_eq!(r.max().unwrap(), Duration::from_millis(30));
        assert_eq!(r.avg().unwrap(), Duration::from_millis(20));
        // population standard deviation of 10,20,30 = 8.165 ms
        let mdev = r.mdev().unwrap().as_secs_f64() * 1000.0;
        assert!((mdev - 8.165).abs() < 0.01, "{mdev}");
    }

    #[test]
    fn loss() {
        let s = TargetStats {
            sent: 4,
            received: 3,
            ..TargetStats::default()
        };
        assert!((s.loss_percent() - 25.0).abs() < 1e-9);
        assert!(TargetStats::default().loss_percent().abs() < 1e-9);
        let refused = TargetStats {
            send_errors: 3,
            ..TargetStats::default()
        };
        assert!((refused.loss_percent() - 100.0).abs() < 1e-9);
    }
}
