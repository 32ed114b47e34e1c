//! `sockbox listen [ADDR] PORT`: a TCP/UDP server wired to stdin/stdout or
//! to a program per connection, like `ncat -l`. Runs inside the daemon
//! harness, so `--daemon`, `--pid-file` and `--user` apply.

use std::path::PathBuf;

use sockbox::daemon::Reload;
use sockbox::net::acl::SharedAcl;
use sockbox::relay::net;
use sockbox::relay::server::{self, ListenConfig, Local, Proto};

use crate::cmd::connect::{RelayArgs, Say, finish, relay_error};
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
arrives. With -k clients are served at once, up to -m (default 100); beyond
that, and for hosts refused by --allow/--deny, the connection is accepted and
closed at once. Without -e/-c every client shares standard input (each chunk
goes to all of them) and standard output. --allowfile/--denyfile hold one
address or CIDR per line (# comments) and are re-read on SIGHUP. -e/-c children
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
    /// Most clients at once with -k; more are refused.
    #[arg(short = 'm', long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
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
    let addr = match net::listen_addrs(host, port, r.family()) {
        Ok(v) => *v.first().ok_or_else(|| {
            usage(format!(
                "{:?} has no address to listen on",
                host.unwrap_or("*")
            ))
        })?,
        Err(e) => return relay_error(e, Say::Stderr),
    };
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
    let dump = r.dump()?;
    let tls = match (a.tls, &a.tls_cert, &a.tls_key) {
        (true, Some(cert), Some(key)) => Some(
            sockbox::tls::ServerTls {
                cert: cert.clone(),
                key: key.clone(),
            }
            .acceptor()
            .map_err(|e| usage(e.to_string()))?,
        ),
        (true, _, _) => return Err(usage("--tls needs --tls-cert FILE and --tls-key FILE")),
        _ => None,
    };
    let mut opts = r.options();
    if a.keep_open || local != Local::Stdio {
        opts.end_on_remote_eof = false;
    }
    let keep_open = a.keep_open;
    let max_conns = a.max_conns as usize;
    let proto = if r.udp { Proto::Udp } else { Proto::Tcp };
    let family = r.family();
    let relay = r.clone();

    serve_with(&a.daemon, relay.log_level(), move |mut ctx| async move {
        let cfg_tls = tls.is_some();
        let cfg = ListenConfig {
            addr,
            family,
            proto,
            keep_open,
            max_conns,
            acl: acl.clone(),
            local,
            opts,
            dump,
            stats: ctx.stats.clone(),
            grace: ctx.grace,
            tls,
        };
        let listener = match server::bind(cfg) {
            Ok(l) => l,
            Err(e) => return Err(anyhow::Error::new(e)),
        };
        tracing::info!(
            "listening on {} ({})",
            listener.local_addr(),
            match (proto, cfg_tls) {
                (Proto::Udp, _) => "udp",
                (Proto::Tcp, true) => "tls",
                (Proto::Tcp, false) => "tcp",
            }
        );
        ctx.ready()?;
        reload_acl_on_hup(&acl, ctx.reload);
        match listener.run(ctx.shutdown.clone()).await {
            Ok(rep) => match rep.single {
                Some(single) => finish(Ok(single), Say::Log),
                None => Ok(SUCCESS),
            },
            Err(e) => relay_error(e, Say::Log),
        }
    })
}

/// Warn now if the allow files list nobody, and re-read the allow/deny files
/// on every SIGHUP (`reload`) for as long as the server runs. Shared by the
/// servers that take `--allowfile`/`--denyfile` (`listen`, `udp listen`).
pub(crate) fn reload_acl_on_hup(acl: &SharedAcl, mut reload: Reload) {
    warn_if_nobody_allowed(acl);
    if !acl.has_files() {
        return;
    }
    let acl = acl.clone();
    tokio::spawn(async move {
        loop {
            reload.changed().await;
            match acl.reload() {
                Ok(()) => {
                    tracing::info!("re-read the allow/deny files");
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
