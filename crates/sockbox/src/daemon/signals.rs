//! Signal handling for the harness: SIGINT/SIGTERM stop (a second SIGINT
//! exits 130 at once), SIGHUP reopens the log and requests a reload,
//! SIGUSR1 logs the statistics.

use std::sync::{Arc, Mutex};

use tokio::signal::unix::{SignalKind, signal};

use super::ReloadTrigger;
use super::ctx::Shared;
use super::error::DaemonError;
use super::harness::remove_pid_file;
use super::logfile::LogFile;
use super::logging::LogSink;
use super::pidfile::PidFile;
use super::stats::ServerStats;
use crate::Shutdown;

/// What the signal task needs.
pub(super) struct SignalCtx {
    pub(super) shutdown: Shutdown,
    pub(super) reload: ReloadTrigger,
    pub(super) stats: ServerStats,
    /// The log to reopen on SIGHUP, with the sink that writes to it.
    pub(super) log: Option<(Arc<LogFile>, LogSink)>,
    /// Detached: standard error follows the reopened log.
    pub(super) detached: bool,
    pub(super) shared: Arc<Shared>,
    pub(super) pid_file: Arc<Mutex<Option<PidFile>>>,
}

/// Install the handlers (inside the runtime) and spawn the task that serves
/// them.
pub(super) fn spawn_signal_handlers(cx: SignalCtx) -> Result<(), DaemonError> {
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(DaemonError::Signals)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => {
                    if cx.shutdown.is_triggered() {
                        tracing::warn!("second SIGINT: exiting now");
                        remove_pid_file(&cx.pid_file);
                        std::process::exit(130);
                    }
                    stop(&cx, "SIGINT");
                }
                Some(()) = term.recv() => {
                    if cx.shutdown.is_triggered() {
                        tracing::info!("SIGTERM: already stopping");
                    } else {
                        stop(&cx, "SIGTERM");
                    }
                }
                Some(()) = hup.recv() => {
                    if let Some((log, sink)) = &cx.log {
                        match sink.reopen(log, cx.detached) {
                            Ok(()) => tracing::info!(log_file = %log.path().display(), "SIGHUP: log file reopened"),
                            Err(e) => tracing::warn!(error = %e, "SIGHUP: cannot reopen the log file; still writing to the old one"),
                        }
                    }
                    tracing::info!("SIGHUP: reloading configuration");
                    cx.reload.trigger();
                }
                Some(()) = usr1.recv() => log_stats(&cx.stats, "statistics"),
                else => break,
            }
        }
    });
    Ok(())
}

fn stop(cx: &SignalCtx, signal: &str) {
    tracing::info!(signal, "stopping: no new connections; draining open ones");
    cx.shutdown.trigger();
    cx.shared.stopping();
}

/// One log line with every counter of `stats`.
pub(super) fn log_stats(stats: &ServerStats, what: &str) {
    let s = stats.snapshot();
    tracing::info!(
        uptime_secs = s.uptime.as_secs(),
        accepted = s.accepted,
        active = s.active,
        refused = s.refused,
        bytes_in = s.bytes_in,
        bytes_out = s.bytes_out,
        "{what}"
    );
}
