//! Exponential back-off with jitter: after failed accepts and between
//! reconnect attempts.

use std::time::Duration;

/// Delays that double from `initial` up to `max`; [`Backoff::reset`] after
/// a success. With jitter on, each delay is drawn from its upper half so
/// many clients restarting together do not retry in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
}

impl Backoff {
    /// From `initial`, doubling, up to `max`; no jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            jitter: false,
        }
    }

    /// Draw each delay from `[d/2, d]` instead of exactly `d`.
    #[must_use]
    pub fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The delay to wait now; the following one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jitter {
            let half = d / 2;
            let spread = u64::try_from(d.saturating_sub(half).as_micros()).unwrap_or(u64::MAX);
            half + Duration::from_micros(rand::random_range(0..=spread))
        } else {
            d
        }
    }

    /// Start again from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(35));
        let seq: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        assert_eq!(seq, vec![ms(10), ms(20), ms(35), ms(35)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(10));
        let mut j = Backoff::new(ms(100), ms(100)).with_jitter();
        for _ in 0..50 {
            let d = j.next_delay();
            assert!(d >= ms(50) && d <= ms(100), "{d:?}");
        }
    }
}
