//! Timeouts, retries and stopping: what happens to probes nobody answered.

use tokio::time::Instant;

use super::{Engine, Event, Mode, Observer, State};

impl Engine {
    /// Expire probes whose reply is overdue at `now`.
    pub fn poll_timeouts(&mut self, now: Instant, obs: &mut impl Observer) {
        let now = self.now_ns(now);
        self.clock = self.clock.max(now);
        for level in 0..self.timeouts.len() {
            while let Some(&(deadline, seq)) = self.timeouts[level].front() {
                if deadline > now {
                    break;
                }
                self.timeouts[level].pop_front();
                self.expire(seq, now, obs);
            }
        }
    }

    fn expire(&mut self, seq: u32, now: u64, obs: &mut impl Observer) {
        let Some(f) = self.ring.waiting_mut(seq) else {
            return;
        };
        // A probe that never left (its send failed for a passing reason)
        // only held its target's next try back: no timeout to count.
        let unsent = f.state == State::Unsent;
        f.state = if unsent { State::Free } else { State::Expired };
        let (slot, generation, round) = (f.slot, f.generation, f.round);
        let s = &mut self.slots[slot as usize];
        if !s.live || s.generation != generation {
            return;
        }
        s.pending = s.pending.saturating_sub(1);
        if !unsent {
            s.stats.timeouts = s.stats.timeouts.saturating_add(1);
            self.totals.timeouts += 1;
            obs.event(&Event::Timeout {
                target: self.target_ref(slot),
                round,
                stats: &self.slots[slot as usize].stats,
            });
        }
        match self.cfg.mode {
            Mode::Alive { retries, .. } => {
                let s = &self.slots[slot as usize];
                if round < retries && s.attempts == round + 1 && !self.winding {
                    self.run_queue.push_back((now, slot, generation));
                } else if s.pending == 0 {
                    self.finish(slot, obs);
                }
            }
            _ if self.settled(slot) => self.finish(slot, obs),
            _ => {}
        }
    }

    /// Wind down: no target gets more probes and no target is taken in,
    /// but the probes in flight are still answered or time out (so every
    /// probe sent is counted either way); each target ends when its last
    /// one settles, and the run is done when all have. Targets never
    /// probed are left out, as with [`Engine::stop`].
    pub fn wind_down(&mut self, obs: &mut impl Observer) {
        self.winding = true;
        self.close_queues(true, obs);
    }

    /// True once [`Engine::wind_down`] was called.
    pub fn winding_down(&self) -> bool {
        self.winding
    }

    /// Stop: no target gets more probes (Ctrl-C, deadline). Targets that
    /// were probed are reported done; those never probed are left out, of
    /// the totals too (so targets = alive + unreachable + unresolved).
    pub fn stop(&mut self, obs: &mut impl Observer) {
        self.close_queues(false, obs);
    }

    /// Send nothing more and take no more targets; leave out the targets
    /// never probed (of the totals too) and finish the others: all of
    /// them, or with `settling` only those with nothing in flight.
    fn close_queues(&mut self, settling: bool, obs: &mut impl Observer) {
        self.run_queue.clear();
        self.fresh.clear();
        self.source_done = true;
        for slot in 0..self.slots.len() as u32 {
            let s = &self.slots[slot as usize];
            if !s.live {
                continue;
            }
            if s.attempts == 0 {
                self.totals.targets = self.totals.targets.saturating_sub(1);
                self.release(slot);
            } else if !settling || s.pending == 0 {
                self.finish(slot, obs);
            }
        }
    }
}
