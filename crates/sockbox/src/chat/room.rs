//! The state every connection of one server shares: the configuration, the
//! [`Hub`], connection numbers, and the shutdown of the operator's own
//! participants (network clients get theirs from the server skeleton).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::hub::{ANNOUNCE_EVERY, Hub};
use super::outbox::Limits;
use super::{ChatConfig, ChatEvent, Mode, SHUTDOWN_NOTICE};
use crate::net::Drain;

/// Shared by the handler, the sessions and the server.
pub(crate) struct Room {
    pub config: ChatConfig,
    pub hub: Hub,
    /// The operator's own participants (a terminal): not network clients, so
    /// neither capped nor drained by the skeleton.
    pub participants: TaskTracker,
    /// Their shutdown stages.
    pub participant_drain: Drain,
    /// When shutdown began.
    closed_at: OnceLock<Instant>,
    next_id: AtomicU64,
}

impl Room {
    pub fn new(config: ChatConfig) -> Self {
        Self {
            config,
            hub: Hub::new(),
            participants: TaskTracker::new(),
            participant_drain: Drain::new(),
            closed_at: OnceLock::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// A connection number unique within this server, from 1.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn event(&self, e: &ChatEvent) {
        self.config.events.on_event(e);
    }

    pub fn is_chat(&self) -> bool {
        self.config.mode == Mode::Chat
    }

    /// The slow-reader rules of every client's queue.
    pub fn limits(&self) -> Limits {
        Limits {
            soft: self.config.queue_limit,
            max_lag: self.config.max_lag,
            ceiling: self.config.queue_ceiling,
        }
    }

    /// Shutdown begins: send what was announced, queue the shutdown notice
    /// (chat; the broker adds nothing to the byte stream) after everything
    /// queued, close every queue, and tell every reader to stop.
    pub fn close(&self) {
        let _ = self.closed_at.set(Instant::now());
        if let Some(r) = self.hub.remote() {
            r.closing();
        }
        self.hub.flush_announcements();
        let notice = self.is_chat().then_some(SHUTDOWN_NOTICE);
        self.hub.close_all(notice);
        self.participant_drain.begin();
    }

    /// How long ago shutdown began (zero before).
    pub fn closing_for(&self) -> Duration {
        self.closed_at
            .get()
            .map_or(Duration::ZERO, Instant::elapsed)
    }

    /// Send collected announcements every [`ANNOUNCE_EVERY`] until the
    /// room closes.
    pub async fn tick(&self) {
        loop {
            tokio::select! {
                () = self.participant_drain.soft().wait() => break,
                () = tokio::time::sleep(ANNOUNCE_EVERY) => self.hub.flush_announcements(),
            }
        }
    }
}
