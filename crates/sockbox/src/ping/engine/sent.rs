//! What became of each probe's send: when it left, or why it did not.

use tokio::time::Instant;

use super::{Engine, Event, Mode, Observer, Probe, State};
use crate::sys::ping_io::SendFailure;

impl Engine {
    /// Record when `probe` left (a clock read at its place in the batch,
    /// or the kernel's transmit timestamp).
    pub fn on_sent(&mut self, probe: &Probe, at: Instant) {
        let at = self.now_ns(at);
        if let Some(f) = self.ring.pending_mut(probe.seq) {
            f.sent_ns = at;
        }
    }

    /// Record that sending `probe` failed locally: it does not count as
    /// sent, gets no timeout, and a target left with nothing in flight and
    /// nothing more to send ends at once. Until alive, a refusal (no route,
    /// not permitted) ends the target, while a passing failure (no buffer
    /// space) keeps the probe's place until its timeout and the target gets
    /// its next try then, as after a probe nobody answered.
    pub fn on_send_error(&mut self, probe: &Probe, error: SendFailure, obs: &mut impl Observer) {
        let retry_later = match self.cfg.mode {
            Mode::Alive { retries, .. } => probe.round < retries && error.is_passing(),
            _ => false,
        };
        let Some(f) = self.ring.pending_mut(probe.seq) else {
            return;
        };
        let slot = probe.slot;
        let s = &mut self.slots[slot as usize];
        if retry_later {
            f.state = State::Unsent;
        } else {
            f.state = State::Free;
            s.pending = s.pending.saturating_sub(1);
        }
        s.stats.sent = s.stats.sent.saturating_sub(1);
        s.stats.send_errors = s.stats.send_errors.saturating_add(1);
        self.totals.sent = self.totals.sent.saturating_sub(1);
        self.counters.send_errors += 1;
        obs.event(&Event::SendFailed {
            target: self.target_ref(slot),
            round: probe.round,
            error,
        });
        if retry_later {
            return;
        }
        let s = &self.slots[slot as usize];
        let more = !self.winding
            && match self.cfg.mode {
                Mode::Count(c) => s.attempts < c,
                Mode::Forever => true,
                // A failed send is not retried: the network said no already.
                Mode::Alive { .. } => false,
            };
        if !more && s.pending == 0 {
            self.finish(slot, obs);
        }
    }
}
