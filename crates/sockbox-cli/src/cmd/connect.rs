//! `sockbox connect HOST PORT`: a TCP/UDP client wired to stdin/stdout or
//! to a program, like `ncat HOST PORT`. Also holds the relay flags shared
//! with `sockbox listen`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use std::net::SocketAddr;

use sockbox::net::{self, AddrError, ConnectError, Connector, Family};
use sockbox::relay::client::{
    ClientLocal, Connected, connect_tcp, connect_udp, relay_exec, relay_stdio, relay_stream,
};
use sockbox::relay::pump::Stopper;
use sockbox::relay::{Dump, DumpFormat, ExecSpec, Flow, Outcome, RelayError, RelayOptions, Report};
use sockbox::tls::{TlsConnector, TlsError};

use crate::cmd::runtime;
use crate::cmd::serve::path_arg;
use crate::exit::{PARTIAL, SUCCESS, usage};
use crate::input::duration;

const EXAMPLES: &str = "Examples:
  sockbox connect example.com 80 <<< $'GET / HTTP/1.0\\r\\n\\r\\n'
  head -c 1G /dev/zero | sockbox connect 10.0.0.2 9000      # splice(2) fast path
  sockbox connect -u 192.0.2.1 53 -q 2 < query.bin           # UDP, quit 2 s after EOF
  sockbox connect -x traffic.dump localhost 25               # hex dump tagged > sent / < received
  sockbox connect -c 'tar cf - ./data' backup.example 9000   # a program's stdin/stdout on the socket
  sockbox connect --tls example.com 443                      # TLS, certificate checked

Half-close: at end of standard input the socket's write side is shut down
(TCP FIN) and output keeps flowing until the peer closes. --no-shutdown keeps
it open; -q SECS quits that long after end of input.

Exit codes: 0 success; 1 the connection failed, was reset by the peer or went
idle (-i); 2 usage or input error (bad host name, bad flag); 3 system failure.";

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
    /// Run this program per connection, its stdin/stdout on the socket (split on spaces).
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
}

/// Arguments of `sockbox connect`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Host name or address to connect to.
    pub host: String,
    /// Port (1-65535).
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Give up connecting after this long (per address tried).
    #[arg(short = 'w', long = "wait", value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Speak TLS over the TCP connection; the certificate must match HOST.
    #[arg(long, conflicts_with = "udp")]
    pub tls: bool,
    /// Trust only the CA certificates in this PEM file (default: the system store).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Accept any server certificate (testing only: anyone can impersonate the server).
    #[arg(long, requires = "tls")]
    pub tls_insecure: bool,
    /// Relay flags.
    #[command(flatten)]
    pub relay: Box<RelayArgs>,
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

/// Where a relay's "why it was not a success" line goes: standard error for
/// the client, the log for a server (a daemon's standard error is its log
/// file or nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Say {
    /// `sockbox: …` on standard error.
    Stderr,
    /// A warning through tracing.
    Log,
}

impl Say {
    fn say(self, msg: &str) {
        match self {
            Self::Stderr => crate::output::errln!("sockbox: {msg}"),
            Self::Log => tracing::warn!("{msg}"),
        }
    }
}

/// The exit code for a finished relay, saying why when it is not 0.
pub fn finish(result: Result<Report, RelayError>, say: Say) -> anyhow::Result<u8> {
    match result {
        Ok(r) => match r.outcome {
            Outcome::Idle(d) => {
                say.say(&format!(
                    "no data for {} (-i): connection closed after {} bytes sent and {} received",
                    humantime::format_duration(d),
                    r.sent,
                    r.received
                ));
                Ok(PARTIAL)
            }
            Outcome::Done | Outcome::Quit | Outcome::Stopped | Outcome::OutputClosed => Ok(SUCCESS),
        },
        Err(e) => relay_error(e, say),
    }
}

/// Map a relay error: peer trouble exits 1, said where `say` says; bad
/// input 2; anything else is a system failure (3). Flag hints are added
/// here: the library's messages name no flag.
pub fn relay_error(e: RelayError, say: Say) -> anyhow::Result<u8> {
    match e {
        RelayError::Reset { .. }
        | RelayError::Unreachable(_)
        | RelayError::Recv { .. }
        | RelayError::Send { .. }
        | RelayError::Tls(TlsError::Handshake { .. })
        | RelayError::TlsTimeout(_) => {
            say.say(&with_tls_hint(&e));
            Ok(PARTIAL)
        }
        RelayError::Connect(c) => connect_error(c, say),
        RelayError::Addr(a) => Err(addr_error(&a)),
        RelayError::Tls(_)
        | RelayError::Acl(_)
        | RelayError::Dump { .. }
        | RelayError::Exec { .. } => Err(usage(e.to_string())),
        other => Err(anyhow::Error::new(other)),
    }
}

/// The error's text, with the flags that answer a refused server
/// certificate when that is what it is.
fn with_tls_hint(e: &(dyn std::error::Error + 'static)) -> String {
    format!("{e}{}", crate::exit::tls_flag_hint(e).unwrap_or(""))
}

/// Connecting failed: the server's fault exits 1, the input's 2.
fn connect_error(e: ConnectError, say: Say) -> anyhow::Result<u8> {
    match e {
        ConnectError::Addr(a) => Err(addr_error(&a)),
        ConnectError::Tls(TlsError::Handshake { .. })
        | ConnectError::Connect { .. }
        | ConnectError::TlsTimeout { .. }
        | ConnectError::GaveUp { .. } => {
            say.say(&with_tls_hint(&e));
            Ok(PARTIAL)
        }
        ConnectError::Timeout { .. } => {
            say.say(&format!("{e} (raise -w to wait longer)"));
            Ok(PARTIAL)
        }
        ConnectError::Tls(t) => Err(usage(t.to_string())),
        ConnectError::Stopped => Ok(SUCCESS),
    }
}

/// A host that gave no usable address is the input's fault (exit 2).
pub fn addr_error(e: &AddrError) -> anyhow::Error {
    match e {
        AddrError::NoAddress {
            family: Family::V4 | Family::V6,
            ..
        } => usage(format!("{e} (drop -4/-6 or use another name)")),
        _ => usage(e.to_string()),
    }
}

/// The TLS client settings, read now: a missing or unreadable CA file is a
/// usage error before anything is connected.
fn client_tls(a: &Args) -> anyhow::Result<TlsConnector> {
    let tls = sockbox::tls::ClientTls {
        ca: a.tls_ca.clone(),
        insecure: a.tls_insecure,
    };
    tls.connector().map_err(|e| match (&e, &a.tls_ca) {
        (TlsError::Pem { .. } | TlsError::Missing { .. } | TlsError::NoRoots(_), Some(_)) => {
            usage(format!("--tls-ca: {e}"))
        }
        _ => usage(e.to_string()),
    })
}

/// Run `sockbox connect`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let r = &a.relay;
    r.init_logging();
    let spec = r.exec_spec()?;
    let opts = r.options();
    let tls = if a.tls { Some(client_tls(a)?) } else { None };
    let addrs = net::resolve(&a.host, a.port, r.family()).map_err(|e| addr_error(&e))?;
    let dump = r.dump()?;
    if let Some(tls) = tls {
        let local = match spec {
            Some(s) => ClientLocal::Exec(s),
            None => ClientLocal::Stdio,
        };
        let connector = Connector::new().family(r.family()).tls(tls);
        let connector = match a.wait {
            Some(w) => connector.timeout(w),
            None => connector,
        };
        let result = run_stream(&connector, &addrs, &a.host, &local, &opts, dump)?;
        return finish(result, Say::Stderr);
    }
    let sock = if r.udp {
        connect_udp(&addrs)
    } else {
        connect_tcp(&addrs, a.wait)
    };
    let sock = match sock {
        Ok(s) => s,
        Err(e) => return relay_error(e, Say::Stderr),
    };
    if let Ok(peer) = sock.peer() {
        tracing::info!("connected to {peer}");
    }
    let result = relay_connected(sock, spec, &opts, dump)?;
    if let Ok(rep) = &result {
        tracing::info!("closed: sent {}, received {}", rep.sent, rep.received);
    }
    finish(result, Say::Stderr)
}

/// Relay a connected socket: the blocking pump for standard I/O, the async
/// engine for a program.
fn relay_connected(
    sock: Connected,
    spec: Option<ExecSpec>,
    opts: &RelayOptions,
    dump: Option<Dump>,
) -> anyhow::Result<Result<Report, RelayError>> {
    let Some(spec) = spec else {
        let stopper = Stopper::new().map_err(anyhow::Error::new)?;
        return Ok(relay_stdio(sock, opts, dump, &stopper));
    };
    let opts = opts.clone();
    runtime::block_on(async move {
        let stop = sockbox::Shutdown::new();
        runtime::shutdown_on_signals(&stop)?;
        Ok::<_, anyhow::Error>(relay_exec(sock, &spec, &opts, dump, &stop).await)
    })?
}

/// Connect with `connector` (TLS) and relay the stream, in a runtime.
fn run_stream(
    connector: &Connector,
    addrs: &[SocketAddr],
    host: &str,
    local: &ClientLocal,
    opts: &RelayOptions,
    dump: Option<Dump>,
) -> anyhow::Result<Result<Report, RelayError>> {
    runtime::block_on(async move {
        let stop = sockbox::Shutdown::new();
        runtime::shutdown_on_signals(&stop)?;
        let stream = tokio::select! {
            r = connector.connect_addrs(addrs, host) => r,
            () = stop.wait() => {
                let stopped = Report { outcome: Outcome::Stopped, sent: 0, received: 0 };
                return Ok(Ok(stopped));
            }
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.into())),
        };
        if let Ok(peer) = stream.peer_addr() {
            tracing::info!("connected to {peer}");
        }
        let result = relay_stream(stream, local, opts, dump, &stop).await;
        if let Ok(rep) = &result {
            tracing::info!("closed: sent {}, received {}", rep.sent, rep.received);
        }
        Ok::<_, anyhow::Error>(result)
    })?
}
