//! `sockbox chat [ADDR] PORT`: multi-client line chat with nicknames (like
//! `ncat --chat`, without split lines or a slow client stalling the room).
//! Also the flags and the server body `sockbox broker` shares.

mod cluster;
mod flags;
mod output;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sockbox::chat::{ChatConfig, ChatError, ChatEvent, ChatServer, Mode, Rate};
use sockbox::net::{ServerEvent, ServerOptions, log_events};

use crate::cmd::serve::{AclArgs, Ctx, DaemonArgs, Stream, path_arg, serve_with};
use crate::exit::{UsageContext, usage};
use flags::parse_listen;
use flags::parse_size;
use output::{Logger, dropped_event, stdin_reader};

const AFTER_HELP: &str = "\
Clients connect with telnet, nc or `sockbox connect`. Each joins as userN and everyone \
is told; lines are sent to everyone else as `<nick> text`. Commands: /nick NAME, /who, \
/me TEXT, /msg NICK TEXT, /quit [REASON], /help; `//text` sends a line starting with /.

Lines are reassembled across reads and never split or merged; \\n and \\r\\n both end a \
line; control characters other than TAB, and invalid UTF-8, are shown escaped (\\x1b, \\xff); \
TAB passes as it is. A line that has started must end within --line-timeout.

Joins, leaves and nick changes are collected for up to 100 ms and sent together, always \
before the next message (nobody sees a line from someone before their join). Each one \
arrives on its own line, except in a storm: past 10 within 100 ms, the rest of those \
100 ms are summed up in one line (`*** 500 more joined (510 online)`).

A client may fall more than --queue-limit behind (a burst) for up to --max-lag; one that \
stays behind longer, or reaches --queue-ceiling, is disconnected and told which rule \
fired; the others are not slowed. SIGHUP re-reads --allowfile/--denyfile; SIGINT/SIGTERM \
stop reading, send `*** server is shutting down` after what is queued for each client, \
flush for up to --grace, close each connection cleanly (FIN), and exit 0.

Defaults, next to ncat --chat's:
  clients at once (-m)                   10000        ncat: 100
  clients per address (--max-per-addr)   64           ncat: no limit
  unfinished line (--line-timeout)       1m           ncat: no limit
  TLS handshake (--handshake-timeout)    10s          ncat: no such option
  silent client (-i, --idle-timeout)     no limit     ncat: no limit
  behind (--queue-limit for --max-lag)   1MiB for 10s, never over 32MiB (--queue-ceiling)

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
  sockbox chat 7000 --cluster nats://10.0.0.5:4222 --room lobby
      # one room over several servers: run the same on each (nats-server -js there);
      # /who lists everyone with their server, /msg and announcements cross servers

A clustered room: every line reaches every client once, in each sender's order. A server not heard from for --dead-after is declared gone and its clients are announced as having left. When NATS is out of reach, local chat goes on and clients are told the room is split; lines said meanwhile reach only that server (never later), and the other servers' clients are told how many lines did not arrive. Nicknames are unique room-wide (a JetStream key-value bucket); /nick is refused while the room is split. A server that finds no NATS at start starts split and joins when NATS answers (--cluster-required: exit instead).

Exit codes: 0 stopped by a signal; 2 usage or input error; 3 cannot listen.";

/// Arguments of `sockbox chat`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, override_usage = "sockbox chat [OPTIONS] [ADDR] PORT")]
pub struct Args {
    /// Address and port, or just the port (listens on every address).
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Longest line in bytes, 1 to 16MiB (k or KiB = 1024, KB = 1000, M, MiB…); longer lines are
    /// cut and the sender told.
    #[arg(long, value_name = "BYTES", default_value = "8KiB", value_parser = flags::max_line)]
    pub max_line: usize,
    /// Disconnect a client whose started line does not end within this long (a trickle that
    /// never sends a newline); 0 turns it off. Clients that send nothing are not concerned.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = crate::input::duration)]
    pub line_timeout: Duration,
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
    /// Most network clients at once (--stdin does not count); more are told the server is full.
    /// 0 refuses every network client (as ncat's -m 0 does).
    #[arg(
        short = 'm',
        long,
        visible_alias = "max-conns",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_clients: usize,
    /// Most clients at once from one address; more are told so. 0: no limit (clients behind one
    /// proxy or NAT share an address).
    #[arg(long, value_name = "N", default_value_t = sockbox::chat::DEFAULT_MAX_PER_ADDR)]
    pub max_per_addr: usize,
    /// Bytes one client may fall behind for up to --max-lag (1KiB to 1GiB).
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = flags::queue_limit)]
    pub queue_limit: usize,
    /// How long a client may stay more than --queue-limit behind before it is disconnected as
    /// too slow.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::input::duration)]
    pub max_lag: Duration,
    /// Bytes one client may never have waiting: reaching it disconnects at once (bounds memory;
    /// 1KiB to 4GiB; default 32MiB, or --queue-limit if larger).
    #[arg(long, value_name = "BYTES", value_parser = flags::queue_ceiling)]
    pub queue_ceiling: Option<usize>,
    /// Longest a TLS handshake may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::input::duration)]
    pub handshake_timeout: Duration,
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
    /// A room spread over several servers.
    #[command(flatten)]
    pub cluster: cluster::ClusterArgs,
}

/// Run `sockbox chat`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    if a.stdin {
        sockbox::chat::command::validate_nick(a.nick.as_bytes())
            .map_err(|e| usage(format!("--nick {:?}: {e}", a.nick)))?;
    }
    let mut setup = Setup::new(&a.listen, &a.server, Mode::Chat, a.max_line)?;
    setup.config.line_timeout = Some(a.line_timeout).filter(|d| !d.is_zero());
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
    cluster: Option<sockbox::chat::cluster::ClusterConfig>,
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
        if let Some(c) = server.queue_ceiling
            && c < server.queue_limit
        {
            return Err(usage(format!(
                "--queue-ceiling ({c}) is below --queue-limit ({}): raise it or lower --queue-limit",
                server.queue_limit
            )));
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
        let cluster = server.cluster.config()?;
        let defaults = ChatConfig::default();
        let config = ChatConfig {
            mode,
            max_line,
            queue_limit: server.queue_limit,
            max_lag: server.max_lag,
            queue_ceiling: server
                .queue_ceiling
                .unwrap_or(defaults.queue_ceiling.max(server.queue_limit)),
            idle_timeout: server.idle_timeout.filter(|d| !d.is_zero()),
            rate,
            tls,
            handshake_timeout: server.handshake_timeout,
            server: ServerOptions {
                max_conns: server.max_clients,
                max_per_addr: Some(server.max_per_addr).filter(|n| *n > 0),
                acl: access,
                ..defaults.server.clone()
            },
            ..defaults
        };
        Ok(Self {
            addr,
            fallback,
            config,
            server: server.clone(),
            cluster,
        })
    }

    /// The server body run inside the daemon harness.
    pub async fn serve(self, mut ctx: Ctx, stdin_nick: Option<String>) -> anyhow::Result<u8> {
        let Self {
            addr,
            fallback,
            mut config,
            server,
            cluster,
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
        if config.server.max_conns > fd_room {
            log.note(&format!(
                "the open-file limit ({limit}) allows about {fd_room} clients, not {}; raise it with `ulimit -Hn`",
                config.server.max_conns
            ));
        }
        config.server.grace = ctx.grace;
        config.server.stats = ctx.stats.clone();
        config.server.events = drain_events();
        let sink_log = log.clone();
        config.events = Arc::new(move |e: &ChatEvent| sink_log.event(e));
        let access = config.server.acl.clone();
        let mut server_obj = match (ChatServer::bind(addr, config.clone()), fallback) {
            (Ok(s), _) => s,
            // No IPv6 here: listen on IPv4 only. Other errors (the port is
            // taken…) are reported for the address the user asked for.
            (Err(ChatError::Bind(e)), Some(v4)) if no_ipv6(&e.source) => {
                ChatServer::bind(v4, config)?
            }
            (Err(e), _) => return Err(e.into()),
        };
        log.listening(server_obj.local_addr());
        if let Some(mut c) = cluster {
            if server.cluster.node_name.is_none() {
                c.node_name = format!("{}:{}", c.node_name, server_obj.local_addr().port());
            }
            let (room, node) = (c.room.clone(), c.node_name.clone());
            server_obj.join_cluster(c).await.map_err(cluster::explain)?;
            if server_obj.is_split() {
                tracing::info!("in room {room} as node {node}, alone until NATS answers");
            } else {
                tracing::info!("joined room {room} as node {node}");
            }
        }
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

/// The skeleton's events worth a log line here: the end of the grace
/// period with connections still open (refusals and accept errors come as
/// chat events; the harness says when draining begins).
fn drain_events() -> sockbox::event::Events<ServerEvent> {
    let log = log_events();
    Arc::new(move |e: &ServerEvent| {
        if matches!(e, ServerEvent::GraceExpired { .. }) {
            log.on_event(e);
        }
    })
}

/// True when binding `[::]` failed because this host has no IPv6.
fn no_ipv6(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}
