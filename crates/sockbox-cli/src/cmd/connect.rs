//! `sockbox connect HOST PORT`: a TCP/UDP/UNIX-socket client wired to
//! stdin/stdout or to a program, like `ncat HOST PORT`; `-z` checks which
//! ports accept a connection (`nc -z`). The relay flags shared with
//! `sockbox listen` are in [`args`], the exit codes in [`exit`].

mod args;
mod exit;
mod scan;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sockbox::net::{Connector, Proxy, ProxyDns, ProxyKind};
use sockbox::relay::client::{
    ClientLocal, Connected, connect_tcp, connect_udp, connect_unix, connect_unix_datagram,
    relay_exec, relay_stdio, relay_stream,
};
use sockbox::relay::pump::Stopper;
use sockbox::relay::{Dump, ExecSpec, Outcome, RelayError, RelayOptions, Report};
use sockbox::tls::{TlsConnector, TlsError};

pub use args::{RelayArgs, numeric};
pub use exit::{Say, addr_error, finish, relay_error};

use crate::cmd::runtime;
use crate::exit::usage;
use crate::input::duration;

const EXAMPLES: &str = "Examples:
  sockbox connect example.com 80 <<< $'GET / HTTP/1.0\\r\\n\\r\\n'
  head -c 1G /dev/zero | sockbox connect 10.0.0.2 9000      # splice(2) fast path
  sockbox connect -u 192.0.2.1 53 -q 2 < query.bin           # UDP, quit 2 s after EOF
  sockbox connect -x traffic.dump localhost 25               # hex dump tagged > sent / < received
  sockbox connect -c 'tar cf - ./data' backup.example 9000   # a program's stdin/stdout on the socket
  sockbox connect --tls example.com 443                      # TLS, certificate checked
  sockbox connect -z 192.0.2.1 20-25 80 443                  # which ports are open (nc -z)
  sockbox connect -U /run/app.sock                           # a UNIX stream socket
  sockbox connect -C smtp.example 25                         # LF sent as CRLF
  sockbox connect --proxy 127.0.0.1:1080 --proxy-type socks5 example.com 22
  sockbox connect -s 192.0.2.10 -p 5000 192.0.2.1 80         # from this address and port

Half-close: at end of standard input the socket's write side is shut down
(TCP FIN) and output keeps flowing until the peer closes. --no-shutdown keeps
it open; -q SECS quits that long after end of input. When the peer closes
first, standard output is closed at once and standard input is still sent.

-z connects to each port (many at once, each bounded by -w, default 2s),
closes at once and prints `Connection to HOST PORT port [tcp/SERVICE]
succeeded!` on standard output for each open port, in the order given; -v
also says why the others are not. With -u an empty datagram is sent and a
port counts as open unless ICMP port unreachable comes back within -w.
-zU PATH checks a UNIX socket the same way (with -u, a datagram one).

Through --proxy the target's name is resolved by the proxy (socks5, http;
socks4 resolves here and falls back to SOCKS4a; --proxy-dns chooses). -e/-c programs get
SOCKBOX_REMOTE_ADDR/PORT, SOCKBOX_LOCAL_ADDR/PORT, SOCKBOX_PROTO and ncat's
NCAT_REMOTE_ADDR/PORT, NCAT_LOCAL_ADDR/PORT, NCAT_PROTO.

Exit codes: 0 success (-z: at least one port open); 1 the connection failed,
was refused or reset by the peer or went idle (-i) (-z: no port open); 2
usage or input error (bad host name, bad flag); 3 system failure.";

/// Arguments of `sockbox connect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = EXAMPLES,
    override_usage = "sockbox connect [OPTIONS] HOST PORT\n       \
                      sockbox connect -z [OPTIONS] HOST PORTS...\n       \
                      sockbox connect -U [OPTIONS] PATH\n       \
                      sockbox connect -zU [OPTIONS] PATH"
)]
pub struct Args {
    /// Host name or address to connect to (with -U: the socket's path).
    #[arg(value_name = "HOST", required_unless_present = "listen")]
    pub host: Option<String>,
    /// Port (1-65535); with -z, ports and ranges: 22 80-90 8000,8080.
    #[arg(value_name = "PORT", value_parser = port_list)]
    pub ports: Vec<String>,
    /// Zero-I/O mode: report which of the ports accept a connection (nc -z).
    #[arg(short = 'z', long = "zero-io", conflicts_with_all = ["tls", "exec", "sh_exec", "proxy"])]
    pub zero: bool,
    /// Give up connecting after this long (per address tried; -z: per port, default 2s).
    #[arg(short = 'w', long = "wait", value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Connect from this local address (-u -U: bind the client to this socket path).
    #[arg(short = 's', long = "source", value_name = "ADDR")]
    pub source: Option<String>,
    /// Connect from this local port.
    #[arg(
        short = 'p',
        long = "source-port",
        value_name = "PORT",
        conflicts_with = "unix"
    )]
    pub source_port: Option<u16>,
    /// nc's listen flag: refused here with the `sockbox listen` spelling.
    #[arg(short = 'l', long = "listen", hide = true)]
    pub listen: bool,
    /// Speak TLS over the TCP connection; the certificate must match HOST.
    #[arg(long, conflicts_with_all = ["udp", "unix"])]
    pub tls: bool,
    /// Trust only the CA certificates in this PEM file (default: the system store).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Accept any server certificate (testing only: anyone can impersonate the server).
    #[arg(long, requires = "tls")]
    pub tls_insecure: bool,
    /// Connect through this proxy (HOST[:PORT]; port 1080 for socks, 3128 for http).
    #[arg(long, value_name = "HOST[:PORT]", conflicts_with_all = ["udp", "unix"])]
    pub proxy: Option<String>,
    /// The proxy's protocol: socks4, socks5 or http (as ncat, http by default).
    #[arg(long, value_name = "TYPE", default_value = "http", requires = "proxy")]
    pub proxy_type: ProxyKind,
    /// USER:PASS for the proxy (socks4 sends the user only). An HTTP proxy gets them only
    /// when it asks (407), as Digest when it offers it, else Basic.
    #[arg(long, value_name = "USER:PASS", requires = "proxy")]
    pub proxy_auth: Option<String>,
    /// Where the target's name is resolved: local (here; it must resolve), remote (by the
    /// proxy), both (here, else by the proxy) or none (give an address). Default: remote, and
    /// both for socks4 (which carries names only as SOCKS4a).
    #[arg(long, value_name = "MODE", requires = "proxy")]
    pub proxy_dns: Option<ProxyDns>,
    /// Relay flags.
    #[command(flatten)]
    pub relay: Box<RelayArgs>,
}

/// A PORT argument: a port, or (for -z) a list of ports and ranges.
fn port_list(s: &str) -> Result<String, String> {
    sockbox::net::scan::parse_ports(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
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
    if a.listen {
        return Err(usage(
            "connect does not listen: use `sockbox listen` (it takes nc's spellings too: \
             sockbox listen -lvnp 9000)",
        ));
    }
    let Some(host) = a.host.as_deref() else {
        return Err(usage("give the HOST to connect to"));
    };
    if a.zero && r.unix {
        return zero_io_unix(a, host);
    }
    if a.zero {
        return zero_io(a, host);
    }
    if r.unix {
        return run_unix(a, host);
    }
    let port = single_port(&a.ports)?;
    let spec = r.exec_spec()?;
    let opts = r.options();
    let tls = if a.tls { Some(client_tls(a)?) } else { None };
    let source = source(a)?;
    if r.nodns {
        numeric(host)?;
    }
    if tls.is_some() || a.proxy.is_some() {
        let connector = connector(a, tls.clone(), source)?;
        if tls.is_none() {
            // A plain tunnel: the fast path once the proxy said yes.
            let sock = proxied(&connector, host, port)?;
            return match sock {
                Ok(sock) => relay_and_finish(sock, spec, &opts, r.dump()?),
                Err(e) => relay_error(e, Say::Stderr),
            };
        }
        let addrs = r.resolve(host, port)?;
        let local = match spec {
            Some(s) => ClientLocal::Exec(s),
            None => ClientLocal::Stdio,
        };
        let result = run_stream(&connector, &addrs, host, &local, &opts, r.dump()?)?;
        return finish(result, Say::Stderr);
    }
    let addrs = r.resolve(host, port)?;
    let dump = r.dump()?;
    let sock = if r.udp {
        connect_udp(&addrs, source)
    } else {
        connect_tcp(&addrs, a.wait, source)
    };
    match sock {
        Ok(s) => relay_and_finish(s, spec, &opts, dump),
        Err(e) => relay_error(e, Say::Stderr),
    }
}

/// `connect -U PATH`: a UNIX stream socket, or with -u a datagram socket.
fn run_unix(a: &Args, host: &str) -> anyhow::Result<u8> {
    let r = &a.relay;
    if !a.ports.is_empty() {
        return Err(usage(format!(
            "-U takes the socket's path only, not a port: sockbox connect -U {host}"
        )));
    }
    let spec = r.exec_spec()?;
    let opts = r.options();
    let dump = r.dump()?;
    let path = std::path::Path::new(host);
    let source = a.source.as_deref().map(std::path::Path::new);
    let sock = match (r.udp, source) {
        (true, _) => connect_unix_datagram(path, source),
        (false, None) => connect_unix(path),
        (false, Some(_)) => {
            return Err(usage(
                "-s with -U names the client's own socket, for datagrams only: add -u",
            ));
        }
    };
    let sock = match sock {
        Ok(s) => s,
        Err(e) => return relay_error(e, Say::Stderr),
    };
    let code = relay_and_finish(sock, spec, &opts, dump);
    // The socket file bound for -s is this client's: remove it.
    if let Some(me) = source {
        let _ = std::fs::remove_file(me);
    }
    code
}

/// `connect -z HOST PORTS…`.
fn zero_io(a: &Args, host: &str) -> anyhow::Result<u8> {
    let r = &a.relay;
    if a.ports.is_empty() {
        return Err(usage(
            "-z needs the ports to check: sockbox connect -z HOST 1-1024",
        ));
    }
    let ips: Vec<IpAddr> = r.resolve(host, 0)?.iter().map(SocketAddr::ip).collect();
    let source = match &a.source {
        Some(s) => Some(numeric(s).map_err(|e| usage(format!("-s: {e}")))?),
        None => None,
    };
    scan::run(&scan::ScanArgs {
        host,
        ips,
        ports: &a.ports,
        udp: r.udp,
        wait: a.wait,
        source,
        verbose: r.verbose > 0,
    })
}

/// `connect -zU PATH` (nc.openbsd's habit): does a server listen on this
/// UNIX socket? With -u, a datagram socket. Nothing is sent.
fn zero_io_unix(a: &Args, path: &str) -> anyhow::Result<u8> {
    if !a.ports.is_empty() {
        return Err(usage(format!(
            "-U takes the socket's path only, not a port: sockbox connect -zU {path}"
        )));
    }
    scan::unix(
        std::path::Path::new(path),
        a.relay.udp,
        a.wait,
        a.relay.verbose > 0,
    )
}

/// The one port of a connection (several, or ranges, only with -z).
fn single_port(ports: &[String]) -> anyhow::Result<u16> {
    match ports {
        [] => Err(usage(
            "give the PORT to connect to (or -U PATH for a UNIX socket)",
        )),
        [one] => one.parse::<u16>().map_err(|_| {
            usage(format!(
                "{one:?}: one port to connect to (lists and ranges only with -z)"
            ))
        }),
        _ => Err(usage(format!(
            "{} ports given: connect takes one (several only with -z)",
            ports.len()
        ))),
    }
}

/// `-s ADDR` and `-p PORT` as one local address; `None` when neither.
fn source(a: &Args) -> anyhow::Result<Option<SocketAddr>> {
    let ip = match &a.source {
        Some(s) => Some(numeric(s).map_err(|e| usage(format!("-s: {e}")))?),
        None => None,
    };
    Ok(match (ip, a.source_port) {
        (None, None) => None,
        (ip, port) => {
            let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            Some(SocketAddr::new(ip, port.unwrap_or(0)))
        }
    })
}

/// The connector for TLS and proxies.
fn connector(
    a: &Args,
    tls: Option<TlsConnector>,
    source: Option<SocketAddr>,
) -> anyhow::Result<Connector> {
    let mut c = Connector::new().family(a.relay.family());
    if let Some(w) = a.wait {
        c = c.timeout(w);
    }
    if let Some(t) = tls {
        c = c.tls(t);
    }
    if let Some(s) = source {
        c = c.source(s);
    }
    if let Some(p) = &a.proxy {
        let mut p = proxy(p, a.proxy_type, a.proxy_auth.as_deref(), a.relay.nodns)?;
        if let Some(dns) = a.proxy_dns {
            p = p.dns(dns);
        }
        c = c.proxy(p);
    }
    Ok(c)
}

/// `--proxy HOST[:PORT]` with its type and credentials.
fn proxy(spec: &str, kind: ProxyKind, auth: Option<&str>, nodns: bool) -> anyhow::Result<Proxy> {
    let (host, port) = split_host_port(spec).ok_or_else(|| {
        usage(format!(
            "--proxy {spec:?}: give HOST or HOST:PORT ([::1]:1080 for IPv6)"
        ))
    })?;
    if nodns {
        numeric(host).map_err(|e| usage(format!("--proxy: {e}")))?;
    }
    let mut p = Proxy::new(host, port.unwrap_or(kind.default_port()), kind);
    if let Some(a) = auth {
        let (user, pass) = a.split_once(':').unwrap_or((a, ""));
        p = p.auth(user, pass);
    }
    Ok(p)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => p
                .strip_prefix(':')?
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .map(|p| (host, Some(p))),
        };
    }
    match s.matches(':').count() {
        0 => (!s.is_empty()).then_some((s, None)),
        1 => {
            let (h, p) = s.split_once(':')?;
            let p = p.parse::<u16>().ok().filter(|&p| p > 0)?;
            (!h.is_empty()).then_some((h, Some(p)))
        }
        _ => Some((s, None)),
    }
}

/// Connect through the proxy in a runtime and hand back a blocking socket.
fn proxied(c: &Connector, host: &str, port: u16) -> anyhow::Result<Result<Connected, RelayError>> {
    runtime::block_on(async {
        let stream = match c.connect(host, port).await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.into())),
        };
        let tcp = match stream {
            sockbox::net::ClientStream::Tcp(t) => t,
            sockbox::net::ClientStream::Tls(_) => {
                return Err(anyhow::anyhow!(
                    "a TLS stream where a plain one was asked for"
                ));
            }
        };
        let std = tcp.into_std()?;
        std.set_nonblocking(false)?;
        Ok(Ok(Connected::Tcp(std)))
    })?
}

/// Relay a connected socket and map the result to the exit code.
fn relay_and_finish(
    sock: Connected,
    spec: Option<ExecSpec>,
    opts: &RelayOptions,
    dump: Option<Dump>,
) -> anyhow::Result<u8> {
    match sock.peer() {
        Ok(peer) => tracing::info!("connected to {peer}"),
        Err(e) => return relay_error(e, Say::Stderr),
    }
    let result = relay_connected(sock, spec, opts, dump)?;
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
