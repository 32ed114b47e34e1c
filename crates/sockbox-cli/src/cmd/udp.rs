//! `sockbox udp send` and `sockbox udp listen`: datagrams, broadcast with
//! reply collection, and a responder for discovery.

pub mod common;
pub mod print;
pub mod serve;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sockbox::iface;
use sockbox::udp::{ListenConfig, SendConfig, Sender, target};

use common::{
    CollectArgs, MessageArgs, OutputArgs, lib_err, parse_ip_scoped, parse_listen_port, parse_port,
    resolve, send_and_collect,
};
use serve::{ListenOutputArgs, ResponderArgs, serve_listener};

use crate::cmd::runtime;
use crate::cmd::serve::{AclArgs, DaemonArgs, SIGNALS_HELP};
use crate::exit::usage;

/// Arguments of `sockbox udp`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  sockbox udp listen 9999 --reply \"I am here\"          on every host: a discovery responder
  sockbox udp send broadcast 9999 WHO --wait 2s         from anywhere: who is out there?
  sockbox udp send 10.0.0.5 9999 hello -n 1             one datagram, wait for one answer")]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Send a datagram (or one per line) and collect the replies.
    Send(SendArgs),
    /// Print datagrams with their source; answer them with --reply, --reply-exec or --echo.
    Listen(Box<ListenArgs>),
}

const SEND_HELP: &str = "\
Examples:
  sockbox udp send 10.0.0.5 9999 hello                 one datagram
  sockbox udp send broadcast 9999 WHO --wait 2s        every interface's broadcast; replies for 2s
  sockbox udp send 10.0.0.255 9999 WHO -b -n 3         stop at 3 replies (or after 3s)
  sockbox udp send broadcast 9999 WHO -I eth1 -w 2s    only eth1's broadcast, out of eth1
  printf 'a\\nb\\n' | sockbox udp send ::1 9999 --lines  one datagram per line
  sockbox udp send 10.0.0.5 7 'de ad' --hex -w 1s -x   bytes out, replies as hexdump -C

Replies print as `SOURCE:PORT  TIME ms  PAYLOAD`, one per line (newlines and control
characters escaped), or with --json as {\"from\",\"time_ms\",\"len\",\"text\",\"hex\"}.
Sending to 255.255.255.255 or an interface's broadcast address sets SO_BROADCAST on its own.

When --wait/--replies ask for replies from a unicast ADDR and an ICMP error comes
back instead (port unreachable: nothing listens there; host unreachable), the wait
ends at once with exit 1 and a message saying so.

Exit codes: 0 sent (and, when --wait/--replies ask for replies, at least one came);
1 no reply came, or ADDR is unreachable; 2 usage or input error; 3 system failure.";

/// Arguments of `sockbox udp send`.
#[derive(Debug, clap::Args)]
#[command(after_help = SEND_HELP)]
pub struct SendArgs {
    /// Destination: an IP address (fe80::1%eth0 for link-local), a host name,
    /// or `broadcast` for the broadcast address of every interface that is up.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Destination port (1-65535).
    #[arg(value_name = "PORT", value_parser = parse_port)]
    pub port: u16,
    #[command(flatten)]
    pub message: MessageArgs,
    /// Allow broadcast (SO_BROADCAST): ADDR must then be a broadcast address or `broadcast`.
    #[arg(short, long)]
    pub broadcast: bool,
    /// Send from this local address: PORT, IP, or IP:PORT (some responders answer a fixed port).
    #[arg(long, value_name = "[IP:]PORT")]
    pub bind: Option<String>,
    /// Send out of this interface only (SO_BINDTODEVICE and its address as the source);
    /// with ADDR `broadcast`, to that interface's broadcast address only.
    #[arg(short = 'I', long, value_name = "NAME")]
    pub iface: Option<String>,
    /// Use IPv4 only when resolving ADDR.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only when resolving ADDR.
    #[arg(short = '6')]
    pub ipv6: bool,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

const LISTEN_HELP: &str = "\
Examples:
  sockbox udp listen 9999                        print datagrams from anyone, IPv4 and IPv6
  sockbox udp listen 9999 --reply \"I am here\"    a discovery responder
  sockbox udp listen 127.0.0.1 7 --echo          echo service on loopback
  sockbox udp listen 9999 --reply-exec 'tr a-z A-Z' --exec-timeout 2s
  sockbox udp listen 9999 --json -c 1            wait for one datagram, print it as JSON
  sockbox udp listen 9999 --echo --allow 10.0.0.0/8 --denyfile bad.txt

Datagrams print as `SOURCE:PORT  PAYLOAD` (or -x, --json, --raw). Without ADDR the
listener binds every address, so broadcasts arrive too; one unicast address does not
see them. On start it logs where it listens, on stderr (not with -q); with --daemon or
--log-file each datagram's source and length is logged too. Datagrams from sources
refused by --allow/--deny (and their files: addresses, CIDR ranges or host names, re-read
on SIGHUP) are dropped unprinted and unanswered, and counted as refused (SIGUSR1 stats).
Answers leave from the address the datagram was sent to (for a broadcast or multicast,
from the receiving interface), so a client that wrote to a host's second address gets
its answer from there.

Exit codes: 0 success; 2 usage or input error; 3 system failure (e.g. port in use).";

/// Arguments of `sockbox udp listen`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "sockbox udp listen [OPTIONS] [ADDR] PORT",
    after_help = format!("{LISTEN_HELP}\n{SIGNALS_HELP}")
)]
pub struct ListenArgs {
    /// `[ADDR] PORT`: the local address (default: every address) and port (0: any free port).
    #[arg(value_name = "ADDR|PORT")]
    pub first: String,
    #[arg(value_name = "PORT", hide = true)]
    pub second: Option<String>,
    #[command(flatten)]
    pub responder: ResponderArgs,
    #[command(flatten, next_help_heading = "Access")]
    pub access: AclArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub lout: ListenOutputArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Run `sockbox udp`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    match &a.cmd {
        Cmd::Send(s) => runtime::block_on(send(s))?,
        Cmd::Listen(l) => listen(l),
    }
}

fn parse_bind(s: &str, v4: bool) -> anyhow::Result<SocketAddr> {
    let any = if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(any, port));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(a) = parse_ip_scoped(s, 0)? {
        return Ok(a);
    }
    Err(usage(format!(
        "--bind {s:?}: give a port (9000), an address (10.0.0.5) or both (10.0.0.5:9000)"
    )))
}

fn not_broadcast(ip: IpAddr) -> anyhow::Error {
    usage(format!(
        "{ip} is not a broadcast address: with --broadcast, ADDR must be a broadcast address \
         (255.255.255.255, or an interface's such as 192.168.1.255; `sockbox ifaces` shows them) \
         or the word `broadcast` for every interface's"
    ))
}

async fn send(a: &SendArgs) -> anyhow::Result<u8> {
    let mut broadcast = a.broadcast;
    let targets: Vec<SocketAddr> = if a.addr == "broadcast" {
        if a.ipv6 {
            return Err(usage(
                "IPv6 has no broadcast; to reach every host on a link use \
                 `sockbox mcast send ff02::1 PORT`",
            ));
        }
        broadcast = true;
        match &a.iface {
            Some(name) => target::iface_broadcasts(name),
            None => target::interface_broadcasts(),
        }
        .map_err(lib_err)?
        .into_iter()
        .map(|b| SocketAddr::new(IpAddr::V4(b.broadcast), a.port))
        .collect()
    } else {
        let t = resolve(&a.addr, a.port, a.ipv4, a.ipv6).await?;
        if a.broadcast {
            match t.ip() {
                IpAddr::V6(_) => {
                    return Err(usage(format!(
                        "{} is IPv6, which has no broadcast: to reach every host on a link use \
                         `sockbox mcast send ff02::1 {}` (with --iface)",
                        t.ip(),
                        a.port
                    )));
                }
                IpAddr::V4(v4) => match target::classify(v4, &iface::list()?) {
                    target::Kind::Unicast => return Err(not_broadcast(t.ip())),
                    target::Kind::Multicast => {
                        return Err(usage(format!(
                            "{v4} is a multicast group, not a broadcast address: use \
                             `sockbox mcast send {v4} {}`",
                            a.port
                        )));
                    }
                    _ => {}
                },
            }
        }
        vec![t]
    };
    let v4 = targets.first().is_none_or(SocketAddr::is_ipv4);
    let bind = a.bind.as_deref().map(|b| parse_bind(b, v4)).transpose()?;
    if let (Some(_), Some(b)) = (&a.iface, bind)
        && !b.ip().is_unspecified()
    {
        return Err(usage(format!(
            "--iface sends from the interface's own address: give --bind PORT alone, not {}",
            b.ip()
        )));
    }
    let cfg = SendConfig {
        bind,
        broadcast,
        multicast: None,
        iface: a.iface.clone(),
        report_unreachable: a.collect.replies.is_some() || a.collect.wait.is_some(),
    };
    let sender = Sender::bind(targets, &cfg).map_err(lib_err)?;
    send_and_collect(sender, &a.message, &a.collect, &a.out).await
}

fn listen(a: &ListenArgs) -> anyhow::Result<u8> {
    let (addr, port) = match &a.second {
        None => (None, &a.first),
        Some(p) => (Some(&a.first), p),
    };
    let port = parse_listen_port(port).map_err(usage)?;
    let at = match addr {
        None => None,
        Some(s) => Some(parse_ip_scoped(s, port)?.ok_or_else(|| {
            usage(format!(
                "{s:?} is not an IP address to listen on (e.g. 0.0.0.0 or ::1)"
            ))
        })?),
    };
    let addr = at.map(|a| a.ip());
    let scope_id = match at {
        Some(SocketAddr::V6(v6)) => v6.scope_id(),
        _ => 0,
    };
    let limit = addr.map_or(sockbox::udp::MAX_PAYLOAD_V6, sockbox::udp::max_payload);
    let mut cfg = ListenConfig {
        addr,
        scope_id,
        port,
        reply: a.responder.mode(limit)?,
        max_children: a.responder.max_children as usize,
        ..ListenConfig::default()
    };
    cfg.server.acl = a.access.acl()?;
    serve_listener(cfg, &a.daemon, &a.out, &a.lout, None)
}
