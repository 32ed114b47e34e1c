//! The daemon layer shared by every server (`listen`, `chat`, `broker`,
//! `echo`, `udp listen`, `mcast listen`, `wake listen`).
//!
//! - [`detach`](mod@detach): double fork, `setsid`, `umask 027`, `chdir /`, stdio to
//!   `/dev/null` or the log file, and a readiness pipe so the command that
//!   started the daemon exits 0 only once it is bound and ready, or with
//!   the daemon's own error otherwise.
//! - [`pidfile`]: atomic, `flock`-held pid files; stale ones are taken over,
//!   a live one names the running pid.
//! - [`privilege`]: `--chroot`, `--group`, `--user` after binding, with the
//!   capability bounding set emptied and the drop verified permanent.
//! - [`notify`]: systemd `READY=1` / `STOPPING=1` over `$NOTIFY_SOCKET`.
//! - [`logfile`]: a log file reopened on SIGHUP for rotation.
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
//! - programs run per connection (`listen --exec`) are started with
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

pub mod detach;
pub mod error;
pub mod logfile;
pub mod notify;
pub mod pidfile;
pub mod privilege;
pub mod stats;

pub use detach::{Detached, Outcome, Readiness, ReadyWaiter, detach};
pub use error::DaemonError;
pub use logfile::LogFile;
pub use notify::Notifier;
pub use pidfile::{PidFile, PidFileLocation, Removal};
pub use privilege::DropPlan;
pub use stats::{ServerStats, StatsSnapshot};

use tokio::sync::watch;

/// Tells a running server that its configuration files (allow/deny lists)
/// should be re-read: the CLI bumps it on SIGHUP.
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
