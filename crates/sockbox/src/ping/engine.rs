//! The ping engine without I/O: when to send which probe, how to match what
//! comes back, timeouts, retries and statistics.
//!
//! The driver feeds it the time, asks for probes to send
//! ([`Engine::poll_send`]), hands it every received ICMP message
//! ([`Engine::on_packet`]) and lets it expire probes
//! ([`Engine::poll_timeouts`]); everything it learns goes to an
//! [`Observer`]. Tests drive it with made-up packets and times.
//!
//! Sequence numbers: probe `round` of target `i` (of `n`) is
//! `seq = (round mod R) * n + i` with `R = 2^32 / n`, so a 32-bit sequence
//! maps back to (target, round) without any table, for any number of targets
//! and runs of any length. Per target, the send times and reply bits of the
//! last `W` (≤ 64) rounds are kept; `W` covers every round that can still be
//! waited for.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Ipv4Packet, Message, Packet, Quote, Repr};
use tokio::time::Instant;

pub use super::config::{ConfigError, EngineConfig, Mode};
pub use super::event::{
    Counters, Event, IcmpError, Incoming, Observer, Probe, QueuedIcmpError, Reply,
};
use super::probe;
use super::stats::TargetStats;

#[derive(Debug, Clone, Default)]
struct TargetState {
    s: TargetStats,
    /// Sent and neither answered nor timed out.
    pending: u32,
    /// Reply bits of the last W rounds, by round % W.
    replied: u64,
    /// Timed-out bits of the last W rounds, by round % W.
    expired: u64,
    done: bool,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    start: Instant,
    addrs: Vec<IpAddr>,
    targets: Vec<TargetState>,
    /// Rounds kept per target (power of two, ≤ 64).
    window: u32,
    /// Rounds a sequence number can tell apart: 2^32 / n.
    rounds_mod: u64,
    /// Send times (ns since start) of the last `window` rounds per target.
    sent_at: Vec<u64>,
    /// (due ns, target), due times non-decreasing.
    run_queue: VecDeque<(u64, u32)>,
    /// Per attempt level (Alive) or one queue: (deadline ns, target, round).
    timeouts: Vec<VecDeque<(u64, u32, u32)>>,
    /// Timeout per attempt level, in ns.
    timeout_ns: Vec<u64>,
    next_send: u64,
    active: usize,
    counters: Counters,
}

/// Bursts after a late wake-up are limited to this much catching up.
const SLACK_NS: u64 = 2_000_000;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Engine {
    /// An engine for these targets, starting at `start`.
    pub fn new(cfg: EngineConfig, addrs: Vec<IpAddr>, start: Instant) -> Result<Self, ConfigError> {
        if cfg.payload_len < probe::ID_LEN {
            return Err(ConfigError::PayloadTooSmall(cfg.payload_len));
        }
        let n = addrs.len();
        if n as u64 > u64::from(u32::MAX) {
            return Err(ConfigError::TooManyTargets(n));
        }
        let (window, timeout_ns) = match cfg.mode {
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
                let mut levels = Vec::new();
                for _ in 0..=retries {
                    levels.push(ns(Duration::from_secs_f64(t.min(1e9))));
                    t *= backoff;
                }
                ((retries + 1).next_power_of_two(), levels)
            }
            Mode::Count(_) | Mode::Forever => {
                let single = matches!(cfg.mode, Mode::Count(1));
                if cfg.period.is_zero() && !single {
                    return Err(ConfigError::ZeroPeriod);
                }
                let periods = if single {
                    1
                } else {
                    (ns(cfg.timeout) / ns(cfg.period)).saturating_add(2)
                };
                let window = periods.next_power_of_two().min(64) as u32;
                // A round must be settled before its slot is reused.
                let cap = ns(cfg.period).saturating_mul(u64::from(window) - 1);
                let t = if single {
                    ns(cfg.timeout)
                } else {
                    ns(cfg.timeout).min(cap)
                };
                (window, vec![t])
            }
        };
        let levels = timeout_ns.len();
        let run_queue = (0..n as u32).map(|i| (0, i)).collect();
        let rounds_mod = if n == 0 { 1 } else { (1u64 << 32) / n as u64 };
        Ok(Self {
            start,
            targets: vec![TargetState::default(); n],
            sent_at: vec![0; n * window as usize],
            window,
            rounds_mod,
            run_queue,
            timeouts: vec![VecDeque::new(); levels],
            timeout_ns,
            next_send: 0,
            active: n,
            counters: Counters::default(),
            addrs,
            cfg,
        })
    }

    fn now_ns(&self, t: Instant) -> u64 {
        ns(t.saturating_duration_since(self.start))
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Target addresses, by index.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// Counts of everything that was not a fresh reply.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// True when every target is done (never in [`Mode::Forever`]).
    pub fn is_done(&self) -> bool {
        self.active == 0
    }

    /// Probes sent so far, all targets.
    pub fn total_sent(&self) -> u64 {
        self.targets.iter().map(|t| u64::from(t.s.sent)).sum()
    }

    /// Statistics of one target so far.
    pub fn stats(&self, target: usize) -> TargetStats {
        self.targets[target].s
    }

    /// Every target's statistics, consuming the engine (reuses its memory).
    pub fn into_stats(self) -> Vec<TargetStats> {
        self.targets.into_iter().map(|t| t.s).collect()
    }

    fn slot(&self, target: u32, round: u32) -> usize {
        target as usize * self.window as usize + (round % self.window) as usize
    }

    fn bit(&self, round: u32) -> u64 {
        1u64 << (round % self.window)
    }

    /// The sequence number of probe `round` of `target`.
    pub fn seq_of(&self, target: u32, round: u32) -> u32 {
        let n = self.addrs.len() as u64;
        ((u64::from(round) % self.rounds_mod) * n + u64::from(target)) as u32
    }

    /// (target, round) of a sequence number, if it names a probe sent.
    fn decode(&self, seq: u32) -> Option<(u32, u32)> {
        let n = self.addrs.len() as u64;
        if n == 0 {
            return None;
        }
        let target = (u64::from(seq) % n) as u32;
        let rmod = u64::from(seq) / n;
        if rmod >= self.rounds_mod {
            return None;
        }
        let sent = self.targets[target as usize].s.sent;
        let last = u64::from(sent.checked_sub(1)?);
        let diff = (last % self.rounds_mod + self.rounds_mod - rmod) % self.rounds_mod;
        let round = last.checked_sub(diff)?;
        Some((target, round as u32))
    }

    /// True when `round` of `target` is still within the kept window.
    fn in_window(&self, target: u32, round: u32) -> bool {
        let sent = self.targets[target as usize].s.sent;
        round < sent && sent - round <= self.window
    }

    /// The next probe to send at `now`, if one is due and the interval
    /// allows. Call repeatedly to fill a batch.
    pub fn poll_send(&mut self, now: Instant) -> Option<Probe> {
        let now = self.now_ns(now);
        let interval = ns(self.cfg.interval);
        loop {
            let &(due, target) = self.run_queue.front()?;
            if due > now || (interval > 0 && self.next_send > now) {
                return None;
            }
            self.run_queue.pop_front();
            if self.targets[target as usize].done {
                continue;
            }
            if self.targets[target as usize].s.sent == u32::MAX {
                // 2^32 probes to one target: nothing left to number them.
                continue;
            }
            let t = &self.targets[target as usize];
            let round = t.s.sent;
            let level = match self.cfg.mode {
                Mode::Alive { .. } => (round as usize).min(self.timeout_ns.len() - 1),
                _ => 0,
            };
            let slot = self.slot(target, round);
            self.sent_at[slot] = now;
            let bit = self.bit(round);
            let t = &mut self.targets[target as usize];
            t.replied &= !bit;
            t.expired &= !bit;
            t.s.sent += 1;
            t.pending += 1;
            let sent = t.s.sent;
            if interval > 0 {
                self.next_send = self.next_send.max(now.saturating_sub(SLACK_NS)) + interval;
            }
            let deadline = now.saturating_add(self.timeout_ns[level]);
            self.timeouts[level].push_back((deadline, target, round));
            let again = match self.cfg.mode {
                Mode::Count(c) => sent < c,
                Mode::Forever => true,
                Mode::Alive { .. } => false,
            };
            if again {
                let due = now.saturating_add(ns(self.cfg.period));
                self.run_queue.push_back((due, target));
            }
            return Some(Probe {
                target,
                round,
                seq: self.seq_of(target, round),
                addr: self.addrs[target as usize],
            });
        }
    }

    /// Record that sending `probe` failed locally.
    pub fn on_send_error(
        &mut self,
        probe: &Probe,
        kind: std::io::ErrorKind,
        obs: &mut impl Observer,
    ) {
        let e = &mut self.targets[probe.target as usize].s.errors;
        *e = e.saturating_add(1);
        obs.event(&Event::SendFailed {
            target: probe.target,
            round: probe.round,
            kind,
        });
    }

    /// When the engine next needs attention (a send or a timeout), if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let send = self
            .run_queue
            .front()
            .map(|&(due, _)| due.max(self.next_send));
        let timeout = self
            .timeouts
            .iter()
            .filter_map(|q| q.front().map(|e| e.0))
            .min();
        let at = match (send, timeout) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.start + Duration::from_nanos(at))
    }

    fn finish(&mut self, target: u32, obs: &mut impl Observer) {
        let t = &mut self.targets[target as usize];
        if !t.done {
            t.done = true;
            self.active -= 1;
            let alive = t.s.received > 0;
            obs.event(&Event::Done { target, alive });
        }
    }

    fn count_done(&self, target: u32) -> bool {
        let t = &self.targets[target as usize];
        matches!(self.cfg.mode, Mode::Count(c) if t.s.sent >= c && t.pending == 0)
    }

    /// Expire probes whose reply is overdue at `now`.
    pub fn poll_timeouts(&mut self, now: Instant, obs: &mut impl Observer) {
        let now = self.now_ns(now);
        for level in 0..self.timeouts.len() {
            while let Some(&(deadline, target, round)) = self.timeouts[level].front() {
                if deadline > now {
                    break;
                }
                self.timeouts[level].pop_front();
                if self.targets[target as usize].done {
                    continue;
                }
                let replied = self.targets[target as usize].replied & self.bit(round) != 0;
                if replied {
                    continue;
                }
                let bit = self.bit(round);
                let t = &mut self.targets[target as usize];
                t.expired |= bit;
                t.pending = t.pending.saturating_sub(1);
                obs.event(&Event::Timeout { target, round });
                match self.cfg.mode {
                    Mode::Alive { retries, .. } => {
                        if round < retries {
                            self.run_queue.push_back((now, target));
                        } else {
                            self.finish(target, obs);
                        }
                    }
                    Mode::Count(_) if self.count_done(target) => self.finish(target, obs),
                    _ => {}
                }
            }
        }
    }

    /// Stop: no target gets more probes (Ctrl-C, deadline). Targets that
    /// were probed are reported done; those never probed are left out.
    pub fn stop(&mut self, obs: &mut impl Observer) {
        self.run_queue.clear();
        for i in 0..self.targets.len() {
            if self.targets[i].s.sent > 0 {
                self.finish(i as u32, obs);
            } else if !self.targets[i].done {
                self.targets[i].done = true;
                self.active -= 1;
            }
        }
    }

    /// Handle one received ICMP message.
    pub fn on_packet(&mut self, pkt: &Incoming<'_>, obs: &mut impl Observer) {
        if let Some(e) = pkt.error {
            self.on_queued_error(pkt, e, obs);
            return;
        }
        let (icmp, ttl) = if pkt.ip_header {
            let Ok(ip) = Ipv4Packet::new_checked(pkt.bytes) else {
                self.counters.malformed += 1;
                return;
            };
            (&pkt.bytes[ip.header_len()..], Some(ip.ttl()))
        } else {
            (pkt.bytes, pkt.ttl)
        };
        let Ok(p) = Packet::new_checked(icmp) else {
            self.counters.malformed += 1;
            return;
        };
        let mode = if pkt.verify_checksum && pkt.family == Family::V4 {
            ChecksumMode::V4
        } else {
            ChecksumMode::Kernel
        };
        let repr = match Repr::parse(&p, pkt.family, &mode) {
            Ok(r) => r,
            Err(sockbox_wire::icmp::Error::Checksum) => {
                self.counters.bad_checksum += 1;
                return;
            }
            // Types we do not track (router adverts, our own requests seen
            // on a raw socket…) are not replies: ignore them.
            Err(_) => return,
        };
        match repr {
            Repr::EchoReply { data, .. } => self.on_reply(pkt, data, icmp.len(), ttl, obs),
            Repr::DstUnreachable { code, quoted }
            | Repr::TimeExceeded { code, quoted }
            | Repr::ParamProblem { code, quoted, .. } => {
                self.on_error(pkt, repr.message(), code, quoted, obs);
            }
            Repr::PacketTooBig { quoted, .. } => {
                self.on_error(pkt, Message::PacketTooBig, 0, quoted, obs);
            }
            Repr::EchoRequest { .. } => {}
        }
    }

    fn on_reply(
        &mut self,
        pkt: &Incoming<'_>,
        data: &[u8],
        bytes: usize,
        ttl: Option<u8>,
        obs: &mut impl Observer,
    ) {
        let Some((target, round)) = probe::read(data, self.cfg.token).and_then(|s| self.decode(s))
        else {
            self.counters.foreign += 1;
            return;
        };
        if self.addrs[target as usize] != pkt.from {
            self.counters.foreign += 1;
            return;
        }
        if !probe::pattern_ok(data) {
            self.counters.corrupt += 1;
            return;
        }
        if !self.in_window(target, round) {
            self.counters.late += 1;
            return;
        }
        let now = self.now_ns(pkt.at);
        let sent = self.sent_at[self.slot(target, round)];
        let rtt_ns = now.saturating_sub(sent);
        let bit = self.bit(round);
        let alive_mode = matches!(self.cfg.mode, Mode::Alive { .. });
        let t = &mut self.targets[target as usize];
        let duplicate = t.replied & bit != 0;
        let expired = t.expired & bit != 0;
        if duplicate {
            t.s.duplicates = t.s.duplicates.saturating_add(1);
            self.counters.duplicates += 1;
        } else if expired && !alive_mode {
            // Its timeout was reported already; in Alive mode a late reply
            // still proves the host is up.
            self.counters.late += 1;
            return;
        } else {
            t.replied |= bit;
            if !expired {
                t.pending = t.pending.saturating_sub(1);
            }
            t.s.received += 1;
            t.s.rtt.add(Duration::from_nanos(rtt_ns));
        }
        obs.event(&Event::Reply(Reply {
            target,
            round,
            from: pkt.from,
            bytes,
            ttl,
            rtt: Duration::from_nanos(rtt_ns),
            duplicate,
        }));
        if !duplicate && (alive_mode || self.count_done(target)) {
            self.finish(target, obs);
        }
    }

    fn on_queued_error(&mut self, pkt: &Incoming<'_>, e: QueuedIcmpError, obs: &mut impl Observer) {
        let Ok(p) = Packet::new_checked(pkt.bytes) else {
            return;
        };
        if p.message(pkt.family) != Message::EchoRequest {
            return;
        }
        let Some(seq) = probe::read(p.payload(), self.cfg.token) else {
            return;
        };
        self.report_error(pkt, seq, e.dst, e.message, e.code, obs);
    }

    fn report_error(
        &mut self,
        pkt: &Incoming<'_>,
        seq: u32,
        dst: IpAddr,
        message: Message,
        code: u8,
        obs: &mut impl Observer,
    ) {
        let Some((target, round)) = self.decode(seq) else {
            return;
        };
        if self.addrs[target as usize] != dst || !self.in_window(target, round) {
            return;
        }
        self.counters.errors += 1;
        let e = &mut self.targets[target as usize].s.errors;
        *e = e.saturating_add(1);
        obs.event(&Event::Error(IcmpError {
            target,
            round,
            from: pkt.from,
            message,
            code,
            family: pkt.family,
        }));
    }

    fn on_error(
        &mut self,
        pkt: &Incoming<'_>,
        message: Message,
        code: u8,
        quoted: &[u8],
        obs: &mut impl Observer,
    ) {
        let Ok(q) = Quote::parse(pkt.family, quoted) else {
            return;
        };
        // Prefer the id in the quoted data; routers that quote only the
        // ICMP header leave the sequence in the ident/seq fields.
        let seq = probe::read(q.data, self.cfg.token).or_else(|| {
            (q.data.len() < probe::ID_LEN).then(|| probe::from_header_fields(q.ident, q.seq_no))
        });
        if let Some(seq) = seq {
            self.report_error(pkt, seq, q.dst, message, code, obs);
        }
    }
}
