//! `sockbox listen [ADDR] PORT`: a TCP/UDP server wired to stdin/stdout or
//! to a program per connection, like `ncat -l`. Runs inside the daemon
//! harness, so `--daemon`, `--pid-file` and `--user` apply.

use std::path::PathBuf;
use std::sync::Arc;

use sockbox::daemon::Reload;
use sockbox::event::Events;
use sockbox::net::acl::SharedAcl;
use sockbox::net::{self, Refusal, ServerEvent};
use sockbox::relay::{ListenConfig, Local, Outcome, Proto, RelayEvent, RelayServer};

use crate::cmd::connect::{RelayArgs, Say, addr_error, finish, relay_error};
use crate::cmd::serve::{AclArgs, DaemonArgs, SIGNALS_HELP, path_arg, serve_with};
use crate::exit::{SUCCESS, usage};

const EXAMPLES: &str = "Examples:
  sockbox listen 9000 > received.bin                  # one TCP client, then exit
  sockbox listen -k -m 500 -e /bin/cat 7000          # echo server, a cat per client
  sockbox listen -k -c 'date; uptime' 127.0.0.1 7001 # inetd-style command
  sockbox listen -u -k 5353 -x udp.dump              # UDP, peers told apart by source
  sockbox listen -k --allow 10.0.0.0/8 --denyfile bad.txt 8080
  sockbox listen -k --daemon --pid-file /run/sb.pid -e ./handler 8000
  sockbox listen -k --tls --tls-cert cert.pem --tls-key key.pem -e /bin/cat 8443

Without -k one client is served and the listening socket closes when it
arrives; the listener ends when that client closes its side, once what it
sent is written out (as ncat does; --send-only keeps sending standard input
instead), and on SIGTERM lets it finish within --grace. With -k clients are
served at once, up to -m (default 100; -m 0 refuses everyone); beyond that,
and for hosts refused by --allow/--deny, the connection is accepted and
closed at once. Without -e/-c every client shares standard input (each chunk
goes to all of them) and standard output. --allow/--deny and the lines of
--allowfile/--denyfile hold addresses, CIDRs or host names (several per line,
# comments); names are resolved at start and on SIGHUP, which re-reads the
files. -e/-c children
get SOCKBOX_REMOTE_ADDR, SOCKBOX_REMOTE_PORT, SOCKBOX_LOCAL_ADDR,
SOCKBOX_LOCAL_PORT and SOCKBOX_PROTO; each is reaped and its exit status logged.

Exit codes: 0 success; 1 the single connection was reset by the peer or went
idle (-i); 2 usage or input error; 3 system failure (cannot bind).";

/// Arguments of `sockbox listen`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("{EXAMPLES}\n{SIGNALS_HELP}"),
    override_usage = "sockbox listen [OPTIONS] [ADDR] PORT"
)]
pub struct Args {
    /// `[ADDR] PORT`: the address to bind (default: all, IPv4 and IPv6) and the port.
    #[arg(value_name = "ADDR PORT", num_args = 1..=2, required = true)]
    pub endpoint: Vec<String>,
    /// Keep listening after the first client; serve clients concurrently.
    #[arg(short = 'k', long)]
    pub keep_open: bool,
    /// Most clients at once with -k; more are refused (0 refuses every client).
    #[arg(short = 'm', long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_conns: u32,
    #[command(flatten)]
    pub access: AclArgs,
    /// Serve TLS (needs --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"], conflicts_with = "udp")]
    pub tls: bool,
    /// PEM certificate chain for --tls.
    #[arg(long, value_name = "FILE", requires = "tls", value_parser = path_arg)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, value_name = "FILE", requires = "tls", value_parser = path_arg)]
    pub tls_key: Option<PathBuf>,
    /// Relay flags.
    #[command(flatten)]
    pub relay: Box<RelayArgs>,
    /// Daemon flags.
    #[command(flatten)]
    pub daemon: Box<DaemonArgs>,
}

/// Run `sockbox listen`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let r = &a.relay;
    let (host, port) = match a.endpoint.as_slice() {
        [p] => (None, p),
        [h, p] => (Some(h.as_str()), p),
        _ => return Err(usage("give PORT or ADDR PORT")),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| usage(format!("{port:?} is not a port number (0-65535)")))?;
    let addr = net::listen_addr(host, port, r.family()).map_err(|e| addr_error(&e))?;
    let acl = a.access.acl()?;
    let local = match r.exec_spec()? {
        Some(spec) => Local::Exec(spec),
        None => Local::Stdio,
    };
    if a.daemon.daemon && local == Local::Stdio {
        // Said before detaching, where someone reads it.
        crate::output::errln!(
            "sockbox: warning: a daemon's standard input and output are /dev/null: clients \
             get nothing and what they send is dropped; give -e/-c to run a program per \
             client, -x/-o to record the traffic"
        );
    }
    let mut cfg = ListenConfig::new(addr);
    cfg.family = r.family();
    cfg.proto = if r.udp { Proto::Udp } else { Proto::Tcp };
    cfg.local = local;
    cfg.opts = r.options();
    cfg.dump = r.dump()?;
    cfg.tls = server_tls(a)?;
    cfg.events = relay_events();
    cfg.server.once = !a.keep_open;
    cfg.server.max_conns = a.max_conns as usize;
    cfg.server.acl = acl.clone();
    cfg.server.grace = a.daemon.grace;
    cfg.server.events = server_events();
    serve_with(&a.daemon, r.log_level(), move |mut ctx| async move {
        let mut cfg = cfg;
        cfg.server.stats = ctx.stats.clone();
        let what = match (cfg.proto, cfg.tls.is_some()) {
            (Proto::Udp, _) => "udp",
            (Proto::Tcp, true) => "tls",
            (Proto::Tcp, false) => "tcp",
        };
        let server = RelayServer::bind(cfg).map_err(anyhow::Error::new)?;
        tracing::info!("listening on {} ({what})", server.local_addr());
        ctx.ready()?;
        reload_acl_on_hup(&acl, ctx.reload);
        match server.run(ctx.shutdown.clone()).await {
            Ok(rep) => match rep.single {
                Some(single) => finish(Ok(single), Say::Log),
                None => Ok(SUCCESS),
            },
            Err(e) => relay_error(e, Say::Log),
        }
    })
}

/// The TLS acceptor `--tls` asks for, its files read now.
fn server_tls(a: &Args) -> anyhow::Result<Option<sockbox::tls::TlsAcceptor>> {
    match (a.tls, &a.tls_cert, &a.tls_key) {
        (true, Some(cert), Some(key)) => {
            let files = sockbox::tls::ServerTls {
                cert: cert.clone(),
                key: key.clone(),
            };
            files.acceptor().map(Some).map_err(|e| usage(e.to_string()))
        }
        (true, _, _) => Err(usage("--tls needs --tls-cert FILE and --tls-key FILE")),
        _ => Ok(None),
    }
}

/// Connection events to the log, with the flag behind each limit.
fn relay_events() -> Events<RelayEvent> {
    let base = sockbox::relay::log_events();
    Arc::new(move |e: &RelayEvent| match e {
        RelayEvent::Closed { peer, report } if matches!(report.outcome, Outcome::Idle(_)) => {
            let (sent, received) = (report.sent, report.received);
            if let Outcome::Idle(d) = report.outcome {
                tracing::info!(%peer, "closed after {d:?} idle (-i): sent {sent}, received {received}");
            }
        }
        other => base.on_event(other),
    })
}

/// Accept-loop events to the log, with the flag behind each refusal.
pub(crate) fn server_events() -> Events<ServerEvent> {
    let base = net::log_events();
    Arc::new(move |e: &ServerEvent| match e {
        ServerEvent::Refused { peer, reason } => match reason {
            Refusal::Denied => tracing::info!(%peer, "refused: {reason} (--allow/--deny)"),
            Refusal::Full { .. } => tracing::warn!(%peer, "refused: {reason} (-m/--max-conns)"),
            Refusal::PerAddress { .. } => tracing::warn!(%peer, "refused: {reason}"),
        },
        ServerEvent::AcceptFailed { error, retry_in } => tracing::warn!(
            "accept: {error}; backing off {retry_in:?} (raise `ulimit -n` or lower -m)"
        ),
        other => base.on_event(other),
    })
}

/// Warn now if the allow files list nobody, and re-read the allow/deny
/// files and resolve the host names in the lists again on every SIGHUP
/// (`reload`) for as long as the server runs; a reload that fails (a file
/// gone, a name that no longer resolves) is a warning, and the previous
/// lists stay in force. Shared by the servers that take `--allow`/`--deny`
/// and their files (`listen`, `udp listen`).
pub(crate) fn reload_acl_on_hup(acl: &SharedAcl, mut reload: Reload) {
    warn_if_nobody_allowed(acl);
    if !acl.needs_reload() {
        return;
    }
    let acl = acl.clone();
    tokio::spawn(async move {
        loop {
            reload.changed().await;
            match acl.reload_async().await {
                Ok(()) => {
                    tracing::info!("re-read the allow/deny files and names");
                    warn_if_nobody_allowed(&acl);
                }
                Err(e) => tracing::warn!("{e}; the previous lists stay in force"),
            }
        }
    });
}

fn warn_if_nobody_allowed(acl: &SharedAcl) {
    if acl.allows_nobody() {
        tracing::warn!(
            "the --allowfile lists hold no address: every client is refused until they do \
             (SIGHUP re-reads them)"
        );
    }
}
