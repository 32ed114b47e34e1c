//! The daemon harness: [`Daemon`] turns a server body into a daemon, doing
//! every step in the order that security and readiness require.
//!
//! 1. check the settings and open, from the starting directory, what later
//!    steps need: the pid file's directory, the log file, the systemd
//!    socket; resolve the user and group (root required);
//! 2. detach (when asked) while the process has one thread (no runtime
//!    yet); the original process waits on the readiness pipe and returns
//!    the daemon's outcome: 0 once ready, the daemon's exit code otherwise;
//! 3. logging (text or JSON; standard error or the log file), the pid file
//!    (locked; handed to the user when only its owner may delete it), and
//!    for a user switch the per-thread hardening (empty capability bounding
//!    set, `no_new_privs`) before any thread exists; only then does the
//!    log's writer thread start (lines are written synchronously until
//!    then);
//! 4. build the tokio runtime; SIGINT/SIGTERM fire `shutdown` (and send
//!    systemd `STOPPING=1`), SIGHUP fires `reload` and reopens the log,
//!    SIGUSR1 logs the statistics; a second SIGINT exits 130 at once;
//! 5. the body binds its sockets (as root if started as root) and calls
//!    [`Ctx::ready`]: chroot, setgroups, setgid, setuid, verified, then
//!    readiness to the waiting parent and to systemd (`READY=1`);
//! 6. it serves until `shutdown` fires and drains for up to `grace`; if it
//!    has not returned `grace` + 0.5 s after the shutdown, the harness stops
//!    waiting for it;
//! 7. log lines and output still queued ([`Ctx::output`]) are written (at
//!    most until `grace` + 0.5 s after the shutdown: output never blocks a
//!    server), and the pid file is removed (emptied when the user switched
//!    to may not delete it; a warning at start says so).

mod steps;

use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::ctx::{Ctx, Shared};
use super::detach::{Detached, Outcome, Readiness, ReadyWaiter, detach};
use super::error::DaemonError;
use super::failure::{BoxError, Failure};
use super::logging::{self, LogFormat};
pub(super) use steps::remove_pid_file;
use steps::{Prepared, absolute, flush_deadline, report_unready};

/// How long past `grace` the harness waits for a server that ignores it.
const GRACE_SLACK: Duration = Duration::from_millis(500);

/// The longest grace period accepted.
const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A server's daemon settings; [`run`](Daemon::run) runs a body under them.
///
/// Everything is off by default: a foreground process, no pid file, no
/// privilege drop, logs on standard error, a 10 s grace period.
#[derive(Debug, Clone)]
pub struct Daemon {
    name: String,
    detach: bool,
    pid_file: Option<PathBuf>,
    user: Option<String>,
    group: Option<String>,
    chroot: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_format: LogFormat,
    log_level: tracing::Level,
    log_env: Option<String>,
    install_logger: bool,
    notify: bool,
    grace: Duration,
}

impl Default for Daemon {
    fn default() -> Self {
        Self::new()
    }
}

impl Daemon {
    /// Foreground, no pid file, no privilege drop, logs on standard error
    /// at `info`, grace 10 s; messages prefixed with the program's name.
    pub fn new() -> Self {
        let name = std::env::args_os()
            .next()
            .and_then(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "daemon".to_owned());
        Self {
            name,
            detach: false,
            pid_file: None,
            user: None,
            group: None,
            chroot: None,
            log_file: None,
            log_format: LogFormat::Text,
            log_level: tracing::Level::INFO,
            log_env: None,
            install_logger: true,
            notify: false,
            grace: Duration::from_secs(10),
        }
    }

    /// The name the waiting parent prefixes the daemon's messages with.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Run in the background: double fork, new session, `chdir /`, stdio
    /// to `/dev/null` (standard error to the log file, if any). The
    /// original process returns once the body called [`Ctx::ready`] (0), or
    /// with the daemon's error.
    #[must_use]
    pub fn detach(mut self, on: bool) -> Self {
        self.detach = on;
        self
    }

    /// Write the server's pid here and hold an exclusive lock on it while
    /// it runs; a second instance fails naming the first one's pid.
    /// Relative paths are taken from the starting directory.
    #[must_use]
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// Once the body calls [`Ctx::ready`], switch to this user (name or
    /// uid; needs root). Its primary group too, unless [`group`](Self::group).
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Once ready, switch to this group (name or gid; needs root).
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Once ready, chroot into this directory (needs root).
    #[must_use]
    pub fn chroot(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chroot = Some(dir.into());
        self
    }

    /// Append logs to this file instead of standard error, reopening it on
    /// SIGHUP (for rotation). A detached daemon's standard error goes there
    /// too.
    #[must_use]
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Text (the default) or JSON lines.
    #[must_use]
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// The log level when the environment sets none. Detached or with a
    /// log file, at least `info` is logged (a log was asked for).
    #[must_use]
    pub fn log_level(mut self, level: tracing::Level) -> Self {
        self.log_level = level;
        self
    }

    /// An environment variable holding a tracing filter (`debug`,
    /// `sockbox=trace`), read before `$RUST_LOG`.
    #[must_use]
    pub fn log_env(mut self, var: impl Into<String>) -> Self {
        self.log_env = Some(var.into());
        self
    }

    /// Whether the harness installs the global tracing subscriber (on by
    /// default). Turn it off when the program sets up its own tracing: the
    /// harness still logs through `tracing`, a detached daemon's standard
    /// error still goes to the log file, and SIGHUP still reopens it there.
    #[must_use]
    pub fn install_logger(mut self, on: bool) -> Self {
        self.install_logger = on;
        self
    }

    /// Tell systemd (`$NOTIFY_SOCKET`) `READY=1` when ready and `STOPPING=1`
    /// on the way out, for `Type=notify` units.
    #[must_use]
    pub fn notify(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }

    /// How long open connections may drain once shutdown fired (at most 24
    /// hours); [`Ctx::grace`] carries it to the body.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Run `body` as a daemon and return the exit code for the process.
    ///
    /// Errors are printed on standard error, prefixed with the program's
    /// name ([`name`](Self::name)), and exit with their
    /// [`Failure::exit_code`]. In the original process of a detached daemon
    /// the code is the daemon's: 0 once it is ready.
    pub fn run<F, Fut>(self, body: F) -> ExitCode
    where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Result<u8, BoxError>>,
    {
        let name = self.name.clone();
        match self.try_run(body) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                say(&format!("{name}: {e}"));
                ExitCode::from(e.exit_code().max(1))
            }
        }
    }

    /// [`run`](Self::run) for programs that report errors themselves.
    ///
    /// `Ok(code)`: the body's exit code; in the original process of a
    /// detached daemon, the daemon's (the harness printed its error, if
    /// any); in a detached daemon whose body failed, the error's code (the
    /// error is in the log). `Err(e)`: an error nobody has seen yet, to
    /// print: a setting was wrong, the body failed in the foreground, or a
    /// detached daemon vanished ([`DaemonError::Vanished`]).
    pub fn try_run<F, Fut, E>(self, body: F) -> Result<u8, E>
    where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Result<u8, E>>,
        E: Failure,
    {
        let mut prepared = Prepared::new(&self)?;
        let readiness = if self.detach {
            let stderr = prepared.log_file.as_ref().map(AsFd::as_fd);
            match detach(stderr)? {
                Detached::Parent(waiter) => return Ok(self.wait_for_daemon(waiter)?),
                Detached::Daemon(r) => r,
            }
        } else {
            Readiness::foreground()
        };
        let shared = Arc::new(Shared::new(
            readiness,
            prepared.plan.take(),
            prepared.notifier.take(),
            self.detach.then(std::process::id),
        ));
        let result = self.run_server(prepared, &shared, body);
        report_unready(&mut shared.readiness(), &result);
        let outcome = match result {
            // A detached daemon's standard error is the log file (or
            // nothing): log the error once, in the chosen format.
            Err(e) if self.detach => {
                tracing::error!("{e}");
                Ok(e.exit_code().max(1))
            }
            Err(e) if self.log_file.is_some() => {
                tracing::error!("{e}");
                Err(e)
            }
            other => other,
        };
        // The last log line is written above: now write what is queued.
        logging::flush(flush_deadline(&shared, self.grace));
        outcome
    }

    /// The level of the subscriber the harness installs.
    fn level(&self) -> tracing::Level {
        if self.detach || self.log_file.is_some() {
            self.log_level.max(tracing::Level::INFO)
        } else {
            self.log_level
        }
    }

    /// In the original process: relay the daemon's notices, return its code.
    fn wait_for_daemon(&self, waiter: ReadyWaiter) -> Result<u8, DaemonError> {
        match waiter.wait(|notice| say(&format!("{}: {notice}", self.name))) {
            Outcome::Ready { .. } => Ok(0),
            Outcome::Failed { code, message } => {
                say(&format!("{}: {message}", self.name));
                Ok(code)
            }
            Outcome::Vanished => Err(DaemonError::Vanished {
                log: self.log_file.as_deref().map(absolute),
            }),
        }
    }
}

/// One line to standard error; a closed or full standard error is no
/// reason to panic (the exit code says what happened).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests;
