//! `sockbox listen [ADDR] PORT`: a TCP/UDP/UNIX-socket server wired to
//! stdin/stdout or to a program per connection, like `ncat -l`. Runs inside
//! the daemon harness, so `--daemon`, `--pid-file` and `--user` apply. nc's
//! spellings work too: `listen -p PORT`, `listen -lvnp PORT`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sockbox::daemon::Reload;
use sockbox::event::Events;
use sockbox::net::acl::SharedAcl;
use sockbox::net::{self, Refusal, ServerEvent};
use sockbox::relay::{ListenConfig, Local, Outcome, Proto, RelayEvent, RelayServer};

use crate::cmd::connect::{RelayArgs, Say, addr_error, finish, numeric, relay_error};
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
  sockbox listen --tls 8443                          # a temporary certificate, fingerprint on stderr
  sockbox listen -lvnp 9000                          # nc's spelling: -l is implied, -p PORT
  sockbox listen -U /run/app.sock -k -e ./handler    # a UNIX stream socket (-u -U: datagram)

With no ADDR the server listens on IPv4 and IPv6 at once (one dual-stack
socket; -4/-6 restrict it). -U PATH listens on a UNIX socket: a file left at
PATH by a server that died is replaced, a socket another server uses or any
other file is refused, and the socket file is removed at exit if it is still
this server's. A UNIX datagram server (-u -U) serves its first sender only.

--tls without --tls-cert/--tls-key generates a temporary key and self-signed
certificate (names localhost, 127.0.0.1, ::1 and this host's name) and prints
its SHA-256 fingerprint on standard error, as ncat --ssl does; clients check
it by that fingerprint (or connect --tls --tls-insecure).

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
SOCKBOX_LOCAL_PORT and SOCKBOX_PROTO, and ncat's NCAT_REMOTE_ADDR,
NCAT_REMOTE_PORT, NCAT_LOCAL_ADDR, NCAT_LOCAL_PORT and NCAT_PROTO; each is
reaped and its exit status logged.

Exit codes: 0 success; 1 the single connection was reset by the peer or went
idle (-i); 2 usage or input error; 3 system failure (cannot bind).";

/// Arguments of `sockbox listen`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("{EXAMPLES}\n{SIGNALS_HELP}"),
    override_usage = "sockbox listen [OPTIONS] [ADDR] PORT\n       \
                      sockbox listen [OPTIONS] -p PORT [ADDR]\n       \
                      sockbox listen -U [OPTIONS] PATH"
)]
pub struct Args {
    /// `[ADDR] PORT`: the address to bind (default: all, IPv4 and IPv6) and the port
    /// (with -p: ADDR only; with -U: the socket's path).
    #[arg(value_name = "ADDR PORT", num_args = 0..=2)]
    pub endpoint: Vec<String>,
    /// The port to listen on (nc's spelling; an ADDR may follow).
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        conflicts_with = "unix"
    )]
    pub port: Option<u16>,
    /// nc's listen flag: accepted and implied (`sockbox listen -lvnp 9000`).
    #[arg(short = 'l', long = "listen", hide = true)]
    pub listen: bool,
    /// Keep listening after the first client; serve clients concurrently.
    #[arg(short = 'k', long)]
    pub keep_open: bool,
    /// Most clients at once with -k; more are refused (0 refuses every client).
    #[arg(short = 'm', long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_conns: u32,
    #[command(flatten)]
    pub access: AclArgs,
    /// Serve TLS (without --tls-cert/--tls-key: a temporary self-signed certificate).
    #[arg(long, conflicts_with_all = ["udp", "unix"])]
    pub tls: bool,
    /// PEM certificate chain for --tls.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key"], value_parser = path_arg)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"], value_parser = path_arg)]
    pub tls_key: Option<PathBuf>,
    /// Relay flags.
    #[command(flatten)]
    pub relay: Box<RelayArgs>,
    /// Daemon flags.
    #[command(flatten)]
    pub daemon: Box<DaemonArgs>,
}

/// Where to listen, from `[ADDR] PORT`, `-p PORT [ADDR]` or `-U PATH`.
enum Endpoint {
    Inet(SocketAddr),
    Unix(PathBuf),
}

fn endpoint(a: &Args) -> anyhow::Result<Endpoint> {
    let r = &a.relay;
    if r.unix {
        return match a.endpoint.as_slice() {
            [path] => Ok(Endpoint::Unix(PathBuf::from(path))),
            _ => Err(usage(
                "-U takes the socket's path only: sockbox listen -U /run/app.sock",
            )),
        };
    }
    let parse_port = |p: &String| {
        p.parse::<u16>()
            .map_err(|_| usage(format!("{p:?} is not a port number (0-65535)")))
    };
    let (host, port) = match (a.port, a.endpoint.as_slice()) {
        (Some(p), []) => (None, p),
        (Some(p), [h]) => (Some(h.as_str()), p),
        (Some(_), _) => return Err(usage("with -p PORT give at most the ADDR to bind")),
        (None, [p]) => (None, parse_port(p)?),
        (None, [h, p]) => (Some(h.as_str()), parse_port(p)?),
        (None, _) => return Err(usage("give PORT, ADDR PORT or -p PORT")),
    };
    if r.nodns
        && let Some(h) = host
    {
        numeric(h)?;
    }
    let addr = net::listen_addr(host, port, r.family()).map_err(|e| addr_error(&e))?;
    Ok(Endpoint::Inet(addr))
}

/// Run `sockbox listen`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let r = &a.relay;
    let endpoint = endpoint(a)?;
    if r.unix && r.udp && a.keep_open {
        return Err(usage(
            "-k: a UNIX datagram server (-u -U) serves its first sender only; drop -k",
        ));
    }
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
    let mut cfg = match endpoint {
        Endpoint::Inet(addr) => ListenConfig::new(addr),
        Endpoint::Unix(path) => {
            let mut c = ListenConfig::new(net::wildcard(0, net::Family::Any));
            c.unix = Some(path);
            c
        }
    };
    cfg.family = r.family();
    cfg.proto = if r.udp { Proto::Udp } else { Proto::Tcp };
    cfg.local = local;
    cfg.opts = r.options();
    cfg.dump = r.dump()?;
    cfg.tls = server_tls(a, cfg.addr)?;
    cfg.events = relay_events();
    cfg.server.once = !a.keep_open;
    cfg.server.max_conns = a.max_conns as usize;
    cfg.server.acl = acl.clone();
    cfg.server.grace = a.daemon.grace;
    cfg.server.events = server_events();
    serve_with(&a.daemon, r.log_level(), move |mut ctx| async move {
        let mut cfg = cfg;
        cfg.server.stats = ctx.stats.clone();
        let what = match (cfg.proto, cfg.tls.is_some(), cfg.unix.is_some()) {
            (Proto::Udp, _, true) => "unix datagram",
            (Proto::Tcp, _, true) => "unix stream",
            (Proto::Udp, _, false) => "udp",
            (Proto::Tcp, true, false) => "tls",
            (Proto::Tcp, false, false) => "tcp",
        };
        let server = match RelayServer::bind(cfg) {
            Ok(s) => s,
            Err(e) => return relay_error(e, Say::Log),
        };
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

/// The TLS acceptor `--tls` asks for: its files read now, or a temporary
/// certificate whose fingerprint is said on standard error.
fn server_tls(a: &Args, addr: SocketAddr) -> anyhow::Result<Option<sockbox::tls::TlsAcceptor>> {
    match (a.tls, &a.tls_cert, &a.tls_key) {
        (true, Some(cert), Some(key)) => {
            let files = sockbox::tls::ServerTls {
                cert: cert.clone(),
                key: key.clone(),
            };
            files.acceptor().map(Some).map_err(|e| usage(e.to_string()))
        }
        (true, _, _) => {
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok());
            let bound = (!addr.ip().is_unspecified()).then(|| addr.ip().to_string());
            for name in host.into_iter().chain(bound) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let s = sockbox::tls::self_signed(&names).map_err(anyhow::Error::new)?;
            crate::output::errln!(
                "sockbox: generated a temporary TLS key and self-signed certificate ({}); \
                 give --tls-cert and --tls-key to use a permanent one",
                names.join(", ")
            );
            crate::output::errln!("sockbox: SHA-256 fingerprint: {}", s.fingerprint);
            Ok(Some(s.acceptor))
        }
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
