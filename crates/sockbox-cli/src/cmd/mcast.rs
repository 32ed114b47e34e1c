//! `sockbox mcast send` and `sockbox mcast listen`: IPv4 and IPv6 multicast
//! on an explicitly chosen interface, any-source or source-specific.

use std::net::{IpAddr, SocketAddr};

use sockbox::udp::mcast::{self, IfaceSpec, Membership, SendOptions};
use sockbox::udp::{ListenConfig, SendConfig, Sender};

use crate::cmd::runtime;
use crate::cmd::serve::{DaemonArgs, SIGNALS_HELP};
use crate::cmd::udp::common::{
    CollectArgs, MessageArgs, OutputArgs, lib_err, parse_ip_scoped, parse_listen_port, parse_port,
    send_and_collect,
};
use crate::cmd::udp::serve::{ListenOutputArgs, ResponderArgs, serve_listener};
use crate::exit::usage;

/// Arguments of `sockbox mcast`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  sockbox mcast listen 239.1.2.3 5000 --iface eth0      join on eth0 and print datagrams
  sockbox mcast send 239.1.2.3 5000 hello --iface eth0  send out of eth0, no route needed
  sockbox mcast listen ff3e::8000:1 5000 -i eth0 -s 2001:db8::7  IPv6 source-specific")]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Send to a group from a chosen interface, with TTL and loopback control.
    Send(SendArgs),
    /// Join a group (optionally from one source only) and print what arrives.
    Listen(ListenArgs),
}

const SEND_HELP: &str = "\
Examples:
  sockbox mcast send 239.1.2.3 5000 hello --iface eth0      leave by eth0, no route needed
  sockbox mcast send ff02::1:3 5355 hi --iface eth0 -w 1s   IPv6 link scope; replies for 1s
  sockbox mcast send 239.1.2.3 5000 hi --ttl 8 --no-loop    cross 7 routers; not to this host
  printf 'a\\nb\\n' | sockbox mcast send 239.1.2.3 5000 --lines

Replies (unicast answers to the sender, as discovery protocols give) print like `udp send`'s.

Exit codes: 0 sent (and a reply came when --wait/--replies ask for one); 1 no reply came;
2 usage or input error (e.g. GROUP not multicast); 3 system failure.";

/// Arguments of `sockbox mcast send`.
#[derive(Debug, clap::Args)]
#[command(after_help = SEND_HELP)]
pub struct SendArgs {
    /// The group: IPv4 224.0.0.0/4 or IPv6 ff00::/8 (ff02::1%eth0 names the interface too).
    #[arg(value_name = "GROUP", id = "mcast_group")]
    pub group: String,
    /// Destination port (1-65535).
    #[arg(value_name = "PORT", value_parser = parse_port)]
    pub port: u16,
    #[command(flatten)]
    pub message: MessageArgs,
    /// Leave by this interface (name or one of its addresses): IP_MULTICAST_IF / IPV6_MULTICAST_IF.
    #[arg(short, long, value_name = "NAME|ADDR")]
    pub iface: Option<String>,
    /// IPv4 TTL / IPv6 hop limit (default 1: this link only).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=255))]
    pub ttl: Option<u32>,
    /// Deliver a copy to listeners on this host too (the kernel default).
    #[arg(long = "loop", conflicts_with = "no_loop")]
    pub loopback: bool,
    /// Do not deliver a copy to listeners on this host.
    #[arg(long = "no-loop")]
    pub no_loop: bool,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

const LISTEN_HELP: &str = "\
Examples:
  sockbox mcast listen 239.1.2.3 5000 --iface eth0          join on eth0, print datagrams
  sockbox mcast listen 232.1.1.1 5000 --source 10.0.0.7     source-specific (SSM)
  sockbox mcast listen ff02::1:3 5355 --iface eth0 --json
  sockbox mcast listen 239.255.0.1 5000 --reply \"I am here\" a discovery responder

The socket binds the group address, so it sees this group's datagrams only, and
SO_REUSEADDR lets several listeners on one host share the group and port.

Exit codes: 0 success; 2 usage or input error (e.g. GROUP not multicast); 3 system failure.";

/// Arguments of `sockbox mcast listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{LISTEN_HELP}\n{SIGNALS_HELP}"))]
pub struct ListenArgs {
    /// The group to join: IPv4 224.0.0.0/4 or IPv6 ff00::/8 (ff02::1%eth0 names the interface too).
    #[arg(value_name = "GROUP", id = "mcast_group")]
    pub group: String,
    /// The port (0: any free port).
    #[arg(value_name = "PORT", value_parser = parse_listen_port)]
    pub port: u16,
    /// Join on this interface (name or one of its addresses); default: the kernel's choice by route.
    #[arg(short, long, value_name = "NAME|ADDR")]
    pub iface: Option<String>,
    /// Accept datagrams from this source only (IP_ADD_SOURCE_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP).
    #[arg(short, long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    #[command(flatten)]
    pub responder: ResponderArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub lout: ListenOutputArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Run `sockbox mcast`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    match &a.cmd {
        Cmd::Send(s) => runtime::block_on(send(s))?,
        Cmd::Listen(l) => listen(l),
    }
}

/// The group as a socket address, and the interface its `%scope` names.
fn group_addr(s: &str, port: u16) -> anyhow::Result<(SocketAddr, Option<IfaceSpec>)> {
    let a = parse_ip_scoped(s, port)?.ok_or_else(|| {
        usage(format!(
            "{s:?} is not a multicast group address: IPv4 groups are 224.0.0.0/4 \
             (e.g. 239.1.2.3), IPv6 groups are ff00::/8 (e.g. ff02::1:3)"
        ))
    })?;
    mcast::check_group(a.ip()).map_err(lib_err)?;
    let scope = match a {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(iface_by_index(v6.scope_id())?),
        _ => None,
    };
    Ok((a, scope))
}

fn iface_by_index(index: u32) -> anyhow::Result<IfaceSpec> {
    sockbox::iface::list()?
        .into_iter()
        .find(|i| i.index == index)
        .map(|i| IfaceSpec::Name(i.name))
        .ok_or_else(|| usage(format!("no interface has index {index} (`sockbox ifaces`)")))
}

fn spec(s: &str) -> IfaceSpec {
    match s.parse::<IfaceSpec>() {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

fn pick_iface(
    flag: Option<&str>,
    scope: Option<IfaceSpec>,
    group: IpAddr,
) -> anyhow::Result<Option<IfaceSpec>> {
    let iface = match (flag, scope) {
        (Some(f), Some(s)) => {
            let f = spec(f);
            let (fi, si) = (
                mcast::resolve_iface(&f).map_err(lib_err)?,
                mcast::resolve_iface(&s).map_err(lib_err)?,
            );
            if fi.index != si.index {
                return Err(usage(format!(
                    "--iface {f} and the group's %{s} name different interfaces; give one"
                )));
            }
            Some(f)
        }
        (Some(f), None) => Some(spec(f)),
        (None, s) => s,
    };
    if iface.is_none() && mcast::needs_interface(group) {
        crate::output::errln!(
            "sockbox: warning: {group} is link-scoped; without --iface the kernel picks the \
             interface by route"
        );
    }
    Ok(iface)
}

async fn send(a: &SendArgs) -> anyhow::Result<u8> {
    let (to, scope) = group_addr(&a.group, a.port)?;
    let iface = pick_iface(a.iface.as_deref(), scope, to.ip())?;
    let loopback = if a.no_loop {
        Some(false)
    } else if a.loopback {
        Some(true)
    } else {
        None
    };
    let cfg = SendConfig {
        bind: None,
        broadcast: false,
        multicast: Some(SendOptions {
            ttl: a.ttl,
            loopback,
            iface,
        }),
        iface: None,
        report_unreachable: false,
    };
    let sender = Sender::bind(vec![to], &cfg).map_err(lib_err)?;
    send_and_collect(sender, &a.message, &a.collect, &a.out).await
}

fn listen(a: &ListenArgs) -> anyhow::Result<u8> {
    let (group, scope) = group_addr(&a.group, a.port)?;
    let iface = pick_iface(a.iface.as_deref(), scope, group.ip())?;
    let membership = Membership {
        group: group.ip(),
        iface,
        source: a.source,
    };
    membership.validate().map_err(lib_err)?;
    let cfg = ListenConfig {
        port: a.port,
        membership: Some(membership),
        reply: a.responder.mode(sockbox::udp::max_payload(group.ip()))?,
        max_children: a.responder.max_children as usize,
        ..ListenConfig::default()
    };
    serve_listener(cfg, &a.daemon, &a.out, &a.lout, Some(group.ip()))
}
