//! The steps of [`Daemon::try_run`] after the fork, and what prepares them.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::super::ctx::{Ctx, Shared};
use super::super::detach::Readiness;
use super::super::error::DaemonError;
use super::super::failure::Failure;
use super::super::lines;
use super::super::logfile::LogFile;
use super::super::logging::{self, LogSink};
use super::super::notify::{NOTIFY_SOCKET, Notifier};
use super::super::pidfile::{PidFile, PidFileLocation, Removal};
use super::super::privilege::DropPlan;
use super::super::reload_channel;
use super::super::signals::{SignalCtx, log_stats, spawn_signal_handlers};
use super::super::stats::ServerStats;
use super::{Daemon, GRACE_SLACK, MAX_GRACE};
use crate::Shutdown;

impl Daemon {
    /// Steps 3 to 7 of the module documentation.
    pub(super) fn run_server<F, Fut, E>(
        &self,
        p: Prepared,
        shared: &Arc<Shared>,
        body: F,
    ) -> Result<u8, E>
    where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Result<u8, E>>,
        E: Failure,
    {
        let sink = logging::sink(self.log_format, p.log_file);
        if self.install_logger {
            logging::install(
                &sink,
                self.log_format,
                self.log_env.as_deref(),
                self.level(),
            );
        }
        if p.notify_missing {
            tracing::warn!(
                "systemd notification asked for, but $NOTIFY_SOCKET is not set, so there is nobody to notify"
            );
        }
        let pid_file = match p.pid_loc {
            Some(loc) => Some(acquire_pid_file(loc, shared)?),
            None => None,
        };
        let pid_file = Arc::new(Mutex::new(pid_file));
        if let Some(plan) = &shared.plan {
            plan.harden()?;
        }
        // While the process still has one thread.
        forget_notify_socket();
        // The first thread of the process: after the hardening, which
        // threads inherit only when created later.
        sink.start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(DaemonError::Runtime)?;
        let log = p.log.map(|l| (l, sink));
        let result = rt.block_on(self.serve(shared, log, &pid_file, body));
        // Tasks still running (a blocked stdin reader, a hung session) must
        // not keep the process alive.
        rt.shutdown_timeout(Duration::from_millis(500));
        shared.flush_outputs(flush_deadline(shared, self.grace));
        remove_pid_file(&pid_file);
        result
    }

    /// Steps 4 to 6, inside the runtime.
    async fn serve<F, Fut, E>(
        &self,
        shared: &Arc<Shared>,
        log: Option<(Arc<LogFile>, LogSink)>,
        pid_file: &Arc<Mutex<Option<PidFile>>>,
        body: F,
    ) -> Result<u8, E>
    where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Result<u8, E>>,
        E: Failure,
    {
        let shutdown = Shutdown::new();
        let (reload_tx, reload) = reload_channel();
        let stats = ServerStats::new();
        spawn_signal_handlers(SignalCtx {
            shutdown: shutdown.clone(),
            reload: reload_tx,
            stats: stats.clone(),
            log,
            detached: self.detach,
            shared: shared.clone(),
            pid_file: pid_file.clone(),
        })?;
        let ctx = Ctx {
            shutdown: shutdown.clone(),
            reload,
            stats: stats.clone(),
            grace: self.grace,
            shared: shared.clone(),
            readied: false,
        };
        let (stop, when) = (shutdown.clone(), shared.clone());
        tokio::spawn(async move {
            stop.wait().await;
            let _ = when.stopped_at.set(Instant::now());
        });
        let grace = self.grace;
        let result = tokio::select! {
            biased;
            r = body(ctx) => r,
            () = async move {
                shutdown.wait().await;
                tokio::time::sleep(grace + GRACE_SLACK).await;
            } => {
                tracing::warn!(grace = ?grace, "the server did not stop within the grace period: exiting anyway");
                Ok(0)
            }
        };
        shared.stopping();
        // A server that never became ready did not start: no summary.
        if shared.ready.load(std::sync::atomic::Ordering::Acquire) {
            log_stats(&stats, "stopped");
        }
        result
    }
}

/// Lock the pid file and, for a user switch, make sure that user may remove
/// it at exit (or say at once that it will not).
fn acquire_pid_file(loc: PidFileLocation, shared: &Shared) -> Result<PidFile, DaemonError> {
    let (pf, notice) = loc.acquire(std::process::id())?;
    if let Some(n) = notice {
        tracing::warn!("{n}");
        shared.readiness().notice(&n);
    }
    if let Some(plan) = &shared.plan
        && let Some((user, uid)) = &plan.user
    {
        let warning = match pf.prepare_user_switch(*uid, plan.gid, &plan.groups) {
            Ok(true) => None,
            Ok(false) => Some(pid_file_stays(&pf, user)),
            Err(e) => Some(format!(
                "{e}: the pid file may be left behind, emptied, when the server stops"
            )),
        };
        if let Some(w) = warning {
            tracing::warn!("{w}");
            shared.readiness().notice(&format!("warning: {w}"));
        }
    }
    Ok(pf)
}

/// The warning for a pid file the user switched to may not delete.
fn pid_file_stays(pf: &PidFile, user: &str) -> String {
    let dir = pf.dir().display();
    let stem = pf
        .path()
        .file_stem()
        .map_or_else(|| "NAME".into(), |s| s.to_string_lossy());
    format!(
        "the pid file {} will be left behind, emptied, when the server stops: user {user} may not \
         delete files in {dir}; to have it removed, put it in a directory that user may write to \
         (for example one made with `install -d -o {user} {}/{stem}`)",
        pf.path().display(),
        dir.to_string().trim_end_matches('/'),
    )
}

/// Until when queued output is written once the server stopped.
pub(super) fn flush_deadline(shared: &Shared, grace: Duration) -> Instant {
    lines::flush_deadline(
        shared.stopped_at.get().copied(),
        grace + GRACE_SLACK,
        Instant::now(),
    )
}

/// A server that ends before `ready` must not leave the parent guessing.
pub(super) fn report_unready<E: Failure>(r: &mut Readiness, result: &Result<u8, E>) {
    if !r.has_waiter() {
        return;
    }
    match result {
        Ok(code) => r.fail(
            if *code == 0 { 3 } else { *code },
            &format!("the server stopped (exit code {code}) before it was ready"),
        ),
        Err(e) => r.fail(e.exit_code().max(1), &e.to_string()),
    }
}

/// Everything opened or resolved before the fork, from the starting directory.
pub(super) struct Prepared {
    pub(super) plan: Option<DropPlan>,
    pub(super) log: Option<Arc<LogFile>>,
    pub(super) log_file: Option<File>,
    pub(super) pid_loc: Option<PidFileLocation>,
    pub(super) notifier: Option<Notifier>,
    pub(super) notify_missing: bool,
}

impl Prepared {
    pub(super) fn new(d: &Daemon) -> Result<Self, DaemonError> {
        if d.grace > MAX_GRACE {
            return Err(DaemonError::GraceTooLong(d.grace));
        }
        let plan = DropPlan::resolve(d.user.as_deref(), d.group.as_deref(), d.chroot.as_deref())?;
        let (log, log_file) = match &d.log_file {
            Some(path) => {
                let mut log = LogFile::new(&absolute(path))?;
                if let Some(plan) = &plan
                    && let (Some(uid), Some(gid)) = (plan.uid(), plan.gid)
                {
                    log.set_owner(uid, gid);
                }
                let file = log.open()?;
                (Some(Arc::new(log)), Some(file))
            }
            None => (None, None),
        };
        let pid_loc = d
            .pid_file
            .as_deref()
            .map(|p| PidFileLocation::new(&absolute(p)))
            .transpose()?;
        let notifier = if d.notify {
            Notifier::from_env()?
        } else {
            None
        };
        Ok(Self {
            plan,
            log,
            log_file,
            pid_loc,
            notifier,
            notify_missing: d.notify && std::env::var_os(NOTIFY_SOCKET).is_none(),
        })
    }
}

/// `path` made absolute against the starting directory (a detached daemon
/// later runs in `/`), for messages and for the directory handle.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Remove our pid file now, reporting what happened.
pub(in crate::daemon) fn remove_pid_file(slot: &Mutex<Option<PidFile>>) {
    let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(pf) = taken else { return };
    let path = pf.path().display().to_string();
    match pf.remove() {
        Ok(Removal::Removed) => tracing::debug!(pid_file = %path, "pid file removed"),
        Ok(Removal::Emptied) => tracing::info!(
            pid_file = %path,
            "pid file emptied, not removed: its directory is not writable after the privilege drop (it now counts as stale)"
        ),
        Ok(Removal::NotOurs) => {
            tracing::warn!(pid_file = %path, "pid file was replaced or removed by someone else; left alone");
        }
        Err(e) => tracing::warn!(error = %e, "cannot remove the pid file"),
    }
}

/// Programs the server executes must not talk to systemd in our name.
fn forget_notify_socket() {
    if std::env::var_os(NOTIFY_SOCKET).is_none() {
        return;
    }
    if crate::sys::process::thread_count().ok() == Some(1) {
        #[expect(unsafe_code)]
        // SAFETY: the process has a single thread (checked just above, and
        // the runtime is built only after this), so nothing reads the
        // environment concurrently.
        unsafe {
            std::env::remove_var(NOTIFY_SOCKET);
        }
    }
}
