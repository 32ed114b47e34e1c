//! The harness every server subcommand runs in (`listen`, `chat`, `broker`,
//! `echo`, `udp listen`, `mcast listen`, `wake listen`).
//!
//! Order of events, which matters for security and for `--daemon`:
//! 1. check the flags and open, from the starting directory, what later
//!    steps need: the pid file's directory, the log file, the systemd
//!    socket; resolve `--user`/`--group` (root required);
//! 2. `--daemon`: detach while the process has one thread (no runtime
//!    yet); the original process waits on the readiness pipe and exits with
//!    the daemon's outcome: 0 once ready, the daemon's error otherwise;
//! 3. logging (text or JSON; standard error or `--log-file`), the pid file
//!    (locked), and for `--user` the per-thread hardening (empty capability
//!    bounding set, `no_new_privs`) before any thread exists; only then
//!    does the log's writer thread start (lines are written synchronously
//!    until then);
//! 4. build the tokio runtime; SIGINT/SIGTERM fire `shutdown` (and send
//!    systemd `STOPPING=1`), SIGHUP fires `reload` and reopens the log,
//!    SIGUSR1 logs the statistics; a second SIGINT exits 130 at once;
//! 5. the server binds its sockets (as root if started as root) and calls
//!    [`Ctx::ready`]: chroot, setgroups, setgid, setuid, verified, then
//!    readiness to the waiting parent and to systemd (`READY=1`);
//! 6. it serves until `shutdown` fires and drains for up to `grace`; if it
//!    has not returned `grace` + 0.5 s after the shutdown, the harness stops
//!    waiting for it;
//! 7. log lines and server output still queued are written (at most until
//!    `grace` + 0.5 s after the shutdown; see [`lines`]: output never
//!    blocks a server), and the pid file is removed (emptied when a `--user`
//!    may not unlink it).
//!
//! Zombies: see the `sockbox::daemon` module documentation (nothing here
//! starts a process that is not reaped).

mod args;
pub mod lines;
mod logging;
mod signals;

pub use args::{AclArgs, DaemonArgs, LogFormat, SIGNALS_HELP, path_arg};
pub use lines::{LineQueue, Notice, Stream};

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use sockbox::Shutdown;
use sockbox::daemon::{
    DaemonError, Detached, DropPlan, LogFile, Notifier, Outcome, PidFile, PidFileLocation,
    Readiness, ReadyWaiter, Reload, Removal, ServerStats, reload_channel,
};

use crate::cmd::runtime;
use crate::exit;
use signals::{SignalCtx, log_stats, spawn_signal_handlers};

/// How long past `grace` the harness waits for a server that ignores it.
const GRACE_SLACK: Duration = Duration::from_millis(500);

/// What a server gets from the harness.
pub struct Ctx {
    /// Fires on SIGINT/SIGTERM.
    pub shutdown: Shutdown,
    /// Fires on SIGHUP: re-read allow/deny files.
    pub reload: Reload,
    /// Counters the server updates; SIGUSR1 logs them.
    pub stats: ServerStats,
    /// How long to let open connections drain after shutdown fires.
    pub grace: Duration,
    shared: Arc<Shared>,
    readied: bool,
}

/// State the harness and [`Ctx`] share.
struct Shared {
    readiness: Mutex<Readiness>,
    plan: Option<DropPlan>,
    notifier: Option<Notifier>,
    /// Our pid when detached (systemd started another process).
    main_pid: Option<u32>,
    stopping_sent: AtomicBool,
    /// Queues made by [`Ctx::output`], flushed when the server stops.
    outputs: Mutex<Vec<LineQueue>>,
    /// When `shutdown` fired: queued output is written until `grace` after.
    stopped_at: OnceLock<Instant>,
}

impl Shared {
    fn readiness(&self) -> MutexGuard<'_, Readiness> {
        self.readiness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Send `STOPPING=1` once.
    fn stopping(&self) {
        if let Some(n) = &self.notifier
            && !self.stopping_sent.swap(true, Ordering::Relaxed)
            && let Err(e) = n.stopping()
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

impl Ctx {
    /// Call once the server's sockets are bound: drops privileges
    /// (`--chroot`, `--group`, `--user`, verified permanent) and reports
    /// readiness to the waiting `--daemon` parent and to systemd. Errors here
    /// must abort the server. Later calls do nothing.
    pub fn ready(&mut self) -> anyhow::Result<()> {
        if self.readied {
            return Ok(());
        }
        if let Some(plan) = &self.shared.plan {
            plan.apply().map_err(daemon_err)?;
            let user = plan.user.as_ref().map(|(name, _)| name.as_str());
            tracing::info!(
                user = user.unwrap_or("(unchanged)"),
                gid = plan.gid.map(nix::unistd::Gid::as_raw),
                chroot = plan.chroot.as_ref().map(|p| p.display().to_string()),
                "dropped privileges"
            );
            if plan.chroot.is_some() && user.is_none() {
                tracing::warn!("--chroot without --user: a root process can leave a chroot");
            }
        }
        self.readied = true;
        self.shared.readiness().ready();
        if let Some(n) = &self.shared.notifier
            && let Err(e) = n.ready(self.shared.main_pid)
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
        tracing::info!(pid = std::process::id(), "ready");
        Ok(())
    }

    /// Lines to `stream` that never block the server (events, JSON lines):
    /// a queue of [`lines::CAPACITY`] lines drained by its own thread; when
    /// it is full, lines are dropped and `notice` makes the line that says
    /// how many. The harness writes what is still queued when the server
    /// stops, within the grace period.
    pub fn output(&self, stream: Stream, notice: Notice) -> LineQueue {
        let q = LineQueue::spawn("sockbox-output", lines::CAPACITY, stream.output(), notice);
        self.shared
            .outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(q.clone());
        q
    }
}

/// Run a server body inside the harness and return its exit code.
///
/// Log level: `$SOCKBOX_LOG` (or `$RUST_LOG`) when set; otherwise `info`
/// with `--daemon` or `--log-file` (a log was asked for) and `warn` in the
/// foreground, so a server used interactively keeps standard error for its
/// own messages. [`serve_with`] chooses the foreground level.
pub fn serve<F, Fut>(args: &DaemonArgs, body: F) -> anyhow::Result<u8>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    serve_with(args, tracing::Level::WARN, body)
}

/// [`serve`], logging at `foreground_level` when neither `--daemon` nor
/// `--log-file` is given (`-v` flags map here). With either, the level is
/// `info` or `foreground_level`, whichever is more verbose.
pub fn serve_with<F, Fut>(
    args: &DaemonArgs,
    foreground_level: tracing::Level,
    body: F,
) -> anyhow::Result<u8>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    let level = if args.daemon || args.log_file.is_some() {
        foreground_level.max(tracing::Level::INFO)
    } else {
        foreground_level
    };
    let mut prepared = Prepared::new(args)?;
    let readiness = if args.daemon {
        let stderr = prepared.log_file.as_ref().map(AsFd::as_fd);
        match sockbox::daemon::detach(stderr).map_err(daemon_err)? {
            Detached::Parent(waiter) => return Ok(wait_for_daemon(waiter, args)),
            Detached::Daemon(r) => r,
        }
    } else {
        Readiness::foreground()
    };
    let shared = Arc::new(Shared {
        readiness: Mutex::new(readiness),
        plan: prepared.plan.take(),
        notifier: prepared.notifier.take(),
        main_pid: args.daemon.then(std::process::id),
        stopping_sent: AtomicBool::new(false),
        outputs: Mutex::new(Vec::new()),
        stopped_at: OnceLock::new(),
    });
    let result = run_server(args, prepared, &shared, level, body);
    report_unready(&mut shared.readiness(), &result);
    let outcome = match result {
        // A detached server's standard error is the log file (or nothing):
        // log the error once, in the chosen format, and exit with its code.
        Err(e) if args.daemon => {
            tracing::error!("{}", exit::render(&e));
            Ok(exit::code_for(&e))
        }
        Err(e) if args.log_file.is_some() => {
            tracing::error!("{}", exit::render(&e));
            Err(e)
        }
        other => other,
    };
    // The last log line is written above: now write what is queued.
    logging::flush(flush_deadline(&shared, args));
    outcome
}

/// Until when queued output is written once the server stopped.
fn flush_deadline(shared: &Shared, args: &DaemonArgs) -> Instant {
    lines::flush_deadline(
        shared.stopped_at.get().copied(),
        args.grace + GRACE_SLACK,
        Instant::now(),
    )
}

/// A server that ends before `ready` must not leave the parent guessing.
fn report_unready(r: &mut Readiness, result: &anyhow::Result<u8>) {
    if !r.has_waiter() {
        return;
    }
    match result {
        Ok(code) => r.fail(
            if *code == 0 { exit::SYSTEM } else { *code },
            &format!("the server stopped (exit code {code}) before it was ready"),
        ),
        Err(e) => r.fail(exit::code_for(e), &exit::render(e)),
    }
}

/// In the original process: relay the daemon's notices, exit with its outcome.
fn wait_for_daemon(waiter: ReadyWaiter, args: &DaemonArgs) -> u8 {
    match waiter.wait(|notice| crate::output::errln!("sockbox: {notice}")) {
        Outcome::Ready { .. } => exit::SUCCESS,
        Outcome::Failed { code, message } => {
            crate::output::errln!("sockbox: {message}");
            code
        }
        Outcome::Vanished => {
            let hint = match &args.log_file {
                Some(p) => format!("; see {}", p.display()),
                None => "; run it without --daemon, or with --log-file, to see why".into(),
            };
            crate::output::errln!("sockbox: the daemon exited before it was ready{hint}");
            exit::SYSTEM
        }
    }
}

/// Everything opened or resolved before the fork, from the starting directory.
struct Prepared {
    plan: Option<DropPlan>,
    log: Option<Arc<LogFile>>,
    log_file: Option<File>,
    pid_loc: Option<PidFileLocation>,
    notifier: Option<Notifier>,
    notify_missing: bool,
}

impl Prepared {
    fn new(args: &DaemonArgs) -> anyhow::Result<Self> {
        if args.grace > Duration::from_secs(24 * 3600) {
            return Err(exit::usage("--grace: at most 24h"));
        }
        let plan = DropPlan::resolve(
            args.user.as_deref(),
            args.group.as_deref(),
            args.chroot.as_deref(),
        )
        .map_err(daemon_err)?;
        let (log, log_file) = match &args.log_file {
            Some(path) => {
                let mut log = LogFile::new(&absolute(path)).map_err(daemon_err)?;
                if let Some(plan) = &plan
                    && let (Some(uid), Some(gid)) = (plan.uid(), plan.gid)
                {
                    log.set_owner(uid, gid);
                }
                let file = log.open().map_err(daemon_err)?;
                (Some(Arc::new(log)), Some(file))
            }
            None => (None, None),
        };
        let pid_loc = args
            .pid_file
            .as_deref()
            .map(|p| PidFileLocation::new(&absolute(p)))
            .transpose()
            .map_err(daemon_err)?;
        let notifier = if args.notify {
            Notifier::from_env().map_err(daemon_err)?
        } else {
            None
        };
        Ok(Self {
            plan,
            log,
            log_file,
            pid_loc,
            notifier,
            notify_missing: args.notify
                && std::env::var_os(sockbox::daemon::notify::NOTIFY_SOCKET).is_none(),
        })
    }
}

/// `path` made absolute against the starting directory (the daemon later
/// runs in `/`), for messages and for the directory handle.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Steps 3 to 7 of the module documentation.
fn run_server<F, Fut>(
    args: &DaemonArgs,
    p: Prepared,
    shared: &Arc<Shared>,
    level: tracing::Level,
    body: F,
) -> anyhow::Result<u8>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    let sink = logging::init(args.log_format, p.log_file, level);
    if p.notify_missing {
        tracing::warn!("--notify: $NOTIFY_SOCKET is not set, so there is nobody to notify");
    }
    let pid_file = match p.pid_loc {
        Some(loc) => {
            let (pf, notice) = loc.acquire(std::process::id()).map_err(daemon_err)?;
            if let Some(n) = notice {
                tracing::warn!("{n}");
                shared.readiness().notice(&n);
            }
            Some(pf)
        }
        None => None,
    };
    let pid_file = Arc::new(Mutex::new(pid_file));
    if let Some(plan) = &shared.plan {
        plan.harden().map_err(daemon_err)?;
    }
    // The first thread of the process: after the hardening, which threads
    // inherit only when created later.
    sink.start();
    forget_notify_socket();
    let rt = runtime::build()?;
    let result = rt.block_on(async {
        let shutdown = Shutdown::new();
        let (reload_tx, reload) = reload_channel();
        let stats = ServerStats::new();
        spawn_signal_handlers(SignalCtx {
            shutdown: shutdown.clone(),
            reload: reload_tx,
            stats: stats.clone(),
            sink,
            log: p.log.clone(),
            daemon: args.daemon,
            shared: shared.clone(),
            pid_file: pid_file.clone(),
        })?;
        let ctx = Ctx {
            shutdown: shutdown.clone(),
            reload,
            stats: stats.clone(),
            grace: args.grace,
            shared: shared.clone(),
            readied: false,
        };
        let grace = args.grace;
        let stop = shutdown.clone();
        let when = shared.clone();
        tokio::spawn(async move {
            stop.wait().await;
            let _ = when.stopped_at.set(Instant::now());
        });
        let stop = shutdown.clone();
        let result = tokio::select! {
            biased;
            r = body(ctx) => r,
            () = async move {
                stop.wait().await;
                tokio::time::sleep(grace + GRACE_SLACK).await;
            } => {
                tracing::warn!(grace = ?grace, "the server did not stop within the grace period: exiting anyway");
                Ok(exit::SUCCESS)
            }
        };
        shared.stopping();
        log_stats(&stats, "stopped");
        result
    });
    // Tasks still running (a blocked stdin reader, a hung session) must not
    // keep the process alive.
    rt.shutdown_timeout(Duration::from_millis(500));
    let deadline = flush_deadline(shared, args);
    for q in shared
        .outputs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
    {
        q.flush(deadline);
    }
    remove_pid_file(&pid_file);
    result
}

/// Remove our pid file now, reporting what happened.
fn remove_pid_file(slot: &Mutex<Option<PidFile>>) {
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
    if std::env::var_os(sockbox::daemon::notify::NOTIFY_SOCKET).is_none() {
        return;
    }
    if sockbox::sys::process::thread_count().ok() == Some(1) {
        #[allow(unsafe_code)]
        // SAFETY: the process has a single thread (checked just above, and
        // the runtime is built only after this), so nothing reads the
        // environment concurrently.
        unsafe {
            std::env::remove_var(sockbox::daemon::notify::NOTIFY_SOCKET);
        }
    }
}

/// Daemon errors that are the user's fault exit 2, the rest 3.
fn daemon_err(e: DaemonError) -> anyhow::Error {
    if e.is_usage() {
        exit::usage(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

#[cfg(test)]
mod tests;
