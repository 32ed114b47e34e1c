//! `sockbox chat [ADDR] PORT`: multi-client line chat with nicknames (like
//! `ncat --chat`, without split lines or a slow client stalling the room).
//! Also the flags and the server body `sockbox broker` shares.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use sockbox::chat::{ChatConfig, ChatError, ChatEvent, ChatServer, EventSink, Mode, Rate};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::cmd::serve::{AclArgs, Ctx, DaemonArgs, LineQueue, Stream, path_arg, serve_with};
use crate::exit::{UsageContext, usage};

const AFTER_HELP: &str = "\
Clients connect with telnet, nc or `sockbox connect`. Each joins as userN and everyone \
is told; lines are sent to everyone else as `<nick> text`. Commands: /nick NAME, /who, \
/me TEXT, /msg NICK TEXT, /quit [REASON], /help; `//text` sends a line starting with /.

Lines are reassembled across reads and never split or merged; \\n and \\r\\n both end a \
line; control characters and invalid UTF-8 are shown escaped (\\x1b, \\xff). A client \
that does not read fast enough is disconnected with a reason once --queue-limit bytes \
wait for it; the others are not slowed. SIGHUP re-reads --allowfile/--denyfile; \
SIGINT/SIGTERM tell everyone the server is shutting down, flush, and exit 0.

Examples:
  sockbox chat 7000                          # everyone on port 7000, IPv4 and IPv6
  sockbox chat 127.0.0.1 7000 --stdin        # take part from this terminal
  sockbox chat 7000 --allow 10.0.0.0/8 --max-clients 500 --idle-timeout 30m
  sockbox chat 7000 --tls-cert cert.pem --tls-key key.pem
      # a self-signed pair: openssl req -x509 -newkey rsa:2048 -nodes -days 365 \\
      #   -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \\
      #   -keyout key.pem -out cert.pem
      # clients: sockbox connect --tls --tls-ca cert.pem localhost 7000
  sockbox chat 7000 --json > events.jsonl    # joins, leaves, nick changes as JSON lines

Exit codes: 0 stopped by a signal; 2 usage or input error; 3 cannot listen.";

/// Arguments of `sockbox chat`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, override_usage = "sockbox chat [OPTIONS] [ADDR] PORT")]
pub struct Args {
    /// Address and port, or just the port (listens on every address).
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Longest line in bytes (k or KiB = 1024, KB = 1000, M, MiB…); longer lines are cut and the sender told.
    #[arg(long, value_name = "BYTES", default_value = "8KiB", value_parser = parse_size)]
    pub max_line: usize,
    /// Take part from this terminal: lines typed are sent, messages are printed.
    #[arg(long, conflicts_with = "daemon")]
    pub stdin: bool,
    /// Nickname of the --stdin participant (letters, digits, _ and -; up to 24).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "operator",
        requires = "stdin"
    )]
    pub nick: String,
    /// Limits, access and logging shared with `sockbox broker`.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Daemon options.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// `[ADDR] PORT`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// ADDR then PORT, or only PORT.
    #[arg(value_name = "ADDR_PORT", num_args = 1..=2, required = true)]
    pub addr_port: Vec<String>,
}

/// Flags shared by `chat` and `broker`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits and access")]
pub struct ServerArgs {
    /// Most clients at once; more are told the server is full.
    #[arg(
        short = 'm',
        long,
        visible_alias = "max-conns",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_clients: usize,
    /// Bytes that may wait for one client before it is disconnected as too slow.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub queue_limit: usize,
    /// Disconnect a client that sends nothing for this long (seconds, or e.g. 30s, 10m; at most a year).
    #[arg(short = 'i', long, value_name = "DURATION", value_parser = crate::input::duration)]
    pub idle_timeout: Option<Duration>,
    /// Read each client at most this fast: lines per second (chat) or bytes per second (broker).
    /// Faster clients are slowed down, not dropped.
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub rate: Option<usize>,
    /// With --rate: how much may come at once after a quiet spell (default: one second's worth).
    #[arg(long, value_name = "N", requires = "rate", value_parser = parse_size)]
    pub burst: Option<usize>,
    #[command(flatten)]
    pub access: AclArgs,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key", value_parser = path_arg)]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert", value_parser = path_arg)]
    pub tls_key: Option<PathBuf>,
    /// Log joins, leaves, nick changes and refusals as JSON lines (stdout; stderr with --stdin).
    /// Never slows the server: when the output is not read, up to 10000 events wait, later ones
    /// are dropped and a {"event":"dropped","count":N} line says how many.
    #[arg(long)]
    pub json: bool,
    /// Do not log events (text mode).
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
}

/// Run `sockbox chat`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    if a.stdin {
        sockbox::chat::command::validate_nick(a.nick.as_bytes())
            .map_err(|e| usage(format!("--nick {:?}: {e}", a.nick)))?;
    }
    let setup = Setup::new(&a.listen, &a.server, Mode::Chat, a.max_line)?;
    let stdin = a.stdin.then(|| a.nick.clone());
    serve_with(&a.daemon, tracing::Level::INFO, move |ctx| {
        setup.serve(ctx, stdin)
    })
}

/// Everything checked and loaded before any socket is opened.
pub struct Setup {
    addr: SocketAddr,
    fallback: Option<SocketAddr>,
    config: ChatConfig,
    server: ServerArgs,
}

impl Setup {
    /// Validate flags and load files (TLS, allow/deny) for `mode`.
    pub fn new(
        listen: &ListenArgs,
        server: &ServerArgs,
        mode: Mode,
        max_line: usize,
    ) -> anyhow::Result<Self> {
        let (addr, fallback) = parse_listen(&listen.addr_port)?;
        if max_line == 0 {
            return Err(usage("--max-line must be at least 1"));
        }
        if server.max_clients == 0 {
            return Err(usage("--max-clients must be at least 1"));
        }
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(
                sockbox::tls::ServerTls {
                    cert: cert.clone(),
                    key: key.clone(),
                }
                .acceptor()
                .usage_err("--tls-cert/--tls-key")?,
            ),
            _ => None,
        };
        let rate = match server.rate {
            Some(0) => return Err(usage("--rate must be at least 1")),
            Some(r) => Some(Rate {
                per_sec: r as f64,
                burst: server.burst.unwrap_or(r).max(1) as f64,
            }),
            None => None,
        };
        let access = server.access.acl()?;
        let config = ChatConfig {
            mode,
            max_line,
            max_clients: server.max_clients,
            queue_limit: server.queue_limit,
            idle_timeout: server.idle_timeout.filter(|d| !d.is_zero()),
            rate,
            access,
            tls,
            ..ChatConfig::default()
        };
        Ok(Self {
            addr,
            fallback,
            config,
            server: server.clone(),
        })
    }

    /// The server body run inside the daemon harness.
    pub async fn serve(self, mut ctx: Ctx, stdin_nick: Option<String>) -> anyhow::Result<u8> {
        let Self {
            addr,
            fallback,
            mut config,
            server,
        } = self;
        let limit = sockbox::sys::rlimit::raise_nofile_limit();
        let stream = if stdin_nick.is_some() {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let log = Logger {
            json: server
                .json
                .then(|| ctx.output(stream, Box::new(dropped_event))),
            quiet: server.quiet,
        };
        let fd_room = usize::try_from(limit.saturating_sub(64)).unwrap_or(usize::MAX);
        if config.max_clients > fd_room {
            log.note(&format!(
                "the open-file limit ({limit}) allows about {fd_room} clients, not {}; raise it with `ulimit -Hn`",
                config.max_clients
            ));
        }
        config.grace = ctx.grace;
        config.stats = ctx.stats.clone();
        let sink_log = log.clone();
        config.events = Some(Arc::new(move |e: &ChatEvent| sink_log.event(e)) as EventSink);
        let access = config.access.clone();
        let server_obj = match (ChatServer::bind(addr, config.clone()), fallback) {
            (Ok(s), _) => s,
            // No IPv6 here: listen on IPv4 only. Other errors (the port is
            // taken…) are reported for the address the user asked for.
            (Err(ChatError::Bind(e, _)), Some(v4)) if no_ipv6(&e) => ChatServer::bind(v4, config)?,
            (Err(e), _) => return Err(e.into()),
        };
        log.listening(server_obj.local_addr());
        ctx.ready()?;
        if let Some(nick) = stdin_nick {
            server_obj.add_participant(stdin_reader(), tokio::io::stdout(), Some(nick));
        }
        let run = server_obj.run(ctx.shutdown.clone());
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => { r?; break; }
                () = ctx.reload.changed() => match access.reload() {
                    Ok(()) => log.note("re-read the allow/deny files"),
                    Err(e) => log.note(&format!("{e}; the previous lists stay in force")),
                },
            }
        }
        Ok(crate::exit::SUCCESS)
    }
}

/// True when binding `[::]` failed because this host has no IPv6.
fn no_ipv6(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

/// `[ADDR] PORT` → the address to bind, plus an IPv4 fallback when no
/// address was given (for hosts without IPv6).
fn parse_listen(v: &[String]) -> anyhow::Result<(SocketAddr, Option<SocketAddr>)> {
    let (host, port) = match v {
        [port] => (None, port),
        [host, port] => (Some(host.as_str()), port),
        _ => return Err(usage("give [ADDR] PORT")),
    };
    let port: u16 = port
        .parse()
        .usage_err(format!("{port:?} is not a port number (0-65535)"))?;
    let Some(host) = host else {
        return Ok((
            SocketAddr::from(([0u16; 8], port)),
            Some(SocketAddr::from(([0u8; 4], port))),
        ));
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addr = (bare, port)
        .to_socket_addrs()
        .usage_err(format!("cannot resolve listen address {host:?}"))?
        .next()
        .ok_or_else(|| usage(format!("{host:?} has no address")))?;
    Ok((addr, None))
}

/// A byte count or rate for the chat and broker flags (`8192`, `8k`,
/// `8KiB`, `1MiB`): [`crate::input::size`], the parser `hexdump -s/-n` uses.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n = crate::input::size(s)?;
    usize::try_from(n).map_err(|_| format!("{s:?} is too large"))
}

/// The `--json` line that says `n` events were dropped because the output
/// was not read fast enough.
fn dropped_event(n: u64) -> Vec<u8> {
    let v = serde_json::json!({
        "event": "dropped",
        "count": n,
        "message": "events dropped: the output was not read fast enough",
    });
    format!("{v}\n").into_bytes()
}

/// Reports server events: JSON lines (`--json`, through a queue that never
/// blocks the server), or log lines through the daemon harness (standard
/// error or `--log-file`, queued the same way).
#[derive(Clone)]
struct Logger {
    /// `--json`: where the lines go.
    json: Option<LineQueue>,
    quiet: bool,
}

impl Logger {
    fn emit(out: &LineQueue, text: String) {
        out.push(text.into_bytes());
    }

    fn note(&self, msg: &str) {
        if let Some(out) = &self.json {
            let v = serde_json::json!({"event": "note", "message": msg});
            Self::emit(out, v.to_string());
        } else {
            tracing::warn!("{msg}");
        }
    }

    fn listening(&self, addr: SocketAddr) {
        if let Some(out) = &self.json {
            let v = serde_json::json!({"event": "listening", "addr": addr.to_string()});
            Self::emit(out, v.to_string());
        }
        tracing::info!("listening on {addr}");
    }

    fn event(&self, e: &ChatEvent) {
        if let Some(out) = &self.json {
            if let Ok(s) = serde_json::to_string(e) {
                Self::emit(out, s);
            }
            return;
        }
        if self.quiet {
            return;
        }
        match e {
            ChatEvent::Join {
                nick, peer, online, ..
            } => tracing::info!("join {nick} from {peer} ({online} online)"),
            ChatEvent::Leave {
                nick,
                peer,
                reason,
                online,
                ..
            } => tracing::info!("leave {nick} from {peer}: {reason} ({online} online)"),
            ChatEvent::Nick { old, new, .. } => tracing::info!("nick {old} -> {new}"),
            ChatEvent::Refused { peer, reason } => tracing::info!("refused {peer}: {reason}"),
            ChatEvent::AcceptError { error, backoff_ms } => {
                tracing::warn!("accept failed ({error}); pausing {backoff_ms} ms");
            }
        }
    }
}

/// The operator's stdin, read by a plain thread (so a pending read never
/// holds up shutdown) and handed over through a bounded channel.
fn stdin_reader() -> ChannelReader {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    ChannelReader {
        rx,
        pending: Vec::new(),
        pos: 0,
    }
}

/// `AsyncRead` over a channel of byte chunks; EOF when the sender is gone.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos >= self.pending.len() {
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(chunk)) => {
                    self.pending = chunk;
                    self.pos = 0;
                }
            }
        }
        let n = buf.remaining().min(self.pending.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.pending[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("9999999999999G").is_err());
    }

    #[test]
    fn listen_args() {
        let (a, f) = parse_listen(&["7000".into()]).unwrap();
        assert_eq!(a.to_string(), "[::]:7000");
        assert_eq!(f.unwrap().to_string(), "0.0.0.0:7000");
        let (a, f) = parse_listen(&["127.0.0.1".into(), "0".into()]).unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:0");
        assert!(f.is_none());
        let (a, _) = parse_listen(&["[::1]".into(), "80".into()]).unwrap();
        assert_eq!(a.to_string(), "[::1]:80");
        assert!(parse_listen(&["70000".into()]).is_err());
    }
}
