//! The one error type of the daemon layer. Every message names what failed
//! and, where there is one, the fix.

use std::io;
use std::path::PathBuf;

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
        "already running as pid {pid} (pid file {path} is locked); stop that instance first or choose another --pid-file"
    )]
    AlreadyRunning {
        /// The pid file path.
        path: PathBuf,
        /// What the file says (a pid, or a note when it says nothing useful).
        pid: String,
    },
    /// The pid file path is a symbolic link, which we refuse to follow.
    #[error(
        "pid file {0} is a symbolic link; refusing to follow it (remove it or choose another --pid-file)"
    )]
    PidFileSymlink(PathBuf),
    /// `--user`, `--group` or `--chroot` without root.
    #[error(
        "{flag} needs root, but sockbox runs as uid {uid}: start it as root (it switches user after binding) or leave {flag} out"
    )]
    NotRoot {
        /// The flag that needs root.
        flag: &'static str,
        /// Our effective uid.
        uid: u32,
    },
    /// No such user in the user database.
    #[error("unknown user {0:?}: no such name or uid in the user database (see `getent passwd`)")]
    UnknownUser(String),
    /// No such group in the group database.
    #[error("unknown group {0:?}: no such name or gid in the group database (see `getent group`)")]
    UnknownGroup(String),
    /// `--user root` would keep every privilege.
    #[error("--user {0} is uid 0 and would keep full privileges: name an unprivileged user")]
    UserIsRoot(String),
    /// The `--chroot` directory is not usable.
    #[error("--chroot {path}: {source}")]
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
}

impl DaemonError {
    /// True when the error is the user's input (a flag, a name, a second
    /// instance), false when the system refused. The CLI exits 2 for the
    /// former and 3 for the latter.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::AlreadyRunning { .. }
                | Self::PidFileSymlink(_)
                | Self::NotRoot { .. }
                | Self::UnknownUser(_)
                | Self::UnknownGroup(_)
                | Self::UserIsRoot(_)
        )
    }
}

/// `io::Error` from a nix errno.
pub(crate) fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}
