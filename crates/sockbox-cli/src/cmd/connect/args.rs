//! The relay flags `connect` and `listen` share, and what they ask for.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sockbox::net::{self, Family};
use sockbox::relay::{Dump, DumpFormat, ExecSpec, Flow, RelayOptions};

use super::exit::addr_error;
use crate::cmd::serve::path_arg;
use crate::exit::usage;
use crate::input::duration;

/// Relay flags shared by `connect` and `listen`.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// UDP instead of TCP.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Close a connection after this long with no data either way (e.g. 30, 1m).
    #[arg(short = 'i', long = "idle-timeout", value_name = "DURATION", value_parser = duration)]
    pub idle: Option<Duration>,
    /// Quit this long after end of standard input (0: at once).
    #[arg(short = 'q', long = "quit-after", value_name = "SECS", value_parser = duration)]
    pub quit: Option<Duration>,
    /// At end of input, do not shut down the socket's write side.
    #[arg(long)]
    pub no_shutdown: bool,
    /// Only send; what the peer sends is read and dropped. Ends at end of input.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,
    /// Only receive; standard input is never read.
    #[arg(long)]
    pub recv_only: bool,
    /// Run this program per connection, its stdin/stdout on the socket (split on spaces); the
    /// connection ends when its output ends (as ncat), or -q after that.
    #[arg(
        short = 'e',
        long = "exec",
        value_name = "CMD",
        conflicts_with = "sh_exec"
    )]
    pub exec: Option<String>,
    /// Run this command line with /bin/sh -c per connection.
    #[arg(short = 'c', long = "sh-exec", value_name = "CMD")]
    pub sh_exec: Option<String>,
    /// Dump all traffic to FILE in hexdump -C layout, each chunk tagged `> send` or
    /// `< recv` with peer, byte offset and time.
    #[arg(short = 'x', long = "hex-dump", value_name = "FILE", value_parser = path_arg)]
    pub hex_dump: Option<PathBuf>,
    /// Dump all traffic to FILE as text, with the same tags.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "hex_dump",
        value_parser = path_arg
    )]
    pub text_dump: Option<PathBuf>,
    /// Never use splice(2); copy through a buffer (for comparison).
    #[arg(long)]
    pub no_splice: bool,
    /// Log connections to stderr (-vv for more).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Send each LF of standard input (or of the program's output) as CRLF,
    /// for text protocols (SMTP, HTTP by hand); what is received is left as it is.
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Numeric addresses only: a host name is an error, never looked up.
    #[arg(short = 'n', long = "nodns")]
    pub nodns: bool,
    /// The address is a UNIX-domain socket path (-u for a datagram socket).
    #[arg(short = 'U', long = "unixsock", conflicts_with_all = ["ipv4", "ipv6"])]
    pub unix: bool,
}

impl RelayArgs {
    /// `-4`/`-6`.
    pub fn family(&self) -> Family {
        if self.ipv4 {
            Family::V4
        } else if self.ipv6 {
            Family::V6
        } else {
            Family::Any
        }
    }

    /// The relay rules these flags ask for.
    pub fn options(&self) -> RelayOptions {
        RelayOptions {
            flow: if self.send_only {
                Flow::SendOnly
            } else if self.recv_only {
                Flow::RecvOnly
            } else {
                Flow::Both
            },
            half_close: !self.no_shutdown,
            quit_after_eof: self.quit,
            idle_timeout: self.idle,
            // At a terminal nobody can type EOF for a peer that has left.
            end_on_remote_eof: std::io::stdin().is_terminal(),
            zero_copy: !self.no_splice,
            crlf: self.crlf,
            ..RelayOptions::default()
        }
    }

    /// The program to run per connection, if any, checked now (not at the
    /// first connection) and with a relative path made absolute.
    pub fn exec_spec(&self) -> anyhow::Result<Option<ExecSpec>> {
        if let Some(e) = &self.exec {
            let spec = ExecSpec::from_words(e).ok_or_else(|| usage("-e needs a program to run"))?;
            return match spec.resolve_program() {
                Ok(spec) => Ok(Some(spec)),
                Err(e) => Err(usage(format!("-e: {e}"))),
            };
        }
        Ok(self.sh_exec.as_ref().map(|s| ExecSpec::Shell(s.clone())))
    }

    /// Open the dump file, if asked for.
    pub fn dump(&self) -> anyhow::Result<Option<Dump>> {
        let (path, format) = match (&self.hex_dump, &self.text_dump) {
            (Some(p), _) => (p, DumpFormat::Hex),
            (None, Some(p)) => (p, DumpFormat::Text),
            (None, None) => return Ok(None),
        };
        Dump::create(path, format)
            .map(Some)
            .map_err(|e| usage(e.to_string()))
    }

    /// Resolve `host` for `port`, or with -n take it only as an address
    /// literal (a name is a usage error).
    pub fn resolve(&self, host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
        if self.nodns {
            numeric(host)?;
        }
        net::resolve(host, port, self.family()).map_err(|e| addr_error(&e))
    }

    /// The log level `-v` asks for: warn, info (`-v`), debug (`-vv`).
    pub fn log_level(&self) -> tracing::Level {
        match self.verbose {
            0 => tracing::Level::WARN,
            1 => tracing::Level::INFO,
            _ => tracing::Level::DEBUG,
        }
    }

    /// Log to stderr at the level -v asks for, unless a logger is installed.
    pub fn init_logging(&self) {
        if tracing::dispatcher::has_been_set() {
            return;
        }
        let level = self.log_level();
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            // A failed write to a closed stderr would be reported with
            // `eprintln!`, which panics.
            .log_internal_errors(false)
            .try_init();
    }
}

/// `host` as an address literal, for -n: a name is a usage error.
pub fn numeric(host: &str) -> anyhow::Result<IpAddr> {
    match net::addr::parse_literal(host) {
        Ok(Some(ip)) => Ok(ip),
        Ok(None) => Err(usage(format!(
            "-n: {host:?} is a name and -n forbids looking names up: give an address such as \
             127.0.0.1 or ::1, or drop -n"
        ))),
        Err(e) => Err(addr_error(&e)),
    }
}
