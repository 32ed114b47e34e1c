//! What the harness hands a server body: the shutdown and reload signals,
//! the statistics, the grace period, and the one call that ends start-up,
//! [`Ctx::ready`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::Reload;
use super::detach::Readiness;
use super::error::DaemonError;
use super::lines::{self, LineQueue, Notice, Output, Stream};
use super::notify::Notifier;
use super::privilege::DropPlan;
use super::stats::ServerStats;
use crate::Shutdown;

/// What a server body gets from [`Daemon::run`](super::Daemon::run).
///
/// Bind the sockets (as root, when started as root), call
/// [`ready`](Ctx::ready), then serve until [`shutdown`](Ctx::shutdown)
/// fires, draining open connections for at most [`grace`](Ctx::grace).
pub struct Ctx {
    /// Fires on SIGINT/SIGTERM.
    pub shutdown: Shutdown,
    /// Fires on SIGHUP: re-read configuration files (allow/deny lists).
    pub reload: Reload,
    /// Counters the server updates; SIGUSR1 logs them.
    pub stats: ServerStats,
    /// How long to let open connections drain after shutdown fires.
    pub grace: Duration,
    pub(super) shared: Arc<Shared>,
    pub(super) readied: bool,
}

/// State the harness and [`Ctx`] share.
pub(super) struct Shared {
    readiness: Mutex<Readiness>,
    pub(super) plan: Option<DropPlan>,
    notifier: Option<Notifier>,
    /// Our pid when detached (systemd started another process).
    main_pid: Option<u32>,
    stopping_sent: AtomicBool,
    /// The body called [`Ctx::ready`].
    pub(super) ready: AtomicBool,
    /// Queues made by [`Ctx::output`], flushed when the server stops.
    outputs: Mutex<Vec<LineQueue>>,
    /// When `shutdown` fired: queued output is written until `grace` after.
    pub(super) stopped_at: OnceLock<Instant>,
}

impl Shared {
    pub(super) fn new(
        readiness: Readiness,
        plan: Option<DropPlan>,
        notifier: Option<Notifier>,
        main_pid: Option<u32>,
    ) -> Self {
        Self {
            readiness: Mutex::new(readiness),
            plan,
            notifier,
            main_pid,
            stopping_sent: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            outputs: Mutex::new(Vec::new()),
            stopped_at: OnceLock::new(),
        }
    }

    pub(super) fn readiness(&self) -> MutexGuard<'_, Readiness> {
        self.readiness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Send `STOPPING=1` once.
    pub(super) fn stopping(&self) {
        if let Some(n) = &self.notifier
            && !self.stopping_sent.swap(true, Ordering::Relaxed)
            && let Err(e) = n.stopping()
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }

    /// Write what every output queue holds, until `deadline`.
    pub(super) fn flush_outputs(&self, deadline: Instant) {
        let queues: Vec<LineQueue> = self
            .outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for q in queues {
            q.flush(deadline);
        }
    }
}

impl Ctx {
    /// Call once the server's sockets are bound: drops privileges (chroot,
    /// group, user; verified permanent) and reports readiness to the
    /// waiting parent of a detached daemon and to systemd. An error here
    /// must abort the server. Later calls do nothing.
    pub fn ready(&mut self) -> Result<(), DaemonError> {
        if self.readied {
            return Ok(());
        }
        if let Some(plan) = &self.shared.plan {
            plan.apply()?;
            let user = plan.user.as_ref().map(|(name, _)| name.as_str());
            tracing::info!(
                user = user.unwrap_or("(unchanged)"),
                gid = plan.gid.map(nix::unistd::Gid::as_raw),
                chroot = plan.chroot.as_ref().map(|p| p.display().to_string()),
                "dropped privileges"
            );
            if plan.chroot.is_some() && user.is_none() {
                tracing::warn!(
                    "chroot without a user switch: a process that stays root can leave a chroot"
                );
            }
        }
        self.readied = true;
        self.shared.ready.store(true, Ordering::Release);
        self.shared.readiness().ready();
        if let Some(n) = &self.shared.notifier
            && let Err(e) = n.ready(self.shared.main_pid)
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
        tracing::info!(pid = std::process::id(), "ready");
        Ok(())
    }

    /// True once [`ready`](Ctx::ready) has succeeded.
    pub fn is_ready(&self) -> bool {
        self.readied
    }

    /// Lines to `stream` that never block the server (events, JSON lines):
    /// a queue of [`lines::CAPACITY`] lines drained by its own thread; when
    /// it is full, lines are dropped and `notice` makes the line that says
    /// how many. The harness writes what is still queued when the server
    /// stops, within the grace period.
    pub fn output(&self, stream: Stream, notice: Notice) -> LineQueue {
        self.output_to(stream.output(), notice)
    }

    /// [`output`](Ctx::output) to any writer: `out` is called with batches
    /// of whole lines from the queue's own thread.
    pub fn output_to(&self, out: Output, notice: Notice) -> LineQueue {
        let q = LineQueue::spawn("sockbox-output", lines::CAPACITY, out, notice);
        self.shared
            .outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(q.clone());
        q
    }
}
