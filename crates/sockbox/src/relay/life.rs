//! The lifecycle rules of one relayed connection, shared by both engines:
//! what local EOF, peer EOF and the clock mean. Pure: no I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Flow, Outcome, RelayOptions};

/// When the peer's EOF ends a relay whose local input is still open (a
/// terminal, a one-shot listener), what that input already holds is still
/// sent: until it pauses this long…
pub(crate) const FINISH_IDLE: Duration = Duration::from_millis(50);
/// …or for at most this long.
pub(crate) const FINISH_MAX: Duration = Duration::from_secs(2);

/// What the engine should do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep going.
    Continue,
    /// Stop with this outcome.
    Finish(Outcome),
}

/// Last-activity clock shared by the direction workers.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Something moved just now.
    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When something last moved.
    pub(crate) fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The state of one connection's lifecycle.
#[derive(Debug)]
pub(crate) struct Life {
    flow: Flow,
    quit: Option<Duration>,
    idle: Option<Duration>,
    end_on_remote_eof: bool,
    local_eof_at: Option<Instant>,
    local_done: bool,
    remote_done: bool,
}

impl Life {
    pub(crate) fn new(opts: &RelayOptions) -> Self {
        Self {
            flow: opts.flow,
            quit: opts.quit_after_eof,
            idle: opts.idle_timeout,
            end_on_remote_eof: opts.end_on_remote_eof,
            local_eof_at: None,
            // Receive-only never reads the local side: it is done from the start.
            local_done: opts.flow == Flow::RecvOnly,
            remote_done: false,
        }
    }

    /// The local input ended (the caller half-closes the socket if asked to).
    pub(crate) fn local_eof(&mut self, now: Instant) -> Step {
        self.local_done = true;
        self.local_eof_at = Some(now);
        if self.remote_done || self.flow == Flow::SendOnly || self.quit == Some(Duration::ZERO) {
            return Step::Finish(if self.remote_done {
                Outcome::Done
            } else {
                Outcome::Quit
            });
        }
        Step::Continue
    }

    /// The peer stopped sending (TCP FIN).
    pub(crate) fn remote_eof(&mut self) -> Step {
        self.remote_done = true;
        if self.local_done || self.end_on_remote_eof {
            Step::Finish(Outcome::Done)
        } else {
            Step::Continue
        }
    }

    /// The next moment a timer could end the relay.
    pub(crate) fn deadline(&self, last_activity: Instant) -> Option<Instant> {
        let quit = self.local_eof_at.zip(self.quit).map(|(t, d)| t + d);
        let idle = self.idle.map(|d| last_activity + d);
        match (quit, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Check the timers at `now`.
    pub(crate) fn on_timer(&self, now: Instant, last_activity: Instant) -> Step {
        if let (Some(t), Some(d)) = (self.local_eof_at, self.quit)
            && now >= t + d
        {
            return Step::Finish(Outcome::Quit);
        }
        if let Some(d) = self.idle
            && now >= last_activity + d
        {
            return Step::Finish(Outcome::Idle(d));
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RelayOptions {
        RelayOptions::default()
    }

    #[test]
    fn half_close_waits_for_the_peer() {
        let mut l = Life::new(&opts());
        let now = Instant::now();
        assert_eq!(l.local_eof(now), Step::Continue);
        assert_eq!(l.deadline(now), None);
        assert_eq!(l.remote_eof(), Step::Finish(Outcome::Done));
    }

    #[test]
    fn peer_eof_first_keeps_sending_unless_told() {
        let mut l = Life::new(&opts());
        assert_eq!(l.remote_eof(), Step::Continue);
        assert_eq!(l.local_eof(Instant::now()), Step::Finish(Outcome::Done));
        let mut o = opts();
        o.end_on_remote_eof = true;
        assert_eq!(Life::new(&o).remote_eof(), Step::Finish(Outcome::Done));
    }

    #[test]
    fn quit_timer_after_local_eof() {
        let mut o = opts();
        o.quit_after_eof = Some(Duration::from_secs(2));
        let mut l = Life::new(&o);
        let now = Instant::now();
        assert_eq!(l.local_eof(now), Step::Continue);
        assert_eq!(l.deadline(now), Some(now + Duration::from_secs(2)));
        assert_eq!(
            l.on_timer(now + Duration::from_secs(1), now),
            Step::Continue
        );
        assert_eq!(
            l.on_timer(now + Duration::from_secs(2), now),
            Step::Finish(Outcome::Quit)
        );
        o.quit_after_eof = Some(Duration::ZERO);
        assert_eq!(Life::new(&o).local_eof(now), Step::Finish(Outcome::Quit));
    }

    #[test]
    fn idle_timer_and_flows() {
        let mut o = opts();
        o.idle_timeout = Some(Duration::from_secs(5));
        let l = Life::new(&o);
        let now = Instant::now();
        assert_eq!(l.deadline(now), Some(now + Duration::from_secs(5)));
        assert_eq!(
            l.on_timer(now + Duration::from_secs(5), now),
            Step::Finish(Outcome::Idle(Duration::from_secs(5)))
        );
        o.flow = Flow::RecvOnly;
        assert_eq!(Life::new(&o).remote_eof(), Step::Finish(Outcome::Done));
        o.flow = Flow::SendOnly;
        assert_eq!(Life::new(&o).local_eof(now), Step::Finish(Outcome::Quit));
    }
}
