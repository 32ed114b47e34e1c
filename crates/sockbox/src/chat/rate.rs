//! Per-client rate limit: a token bucket. A client over its rate is not
//! dropped; its input is simply read more slowly (TCP pushes back).

use std::time::Duration;

use tokio::time::Instant;

/// A rate: `per_sec` units per second with bursts of up to `burst` units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained units (lines for chat, bytes for the broker) per second.
    pub per_sec: f64,
    /// Units that may be spent at once after a quiet period.
    pub burst: f64,
}

/// A token bucket for one client.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> Self {
        let burst = rate.burst.max(1.0);
        Self {
            rate: Rate {
                per_sec: rate.per_sec.max(f64::MIN_POSITIVE),
                burst,
            },
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate.per_sec).min(self.rate.burst);
    }

    /// Spend `n` units; returns how long to wait before going on (zero when
    /// within the rate). The debt is taken now, so waiting that long and
    /// calling again keeps the average at the rate.
    pub fn spend(&mut self, n: f64) -> Duration {
        self.refill();
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((-self.tokens / self.rate.per_sec).min(3600.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let mut b = Bucket::new(Rate {
            per_sec: 10.0,
            burst: 5.0,
        });
        for _ in 0..5 {
            assert_eq!(b.spend(1.0), Duration::ZERO);
        }
        let wait = b.spend(1.0);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        tokio::time::sleep(wait).await;
        // 100 more units at 10/s take 10 s of waiting in total.
        let start = Instant::now();
        for _ in 0..100 {
            let w = b.spend(1.0);
            tokio::time::sleep(w).await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((took - 10.0).abs() < 0.2, "{took}");
        // A long pause refills only up to the burst.
        tokio::time::sleep(Duration::from_secs(60)).await;
        for _ in 0..5 {
            assert_eq!(b.spend(1.0), Duration::ZERO);
        }
        assert!(b.spend(1.0) > Duration::ZERO);
    }
}
