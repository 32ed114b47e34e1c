//! `sockbox echo [ADDR] [PORT]`: a TCP and UDP echo server on one port, for
//! testing clients, firewalls and the other subcommands. Runs in the server
//! harness, so `--daemon`, `--pid-file`, `--user` and friends all work.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use sockbox::echo::{EchoConfig, EchoError, EchoServer};

use crate::cmd::serve::{DaemonArgs, SIGNALS_HELP, serve_with};
use crate::exit::{self, UsageContext};

/// The port used when none is given (7, the standard echo port, needs root).
pub const DEFAULT_PORT: u16 = 7007;

const AFTER_HELP: &str = "\
With one argument, a number is the PORT and anything else the ADDR.
Default: every address (IPv6 and IPv4) on port 7007. Port 0 picks a free port
(logged at start). TCP and UDP always share the port.

Examples:
  sockbox echo                          TCP+UDP echo on port 7007
  sockbox echo 127.0.0.1 9000           loopback only, port 9000
  sockbox echo 0 --tcp-only -m 500      free port, TCP only, 500 clients
  sockbox echo 7 --daemon --pid-file /run/echo.pid --user nobody --log-file /var/log/echo.log
                                        the classic echo port, in the background, as nobody

Try it: `sockbox connect localhost 7007` (TCP), `sockbox connect -u localhost 7007` (UDP).
Ctrl-C (or SIGTERM) stops it: it stops accepting, each session writes back
what it already read and closes, and clients that do not read are cut after
--grace. A second Ctrl-C exits at once.

Exit codes: 0 stopped cleanly; 2 usage error (bad address or port, a second
instance on the same --pid-file); 3 system failure (port taken, permission).";

/// Arguments of `sockbox echo`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n{SIGNALS_HELP}"))]
pub struct Args {
    /// Address to bind: an IP, or a host name (default: every address).
    #[arg(value_name = "ADDR")]
    pub addr: Option<String>,
    /// Port for both TCP and UDP (default 7007; 0 picks one).
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    /// Serve TCP only.
    #[arg(long, conflicts_with = "udp_only")]
    pub tcp_only: bool,
    /// Serve UDP only.
    #[arg(long)]
    pub udp_only: bool,
    /// Most TCP clients at once; more are closed at once.
    #[arg(short = 'm', long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_conns: u32,
    /// Close a TCP session silent for this long (e.g. 30s, 5m).
    #[arg(short = 'i', long, value_name = "DURATION", value_parser = crate::input::duration)]
    pub idle_timeout: Option<Duration>,
    /// Per-session echo buffer in bytes: the most a session holds at once.
    #[arg(long, value_name = "BYTES", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub buffer: u32,
    /// Daemon flags.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Where to bind, before any name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// Every address: `[::]`, or `0.0.0.0` without IPv6.
    Any,
    /// An IP literal.
    Ip(IpAddr),
    /// A name to resolve.
    Name(String),
}

/// `[ADDR] [PORT]` with the one-argument rule.
fn endpoint(first: Option<&str>, second: Option<&str>) -> anyhow::Result<(Host, u16)> {
    let (addr, port) = match (first, second) {
        (None, _) => (None, None),
        (Some(one), None) if one.parse::<u16>().is_ok() => (None, Some(one)),
        (Some(one), None) if one.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(exit::usage(format!(
                "port {one:?} is out of range: use 0 to 65535"
            )));
        }
        (Some(a), p) => (Some(a), p),
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .usage_err(format!("port {p:?}: expected a number from 0 to 65535"))?,
    };
    let host = match addr {
        None => Host::Any,
        Some(a) => {
            let bare = a
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(a);
            if bare.is_empty() {
                return Err(exit::usage(
                    "empty address: give an IP or a host name, or leave it out",
                ));
            }
            match bare.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(bare.to_owned()),
            }
        }
    };
    Ok((host, port))
}

/// The addresses to try, in order.
async fn candidates(host: &Host, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    Ok(match host {
        Host::Any => vec![
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ],
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .usage_err(format!("cannot resolve {name:?}"))?
                .collect();
            if found.is_empty() {
                return Err(exit::usage(format!("{name:?} has no address")));
            }
            found
        }
    })
}

/// Bind the first candidate that works. For "every address", IPv4 is only
/// tried when IPv6 is unavailable, not when the port is taken.
fn bind(cfg: &EchoConfig, addrs: Vec<SocketAddr>, any: bool) -> Result<EchoServer, EchoError> {
    let mut last = None;
    for addr in addrs {
        let mut c = cfg.clone();
        c.addr = addr;
        match EchoServer::bind(c) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let no_v6 = e.bind_error().is_some_and(|b| {
                    matches!(
                        b.source.raw_os_error(),
                        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                    )
                });
                if any && !no_v6 {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(EchoError::NothingToServe))
}

/// The library's error with the flag that avoids it.
fn echo_err(e: EchoError) -> anyhow::Error {
    match &e {
        EchoError::BindUdp(b) if b.in_use() => {
            anyhow::anyhow!("{e}; or serve TCP only with --tcp-only")
        }
        EchoError::BindTcp(b) if b.in_use() => {
            anyhow::anyhow!("{e}; or serve UDP only with --udp-only")
        }
        _ => anyhow::Error::new(e),
    }
}

/// Run `sockbox echo`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let (host, port) = endpoint(a.addr.as_deref(), a.port.as_deref())?;
    let mut cfg = EchoConfig::new(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    cfg.tcp = !a.udp_only;
    cfg.udp = !a.tcp_only;
    cfg.server.max_conns = a.max_conns as usize;
    cfg.buffer_size = a.buffer as usize;
    cfg.idle_timeout = a.idle_timeout;
    cfg.server.grace = a.daemon.grace;
    // Sessions opening and closing are what an echo server is watched for.
    serve_with(&a.daemon, tracing::Level::INFO, |mut ctx| async move {
        let addrs = candidates(&host, port).await?;
        let mut cfg = cfg;
        cfg.server.stats = ctx.stats.clone();
        let server = bind(&cfg, addrs, host == Host::Any).map_err(echo_err)?;
        let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
        tracing::info!(
            tcp = %show(server.tcp_addr()),
            udp = %show(server.udp_addr()),
            "echo server listening"
        );
        ctx.ready()?;
        let sum = server.run(ctx.shutdown.clone()).await.map_err(echo_err)?;
        tracing::info!(
            sessions = sum.sessions,
            datagrams = sum.datagrams,
            cut_at_grace = sum.cut_at_grace,
            "echo server stopped"
        );
        Ok(exit::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_is_the_port_anything_else_the_address() {
        assert_eq!(endpoint(None, None).unwrap(), (Host::Any, DEFAULT_PORT));
        assert_eq!(endpoint(Some("9000"), None).unwrap(), (Host::Any, 9000));
        assert_eq!(
            endpoint(Some("127.0.0.1"), None).unwrap(),
            (Host::Ip("127.0.0.1".parse().unwrap()), DEFAULT_PORT)
        );
        assert_eq!(
            endpoint(Some("[::1]"), Some("0")).unwrap(),
            (Host::Ip("::1".parse().unwrap()), 0)
        );
        assert_eq!(
            endpoint(Some("localhost"), Some("7")).unwrap(),
            (Host::Name("localhost".into()), 7)
        );
    }

    #[test]
    fn bad_ports_are_usage_errors() {
        for (a, b) in [
            (Some("70000"), None),
            (Some("::1"), Some("x")),
            (Some("h"), Some("-1")),
        ] {
            let e = endpoint(a, b).unwrap_err();
            assert_eq!(exit::code_for(&e), exit::USAGE, "{a:?} {b:?}: {e}");
        }
        assert_eq!(
            exit::code_for(&endpoint(Some("[]"), None).unwrap_err()),
            exit::USAGE
        );
    }
}
