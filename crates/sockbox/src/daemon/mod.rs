//! The daemon layer: a harness that turns any tokio server into a Unix
//! daemon, and the pieces it is made of. Every sockbox server (`listen`,
//! `chat`, `broker`, `echo`, `udp listen`, `mcast listen`, `wake listen`)
//! runs in it.
//!
//! # The harness
//!
//! [`Daemon`] is a builder of settings; [`Daemon::run`] builds the tokio
//! runtime, runs the body, and does every daemon step around it in the
//! order that security and readiness require (see [`harness`](mod@harness)):
//! detach while single-threaded, pid file, log, hardening, signals, the
//! privilege drop after binding, readiness to the waiting parent and to
//! systemd, the drain on SIGTERM, the flush of queued output, the removal
//! of the pid file. The body binds, calls [`Ctx::ready`], and serves until
//! [`Ctx::shutdown`] fires:
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//!
//! use sockbox::daemon::{Daemon, LogFormat};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::TcpListener;
//!
//! fn main() -> ExitCode {
//!     Daemon::new()
//!         .detach(true) // the command returns once the server is ready
//!         .pid_file("/tmp/upper.pid")
//!         .log_file("/tmp/upper.log")
//!         .log_format(LogFormat::Json)
//!         .user("nobody") // switched to in ctx.ready(), after binding
//!         .grace(Duration::from_secs(5))
//!         .run(|mut ctx| async move {
//!             let listener = TcpListener::bind("127.0.0.1:7000").await?; // as root
//!             ctx.ready()?;
//!             tracing::info!("serving on {}", listener.local_addr()?);
//!             loop {
//!                 let (conn, _peer) = tokio::select! {
//!                     accepted = listener.accept() => accepted?,
//!                     () = ctx.shutdown.wait() => return Ok(0), // SIGTERM, SIGINT
//!                 };
//!                 let active = ctx.stats.connection(); // SIGUSR1 logs the counters
//!                 tokio::spawn(async move {
//!                     let _active = active;
//!                     let (rd, mut wr) = conn.into_split();
//!                     let mut lines = BufReader::new(rd).lines();
//!                     while let Ok(Some(line)) = lines.next_line().await {
//!                         let reply = format!("{}\n", line.to_uppercase());
//!                         if wr.write_all(reply.as_bytes()).await.is_err() {
//!                             break;
//!                         }
//!                     }
//!                 });
//!             }
//!         })
//! }
//! ```
//!
//! The body's error type is [`BoxError`] with [`Daemon::run`], which prints
//! errors and returns the exit code; [`Daemon::try_run`] takes any error
//! type implementing [`Failure`] (exit code and message) and hands errors
//! back to the caller, as the `sockbox` command does to add its flag hints.
//! [`Ctx::output`] gives the body output lines that never block it
//! ([`lines`]).
//!
//! # The pieces
//!
//! - [`detach`](mod@detach): double fork, `setsid`, `umask 027`, `chdir /`,
//!   stdio to `/dev/null` or the log file, and a readiness pipe so the
//!   command that started the daemon exits 0 only once it is bound and
//!   ready, or with the daemon's own error otherwise. Programs the servers
//!   run start in the directory the daemon was started from
//!   ([`prepare_child`]).
//! - [`pidfile`]: atomic, `flock`-held pid files; stale ones are taken over,
//!   a live one names the running pid.
//! - [`privilege`]: chroot, group and user after binding, with the
//!   capability bounding set emptied and the drop verified permanent.
//! - [`notify`]: systemd `READY=1` / `STOPPING=1` over `$NOTIFY_SOCKET`.
//! - [`logfile`]: a log file reopened on SIGHUP for rotation.
//! - [`lines`]: bounded, non-blocking line queues with their own writer
//!   thread (the log and [`Ctx::output`] use them).
//! - [`stats`] and [`Reload`]: live counters for SIGUSR1, reload requests
//!   for SIGHUP.
//!
//! # Zombies
//!
//! No process this layer or the servers start is left unreaped:
//! - the intermediate child of the double fork is reaped by the original
//!   process right after it exits (`waitpid` in [`detach::detach`]);
//! - the daemon itself is reparented to init (or the nearest subreaper) when
//!   the intermediate exits, which reaps it when it ends;
//! - programs run per connection (`sockbox listen --exec`) are started with
//!   `tokio::process`, whose SIGCHLD driver reaps every child it spawned,
//!   including children whose `Child` handle was dropped (the orphan queue).
//!
//! There is deliberately no catch-all `waitpid(-1)` SIGCHLD handler: it
//! would steal exit statuses from `tokio::process`, which waits by pid. And
//! the daemon does not make itself a child subreaper, so grandchildren that
//! an exec'd program abandons go to init, not to us.
//!
//! SIGPIPE is ignored by the Rust runtime before `main` (writes to a closed
//! socket fail with `EPIPE` instead of killing the server); `std::process`
//! and `tokio::process` restore the default disposition in programs they
//! execute.

mod ctx;
pub mod detach;
pub mod error;
mod failure;
pub mod harness;
pub mod lines;
pub mod logfile;
mod logging;
pub mod notify;
pub mod pidfile;
pub mod privilege;
mod signals;
pub mod stats;

pub use ctx::Ctx;
pub use detach::{Detached, Outcome, Readiness, ReadyWaiter, detach, prepare_child, start_dir};
pub use error::{DaemonError, DropStep, PathRole};
pub use failure::{BoxError, Failure};
pub use harness::Daemon;
pub use lines::{LineQueue, Notice, Stream};
pub use logfile::LogFile;
pub use logging::LogFormat;
pub use notify::Notifier;
pub use pidfile::{PidFile, PidFileLocation, Removal};
pub use privilege::DropPlan;
pub use stats::{ServerStats, StatsSnapshot};

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use tokio::sync::watch;

/// The directory of `path`, opened now (`O_PATH`), and the file name in it:
/// what the pid file and the log file work from, so later opens, renames
/// and removals still find the file after `chdir /`, `chroot` or a rename of
/// the working directory. `path` must name a file, not end in `..` or `/`.
pub(crate) fn dir_and_name(path: &Path) -> io::Result<(OwnedFd, OsString)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "names no file"))?
        .to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = nix::fcntl::open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(error::io_err)?;
    Ok((dir, name))
}

/// [`dir_and_name`] for one of the harness's paths: a missing directory is
/// the user's mistake ([`DaemonError::MissingDirectory`]).
pub(crate) fn open_dir_of(path: &Path, role: PathRole) -> Result<(OwnedFd, OsString), DaemonError> {
    dir_and_name(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            return DaemonError::MissingDirectory {
                role,
                path: path.to_owned(),
                dir: dir.to_owned(),
            };
        }
        let path = path.to_owned();
        match role {
            PathRole::PidFile => DaemonError::PidFile { path, source },
            PathRole::LogFile => DaemonError::LogFile { path, source },
            PathRole::Chroot => DaemonError::Chroot { path, source },
        }
    })
}

/// Tells a running server that its configuration files (allow/deny lists)
/// should be re-read: the harness bumps it on SIGHUP.
#[derive(Clone, Debug)]
pub struct Reload {
    rx: watch::Receiver<u64>,
}

/// The sending side of [`Reload`].
#[derive(Debug)]
pub struct ReloadTrigger {
    tx: watch::Sender<u64>,
}

/// A connected reload trigger and receiver.
pub fn reload_channel() -> (ReloadTrigger, Reload) {
    let (tx, rx) = watch::channel(0);
    (ReloadTrigger { tx }, Reload { rx })
}

impl ReloadTrigger {
    /// Ask every receiver to reload.
    pub fn trigger(&self) {
        self.tx.send_modify(|g| *g += 1);
    }
}

impl Reload {
    /// A receiver that never fires (for servers run without a daemon layer).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(0);
        // Keep the sender alive forever so `changed` pends instead of erroring.
        std::mem::forget(tx);
        Self { rx }
    }

    /// Wait for the next reload request. Pends forever when the trigger is gone.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
