//! The harness every server subcommand runs in (`listen`, `chat`, `broker`,
//! `echo`, `udp listen`, `mcast listen`, `wake listen`).
//!
//! Order of events, which matters for security and for `--daemon`:
//! 1. (being written) daemonize: fork before any thread exists;
//! 2. build the tokio runtime, wire SIGINT/SIGTERM to shutdown and SIGHUP to reload;
//! 3. the server binds its sockets (as root if started as root);
//! 4. it calls [`Ctx::ready`]: (being written) privilege drop, pid file,
//!    readiness to the waiting parent and to systemd;
//! 5. it serves until the shutdown fires.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use sockbox::Shutdown;
use sockbox::daemon::{Reload, ServerStats, reload_channel};

use crate::cmd::runtime;

/// Flags shared by every server subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Daemon")]
pub struct DaemonArgs {
    /// Run in the background; the command returns once the server is bound and ready.
    #[arg(long)]
    pub daemon: bool,
    /// Write the server's pid here and hold an exclusive lock on it while running.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// After binding, switch to this user (needs root).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// After binding, switch to this group (default: the user's primary group).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// After binding, chroot into this directory.
    #[arg(long, value_name = "DIR")]
    pub chroot: Option<PathBuf>,
    /// Append logs here (reopened on SIGHUP, for log rotation).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Tell systemd (via $NOTIFY_SOCKET) when ready and when stopping.
    #[arg(long)]
    pub notify: bool,
    /// On SIGTERM/SIGINT, wait this long for open connections to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

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
    daemon: DaemonArgs,
}

impl Ctx {
    /// Call once the server's sockets are bound: drops privileges and reports
    /// readiness. Errors here must abort the server.
    #[allow(clippy::unnecessary_wraps)] // the daemon layer fills this in
    pub fn ready(&mut self) -> anyhow::Result<()> {
        let _ = &self.daemon;
        Ok(())
    }
}

/// Run a server body inside the harness and return its exit code.
pub fn serve<F, Fut>(args: &DaemonArgs, body: F) -> anyhow::Result<u8>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    runtime::block_on(async move {
        let shutdown = Shutdown::new();
        runtime::shutdown_on_signals(&shutdown)?;
        let (reload_tx, reload) = reload_channel();
        spawn_reload_on_hup(reload_tx)?;
        let ctx = Ctx {
            shutdown,
            reload,
            stats: ServerStats::new(),
            grace: args.grace,
            daemon: args.clone(),
        };
        body(ctx).await
    })?
}

fn spawn_reload_on_hup(tx: sockbox::daemon::ReloadTrigger) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tx.trigger();
        }
    });
    Ok(())
}
