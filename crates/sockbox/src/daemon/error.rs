//! The one error type of the daemon layer. Every message names what failed
//! and, where there is one, the fix. No message names a command-line flag:
//! programs built on the harness add their own hints.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which of the harness's paths an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRole {
    /// The pid file.
    PidFile,
    /// The log file.
    LogFile,
    /// The directory to chroot into.
    Chroot,
}

impl fmt::Display for PathRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PidFile => "pid file",
            Self::LogFile => "log file",
            Self::Chroot => "chroot directory",
        })
    }
}

/// A step of the privilege drop, for [`DaemonError::NotRoot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStep {
    /// Switching to another user.
    User,
    /// Switching to another group.
    Group,
    /// Changing the root directory.
    Chroot,
}

impl fmt::Display for DropStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "switching user",
            Self::Group => "switching group",
            Self::Chroot => "changing the root directory (chroot)",
        })
    }
}

/// Everything that can go wrong while daemonizing, locking the pid file,
/// dropping privileges, logging or talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `fork` is only safe while the process has a single thread.
    #[error(
        "cannot daemonize: the process already runs {0} threads (the fork must happen before the async runtime starts)"
    )]
    Threaded(usize),
    /// A system call of the detach sequence failed.
    #[error("cannot {op} while daemonizing: {source}")]
    Detach {
        /// What was being done (`fork`, `setsid`, `open /dev/null`...).
        op: &'static str,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// The directory a path names does not exist.
    #[error("{}", missing_dir(*.role, path, dir))]
    MissingDirectory {
        /// What the path is for.
        role: PathRole,
        /// The path as given (made absolute).
        path: PathBuf,
        /// The directory that is missing.
        dir: PathBuf,
    },
    /// The pid file (or its directory) could not be read or written.
    #[error("pid file {path}: {source}")]
    PidFile {
        /// The pid file path as given.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// Another live process holds the pid file's lock.
    #[error(
        "already running as pid {pid} (pid file {path} is locked); stop that instance first or choose another pid file"
    )]
    AlreadyRunning {
        /// The pid file path.
        path: PathBuf,
        /// What the file says (a pid, or a note when it says nothing useful).
        pid: String,
    },
    /// The pid file path is a symbolic link, which we refuse to follow.
    #[error(
        "pid file {0} is a symbolic link; refusing to follow it (remove it or choose another pid file)"
    )]
    PidFileSymlink(PathBuf),
    /// A privilege drop was asked for without root.
    #[error(
        "{step} needs root, but this process runs as uid {uid}: start it as root (it switches after binding) or do without it"
    )]
    NotRoot {
        /// The step that needs root.
        step: DropStep,
        /// Our effective uid.
        uid: u32,
    },
    /// No such user in the user database.
    #[error("unknown user {0:?}: no such name or uid in the user database (see `getent passwd`)")]
    UnknownUser(String),
    /// No such group in the group database.
    #[error("unknown group {0:?}: no such name or gid in the group database (see `getent group`)")]
    UnknownGroup(String),
    /// Switching to root would keep every privilege.
    #[error("user {0} is uid 0 and would keep full privileges: name an unprivileged user")]
    UserIsRoot(String),
    /// The chroot directory is not usable.
    #[error("chroot directory {path}: {source}")]
    Chroot {
        /// The directory as given.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// A step of the privilege drop failed.
    #[error("cannot drop privileges: {op} failed: {source}")]
    Privilege {
        /// The call that failed (`setgroups`, `setresuid 65534`...).
        op: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// The privilege drop could be undone, or did not reach every thread.
    #[error("privilege drop did not stick: {0}; refusing to serve")]
    DropNotPermanent(String),
    /// The log file could not be opened.
    #[error("log file {path}: {source}")]
    LogFile {
        /// The log file path as given.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// `$NOTIFY_SOCKET` is unusable.
    #[error("systemd notify socket {addr:?} ($NOTIFY_SOCKET): {source}")]
    Notify {
        /// The socket address from the environment.
        addr: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// The grace period asked for is longer than the harness accepts.
    #[error("a grace period of {} is too long: at most 24 hours", fmt_secs(*.0))]
    GraceTooLong(Duration),
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] io::Error),
    /// The detached daemon died before it reported (killed, or crashed).
    #[error("{}", vanished(.log.as_deref()))]
    Vanished {
        /// The daemon's log file, where the reason may be.
        log: Option<PathBuf>,
    },
}

fn missing_dir(role: PathRole, path: &Path, dir: &Path) -> String {
    let (path, dir) = (path.display(), dir.display());
    match role {
        PathRole::Chroot => format!(
            "{role} {path} does not exist: create it first (`mkdir -p {path}`) or choose another"
        ),
        _ => format!(
            "{role} {path}: the directory {dir} does not exist: create it first (`mkdir -p {dir}`) or choose another path"
        ),
    }
}

fn vanished(log: Option<&Path>) -> String {
    match log {
        Some(p) => format!(
            "the daemon exited before it was ready; see {}",
            p.display()
        ),
        None => "the daemon exited before it was ready; its standard error was /dev/null: run it in the foreground, or with a log file, to see why".to_owned(),
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

impl DaemonError {
    /// True when the error is the user's input (a name, a path, a second
    /// instance), false when the system refused. The sockbox command exits
    /// 2 for the former and 3 for the latter.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::AlreadyRunning { .. }
            | Self::MissingDirectory { .. }
            | Self::PidFileSymlink(_)
            | Self::NotRoot { .. }
            | Self::UnknownUser(_)
            | Self::UnknownGroup(_)
            | Self::UserIsRoot(_)
            | Self::GraceTooLong(_) => true,
            Self::Chroot { source, .. } => source.kind() == io::ErrorKind::NotADirectory,
            _ => false,
        }
    }
}

impl From<DaemonError> for io::Error {
    fn from(e: DaemonError) -> Self {
        let kind = if e.is_usage() {
            io::ErrorKind::InvalidInput
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, e)
    }
}

/// `io::Error` from a nix errno.
pub(crate) fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_usage_errors_naming_path_and_fix() {
        let e = DaemonError::MissingDirectory {
            role: PathRole::PidFile,
            path: "/no/such/x.pid".into(),
            dir: "/no/such".into(),
        };
        assert!(e.is_usage());
        let s = e.to_string();
        assert!(
            s.contains("/no/such/x.pid") && s.contains("mkdir -p /no/such"),
            "{s}"
        );
        let e = DaemonError::MissingDirectory {
            role: PathRole::Chroot,
            path: "/jail".into(),
            dir: "/jail".into(),
        };
        assert!(
            e.to_string()
                .starts_with("chroot directory /jail does not exist")
        );
    }

    #[test]
    fn no_message_names_a_flag() {
        let errors = [
            DaemonError::NotRoot {
                step: DropStep::User,
                uid: 1000,
            },
            DaemonError::UserIsRoot("root".into()),
            DaemonError::GraceTooLong(Duration::from_secs(90_000)),
            DaemonError::Vanished { log: None },
            DaemonError::AlreadyRunning {
                path: "/run/x.pid".into(),
                pid: "7".into(),
            },
            DaemonError::PidFileSymlink("/run/x.pid".into()),
        ];
        for e in errors {
            assert!(!e.to_string().contains("--"), "{e}");
        }
    }
}
