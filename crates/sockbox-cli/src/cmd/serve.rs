//! The harness every server subcommand runs in (`listen`, `chat`, `broker`,
//! `echo`, `udp listen`, `mcast listen`, `wake listen`): the shared daemon
//! flags ([`DaemonArgs`]) mapped onto the library's
//! [`sockbox::daemon::Daemon`], which does the work in the right order (see
//! its documentation), and the library's errors mapped to exit codes (2 for
//! the user's input, 3 for the system) and flag hints.

mod args;

pub use args::{AclArgs, DaemonArgs, LogFormat, SIGNALS_HELP, path_arg};
pub use sockbox::daemon::{Ctx, LineQueue, Stream};

use std::fmt;
use std::future::Future;

use sockbox::daemon::{Daemon, DaemonError, DropStep, Failure};

use crate::exit;

/// The environment variable with the log filter of every server.
const LOG_ENV: &str = "SOCKBOX_LOG";

/// Run a server body inside the harness and return its exit code.
///
/// Log level: `$SOCKBOX_LOG` (or `$RUST_LOG`) when set; otherwise
/// `foreground_level` (`-v` flags map here), raised to `info` with
/// `--daemon` or `--log-file` (a log was asked for).
pub fn serve_with<F, Fut>(
    args: &DaemonArgs,
    foreground_level: tracing::Level,
    body: F,
) -> anyhow::Result<u8>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    daemon(args, foreground_level)
        .try_run(|ctx| async move { body(ctx).await.map_err(CliError) })
        .map_err(|e| e.0)
}

/// The library's settings for these flags.
fn daemon(args: &DaemonArgs, level: tracing::Level) -> Daemon {
    let mut d = Daemon::new()
        .name("sockbox")
        .detach(args.daemon)
        .log_format(match args.log_format {
            LogFormat::Text => sockbox::daemon::LogFormat::Text,
            LogFormat::Json => sockbox::daemon::LogFormat::Json,
        })
        .log_level(level)
        .log_env(LOG_ENV)
        .notify(args.notify)
        .grace(args.grace);
    if let Some(p) = &args.pid_file {
        d = d.pid_file(p);
    }
    if let Some(u) = &args.user {
        d = d.user(u);
    }
    if let Some(g) = &args.group {
        d = d.group(g);
    }
    if let Some(c) = &args.chroot {
        d = d.chroot(c);
    }
    if let Some(l) = &args.log_file {
        d = d.log_file(l);
    }
    d
}

/// A server's error as the harness sees it: the message as `sockbox`
/// prints it, and its exit code.
struct CliError(anyhow::Error);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&exit::render(&self.0))
    }
}

impl From<DaemonError> for CliError {
    fn from(e: DaemonError) -> Self {
        Self(daemon_err(e))
    }
}

impl Failure for CliError {
    fn exit_code(&self) -> u8 {
        exit::code_for(&self.0)
    }
}

/// The flag that asks for a privilege-drop step.
fn flag(step: DropStep) -> &'static str {
    match step {
        DropStep::User => "--user",
        DropStep::Group => "--group",
        DropStep::Chroot => "--chroot",
    }
}

/// Daemon errors with the flag that caused them; the user's fault exits 2,
/// the rest 3.
fn daemon_err(e: DaemonError) -> anyhow::Error {
    let hint = match &e {
        DaemonError::NotRoot { step, uid } => {
            let flag = flag(*step);
            return exit::usage(format!(
                "{flag} needs root, but sockbox runs as uid {uid}: start it as root (it switches \
                 user after binding) or leave {flag} out"
            ));
        }
        DaemonError::Vanished { log: None } => {
            return anyhow::anyhow!(
                "the daemon exited before it was ready; run it without --daemon, or with \
                 --log-file, to see why"
            );
        }
        DaemonError::GraceTooLong(_) => Some("--grace"),
        DaemonError::UserIsRoot(_) | DaemonError::UnknownUser(_) => Some("--user"),
        DaemonError::UnknownGroup(_) => Some("--group"),
        DaemonError::AlreadyRunning { .. } | DaemonError::PidFileSymlink(_) => Some("--pid-file"),
        DaemonError::MissingDirectory { role, .. } => Some(match role {
            sockbox::daemon::PathRole::PidFile => "--pid-file",
            sockbox::daemon::PathRole::LogFile => "--log-file",
            sockbox::daemon::PathRole::Chroot => "--chroot",
        }),
        DaemonError::Notify { .. } => Some("--notify"),
        _ => None,
    };
    match (hint, e.is_usage()) {
        (Some(flag), true) => exit::usage(format!("{flag}: {e}")),
        (Some(flag), false) => anyhow::Error::new(e).context(flag),
        (None, true) => exit::usage(e.to_string()),
        (None, false) => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests;
