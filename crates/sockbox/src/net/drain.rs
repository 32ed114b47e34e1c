//! The two stages of a server's shutdown, as seen by one connection.

use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::ServerEvent;
use crate::Shutdown;
use crate::event::Events;

/// After the grace period and [`Drain::hard`], how long a server still
/// waits for its tasks before it returns anyway.
const HARD_WAIT: Duration = Duration::from_secs(2);

/// What a connection watches to stop: [`Drain::soft`] fires when the server
/// stops accepting (finish what is in hand: stop reading new requests, send
/// a goodbye), [`Drain::hard`] when the grace period is over (abandon
/// everything). A connection that ignores both is cut when the server's
/// run returns.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    soft: Shutdown,
    hard: Shutdown,
}

impl Drain {
    /// Two fresh signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires when shutdown begins.
    pub fn soft(&self) -> &Shutdown {
        &self.soft
    }

    /// Fires when the grace period is over.
    pub fn hard(&self) -> &Shutdown {
        &self.hard
    }

    /// Begin the shutdown (the server does this; tests may too).
    pub fn begin(&self) {
        self.soft.trigger();
    }

    /// End the grace period: soft fires too, if it has not.
    pub fn end(&self) {
        self.soft.trigger();
        self.hard.trigger();
    }

    /// A server's shutdown, from the tasks' side: begin, wait up to
    /// `grace` for `tracker`'s tasks, then (reporting it to `events`) end
    /// the grace period and wait a little more. Returns how many tasks
    /// were still running when the grace period ended.
    pub(crate) async fn wait_out(
        &self,
        tracker: &TaskTracker,
        grace: Duration,
        events: &Events<ServerEvent>,
    ) -> usize {
        self.begin();
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_ok() {
            return 0;
        }
        let open = tracker.len();
        events.on_event(&ServerEvent::GraceExpired { open });
        self.end();
        let _ = tokio::time::timeout(HARD_WAIT, tracker.wait()).await;
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_implies_begin() {
        let d = Drain::new();
        d.begin();
        assert!(d.soft().is_triggered() && !d.hard().is_triggered());
        let e = Drain::new();
        e.end();
        assert!(e.soft().is_triggered() && e.hard().is_triggered());
    }
}
