//! The flags every server subcommand shares (`--daemon`, `--pid-file`,
//! `--user`…), and the value parser for file arguments that must survive
//! `--daemon`'s move to `/`.

use std::path::PathBuf;
use std::time::Duration;

use sockbox::net::acl::{Acl, SharedAcl};

use crate::exit::usage;

/// Flags shared by every server subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Daemon")]
pub struct DaemonArgs {
    /// Run in the background; the command returns once the server is bound
    /// and ready (exit 0), or with the server's error. The daemon runs in /;
    /// relative file arguments still name files in the starting directory,
    /// and -e/-c/--reply-exec programs start there.
    #[arg(long)]
    pub daemon: bool,
    /// Write the server's pid here and hold an exclusive lock on it while
    /// running; a second instance exits 2 naming the first one's pid.
    #[arg(long, value_name = "PATH", value_parser = path_arg)]
    pub pid_file: Option<PathBuf>,
    /// After binding, switch to this user (name or uid; needs root).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// After binding, switch to this group (default: the user's primary group).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// After binding, chroot into this directory (needs root).
    #[arg(long, value_name = "DIR", value_parser = path_arg)]
    pub chroot: Option<PathBuf>,
    /// Append logs here instead of standard error (reopened on SIGHUP, for
    /// log rotation). Level from $SOCKBOX_LOG (default info).
    #[arg(long, value_name = "PATH", value_parser = path_arg)]
    pub log_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Tell systemd (via $NOTIFY_SOCKET) when ready (READY=1) and when
    /// stopping (STOPPING=1); for Type=notify units.
    #[arg(long)]
    pub notify: bool,
    /// On SIGTERM/SIGINT, wait this long for open connections to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::input::duration)]
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

/// Signals and the daemon layer, in one place for the `--help` texts of
/// server subcommands.
pub const SIGNALS_HELP: &str = "Signals: TERM/INT stop accepting and drain for --grace; HUP reloads \
allow/deny files and reopens --log-file; USR1 logs statistics.";

/// Value parser for every file or directory argument of a server (and of
/// the flags they share with clients): the path made absolute against the
/// directory sockbox was started from, as it is parsed, so it names the same
/// file after `--daemon` has moved the process to `/` (a SIGHUP reload of
/// `--allowfile`, a dump file, a TLS key).
pub fn path_arg(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("an empty path names no file".to_owned());
    }
    std::path::absolute(s).map_err(|e| format!("{s:?}: {e}"))
}

/// Who may talk to a server: `--allow/--deny` lists and files, shared by
/// `listen`, `chat`, `broker` and `udp listen`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AclArgs {
    /// Accept only these addresses, CIDR ranges or host names (repeat, or
    /// separate with commas; names are resolved at start and on SIGHUP).
    #[arg(long, value_name = "CIDR|HOST", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Refuse these addresses, CIDR ranges or host names (repeat, or separate
    /// with commas).
    #[arg(long, value_name = "CIDR|HOST", value_delimiter = ',')]
    pub deny: Vec<String>,
    /// Accept only what FILE lists: addresses, CIDR ranges or host names,
    /// several per line separated by spaces, # comments; re-read on SIGHUP.
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub allowfile: Vec<PathBuf>,
    /// Refuse what FILE lists (same format; re-read on SIGHUP).
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub denyfile: Vec<PathBuf>,
}

impl AclArgs {
    /// The lists, files read now; a bad entry or an unreadable file is a
    /// usage error.
    pub fn acl(&self) -> anyhow::Result<SharedAcl> {
        let acl = Acl::new(&self.allow, &self.deny, &self.allowfile, &self.denyfile)
            .map_err(|e| usage(e.to_string()))?;
        Ok(SharedAcl::new(acl))
    }
}
