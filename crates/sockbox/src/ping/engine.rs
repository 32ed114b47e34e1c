//! The ping engine without I/O: when to send which probe, how to match what
//! comes back, timeouts, retries and statistics.
//!
//! The driver feeds it targets as it can take them ([`Engine::wants`],
//! [`Engine::admit`]), asks for probes to send ([`Engine::poll_send`]),
//! tells it when each probe left ([`Engine::on_sent`]) or that it could
//! not be sent ([`Engine::on_send_error`]), hands it every received message
//! ([`Engine::on_packet`]) and lets it expire probes
//! ([`Engine::poll_timeouts`]); everything it learns goes to an
//! [`Observer`]. Tests drive it with made-up packets and times.
//!
//! Memory: targets live in slots only while they are probed (a finished
//! target's final statistics go out in [`Event::Done`] and its slot is
//! reused), and probes live in the in-flight ring until settled. A run
//! over millions of targets therefore holds what is in flight, not the
//! target list. Nothing assumes the run ends: in [`Mode::Forever`] targets
//! are probed until [`Engine::stop`], and sequence numbers wrap.

mod receive;
mod sent;
mod timeouts;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

pub use super::config::{ConfigError, EngineConfig, Mode};
pub use super::event::{
    Counters, Event, IcmpError, Incoming, IncomingKind, Observer, Probe, QueuedIcmpError, Reply,
    Target, TargetRef,
};
use super::flight::{Flight, Ring, State};
use super::probe;
use super::stats::{Rtt, TargetStats};

/// About what the engine keeps for each target it holds: its slot (with
/// the target and its statistics) and its place in the run queue, doubled
/// for the growth of the vectors that hold them. For callers that check
/// memory before a run whose targets all stay (a loop).
pub const TARGET_STATE_BYTES: usize =
    2 * (size_of::<Slot>() + size_of::<(u64, u32, u32)>() + size_of::<u32>());

/// One target being probed.
#[derive(Debug, Clone)]
struct Slot {
    index: u64,
    target: Target,
    stats: TargetStats,
    /// Probes issued (rounds), sent or not.
    attempts: u32,
    /// Sent and neither answered nor timed out.
    pending: u32,
    /// Bumped when the slot is freed, so stale probes never match.
    generation: u32,
    live: bool,
}

/// Totals of a run, kept as it goes (no per-target list).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Targets taken in.
    pub targets: u64,
    /// Finished targets that answered.
    pub alive: u64,
    /// Finished targets that never answered.
    pub unreachable: u64,
    /// Probes sent.
    pub sent: u64,
    /// Fresh replies (duplicates not counted).
    pub received: u64,
    /// Probes that timed out.
    pub timeouts: u64,
    /// Round-trip times of every fresh reply.
    pub rtt: Rtt,
    /// Most targets probed at once.
    pub peak_active: u64,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    start: Instant,
    slots: Vec<Slot>,
    free: Vec<u32>,
    active: usize,
    ring: Ring,
    /// (due ns, slot, generation), due times non-decreasing.
    run_queue: VecDeque<(u64, u32, u32)>,
    /// Admitted targets not probed yet: (slot, generation, when admitted
    /// in ns).
    fresh: VecDeque<(u32, u32, u64)>,
    /// The latest time the engine was told (ns since start).
    clock: u64,
    /// Per attempt level (Alive) or one queue: (deadline ns, seq).
    timeouts: Vec<VecDeque<(u64, u32)>>,
    /// Timeout per attempt level, in ns.
    timeout_ns: Vec<u64>,
    next_send: u64,
    /// The due time last put on `run_queue` (it stays non-decreasing).
    last_due: u64,
    source_done: bool,
    /// The source said it has no more (not just a stop).
    source_ended: bool,
    /// Winding down: nothing more is sent; targets end as their probes
    /// in flight settle.
    winding: bool,
    counters: Counters,
    totals: Totals,
}

/// Bursts after a late wake-up are limited to this much catching up.
const SLACK_NS: u64 = 2_000_000;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn levels(cfg: &EngineConfig) -> Result<Vec<u64>, ConfigError> {
    match cfg.mode {
        Mode::Alive { retries, backoff } => {
            if retries > 63 {
                return Err(ConfigError::TooManyRetries(retries));
            }
            let backoff = if backoff.is_finite() && backoff >= 1.0 {
                backoff
            } else {
                1.0
            };
            let mut t = cfg.timeout.as_secs_f64();
            let mut out = Vec::new();
            for _ in 0..=retries {
                out.push(ns(Duration::from_secs_f64(t.min(1e9))));
                t *= backoff;
            }
            Ok(out)
        }
        Mode::Count(_) | Mode::Forever => {
            let single = matches!(cfg.mode, Mode::Count(1));
            if cfg.period.is_zero() && !single {
                return Err(ConfigError::ZeroPeriod);
            }
            Ok(vec![ns(cfg.timeout)])
        }
    }
}

impl Engine {
    /// An engine starting at `start`; targets come in through
    /// [`Engine::admit`].
    pub fn new(cfg: EngineConfig, start: Instant) -> Result<Self, ConfigError> {
        if cfg.payload_len < probe::ID_LEN {
            return Err(ConfigError::PayloadTooSmall(cfg.payload_len));
        }
        if cfg.max_in_flight == 0 || cfg.max_active == 0 {
            return Err(ConfigError::ZeroWindow);
        }
        let timeout_ns = levels(&cfg)?;
        Ok(Self {
            start,
            slots: Vec::new(),
            free: Vec::new(),
            active: 0,
            ring: Ring::new(cfg.max_in_flight),
            run_queue: VecDeque::new(),
            fresh: VecDeque::new(),
            clock: 0,
            timeouts: vec![VecDeque::new(); timeout_ns.len()],
            timeout_ns,
            next_send: 0,
            last_due: 0,
            source_done: false,
            source_ended: false,
            winding: false,
            counters: Counters::default(),
            totals: Totals::default(),
            cfg,
        })
    }

    fn now_ns(&self, t: Instant) -> u64 {
        ns(t.saturating_duration_since(self.start))
    }

    fn instant(&self, at_ns: u64) -> Instant {
        self.start + Duration::from_nanos(at_ns)
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Counts of everything that was not a fresh reply.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The run's totals so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Targets being probed now.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Places of the in-flight ring now allocated.
    pub fn ring_capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// How many more targets the engine would take now: enough to fill
    /// `window` probes of fresh targets, within the active limit. Zero in
    /// [`Mode::Forever`] never happens for lack of room (it takes all).
    pub fn wants(&self, window: usize) -> usize {
        let fresh_room = window.saturating_sub(self.fresh.len());
        if matches!(self.cfg.mode, Mode::Forever) {
            return fresh_room;
        }
        fresh_room.min(self.cfg.max_active.saturating_sub(self.active))
    }

    /// Take in a target, to be probed as soon as the interval allows.
    /// Returns its index.
    pub fn admit(&mut self, target: Target) -> u64 {
        let index = self.totals.targets;
        self.totals.targets += 1;
        let slot = if let Some(s) = self.free.pop() {
            let generation = self.slots[s as usize].generation;
            self.slots[s as usize] = Slot {
                index,
                target,
                stats: TargetStats::default(),
                attempts: 0,
                pending: 0,
                generation,
                live: true,
            };
            s
        } else {
            self.slots.push(Slot {
                index,
                target,
                stats: TargetStats::default(),
                attempts: 0,
                pending: 0,
                generation: 0,
                live: true,
            });
            (self.slots.len() - 1) as u32
        };
        self.active += 1;
        self.totals.peak_active = self.totals.peak_active.max(self.active as u64);
        let generation = self.slots[slot as usize].generation;
        self.fresh.push_back((slot, generation, self.clock));
        index
    }

    /// The target source has nothing more: the run completes when the
    /// targets taken in are done.
    pub fn source_done(&mut self) {
        self.source_done = true;
        self.source_ended = true;
    }

    /// True when every target of the source was taken in.
    pub fn source_ended(&self) -> bool {
        self.source_ended
    }

    /// True when every target is done and no more will come (never in
    /// [`Mode::Forever`] while targets remain).
    pub fn is_done(&self) -> bool {
        self.source_done && self.active == 0
    }

    fn target_ref(&self, slot: u32) -> TargetRef<'_> {
        let s = &self.slots[slot as usize];
        TargetRef {
            index: s.index,
            addr: s.target.addr,
            name: s.target.name.as_deref(),
        }
    }

    /// The next probe to send at `now`, if one is due, the interval allows
    /// and the in-flight window has room. Call repeatedly to fill a batch.
    pub fn poll_send(&mut self, now: Instant) -> Option<Probe> {
        let now = self.now_ns(now);
        self.clock = self.clock.max(now);
        let interval = ns(self.cfg.interval);
        if interval > 0 && self.next_send > now {
            return None;
        }
        // Until alive, retries that are due go before new targets. With
        // rounds (-c, -C, -l), whichever waits since earlier goes first: a
        // target whose period is shorter than the time a turn over all
        // targets takes must not take every turn.
        let rounds = !matches!(self.cfg.mode, Mode::Alive { .. });
        loop {
            let scheduled = self.run_queue.front().is_some_and(|e| {
                e.0 <= now && !(rounds && self.fresh.front().is_some_and(|f| f.2 < e.0))
            });
            let (due, slot, generation) = if scheduled {
                *self.run_queue.front()?
            } else {
                let (slot, generation, _) = *self.fresh.front()?;
                (now, slot, generation)
            };
            let s = &self.slots[slot as usize];
            if !s.live || s.generation != generation || s.attempts == u32::MAX {
                if scheduled {
                    self.run_queue.pop_front();
                } else {
                    self.fresh.pop_front();
                }
                continue;
            }
            if !self.ring.make_room() {
                return None;
            }
            if scheduled {
                self.run_queue.pop_front();
            } else {
                self.fresh.pop_front();
            }
            return Some(self.issue(slot, now, due, interval));
        }
    }

    /// Send round `attempts` of `slot` at `now`; it was due at `due`.
    fn issue(&mut self, slot: u32, now: u64, due: u64, interval: u64) -> Probe {
        let s = &mut self.slots[slot as usize];
        let round = s.attempts;
        s.attempts += 1;
        s.pending += 1;
        s.stats.sent += 1;
        self.totals.sent += 1;
        let (attempts, generation, index, addr) =
            (s.attempts, s.generation, s.index, s.target.addr);
        let level = match self.cfg.mode {
            Mode::Alive { .. } => (round as usize).min(self.timeout_ns.len() - 1),
            _ => 0,
        };
        let seq = self.ring.issue(Flight {
            seq: 0,
            slot,
            generation,
            round,
            sent_ns: now,
            level: level as u8,
            state: State::Pending,
        });
        if interval > 0 {
            self.next_send = self.next_send.max(now.saturating_sub(SLACK_NS)) + interval;
        }
        let deadline = now.saturating_add(self.timeout_ns[level]);
        self.timeouts[level].push_back((deadline, seq));
        let again = match self.cfg.mode {
            Mode::Count(c) => attempts < c,
            Mode::Forever => true,
            Mode::Alive { .. } => false,
        };
        if again {
            // The next round is due a period after this one was due, not
            // after it went out: a loop that wakes late does not stretch
            // every period (a prober would send fewer probes than asked).
            // More than a period late, the missed rounds are skipped rather
            // than sent in a burst. Due times stay in order.
            let period = ns(self.cfg.period);
            let mut next = due.saturating_add(period);
            if next < now && period > 0 {
                next = next.saturating_add((now - next).div_ceil(period) * period);
            }
            let next = next.max(self.last_due);
            self.last_due = next;
            self.run_queue.push_back((next, slot, generation));
        }
        Probe {
            slot,
            target: index,
            round,
            seq,
            addr,
        }
    }

    /// When the engine next needs attention (a send or a timeout), if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let first_due = if self.fresh.is_empty() {
            self.run_queue.front().map(|e| e.0)
        } else {
            Some(0)
        };
        // A full window waits for a reply or a timeout, not the clock.
        let send = first_due
            .filter(|_| !self.ring.is_full())
            .map(|due| due.max(self.next_send));
        let timeout = self
            .timeouts
            .iter()
            .filter_map(|q| q.front().map(|e| e.0))
            .min();
        let at = match (send, timeout) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.instant(at))
    }

    fn finish(&mut self, slot: u32, obs: &mut impl Observer) {
        let s = &self.slots[slot as usize];
        if !s.live {
            return;
        }
        let alive = s.stats.received > 0;
        if alive {
            self.totals.alive += 1;
        } else {
            self.totals.unreachable += 1;
        }
        obs.event(&Event::Done {
            target: self.target_ref(slot),
            alive,
            stats: &s.stats,
        });
        self.release(slot);
    }

    fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if !s.live {
            return;
        }
        s.live = false;
        s.generation = s.generation.wrapping_add(1);
        s.target.name = None;
        self.active -= 1;
        self.free.push(slot);
    }

    /// True when `slot` has nothing in flight and will send nothing more
    /// (its count is reached, or the engine winds down).
    fn settled(&self, slot: u32) -> bool {
        let s = &self.slots[slot as usize];
        s.pending == 0
            && (self.winding || matches!(self.cfg.mode, Mode::Count(c) if s.attempts >= c))
    }
}
