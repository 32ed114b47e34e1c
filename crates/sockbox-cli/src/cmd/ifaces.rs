//! `sockbox ifaces`: list interfaces like `ip addr`, from getifaddrs.

use std::io::Write;

use sockbox::iface::{self, Interface};

use crate::output::json_line;

/// Arguments of `sockbox ifaces`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sockbox ifaces                      every interface, like `ip addr`
  sockbox ifaces --up --json | jq .name
  sockbox ifaces eth0                 one interface

Read from getifaddrs(3). `brd` is the directed broadcast address (what `sockbox wake`
and `sockbox udp send broadcast` send to); JSON lines carry the same fields.

Exit codes: 0 success; 2 no interface has that name; 3 the interfaces cannot be listed.")]
pub struct Args {
    /// Show only this interface.
    pub name: Option<String>,
    /// One JSON object per interface per line.
    #[arg(long)]
    pub json: bool,
    /// Only interfaces that are up.
    #[arg(long)]
    pub up: bool,
}

/// Run `sockbox ifaces`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let all = match &a.name {
        Some(n) => vec![iface::by_name(n).map_err(|e| crate::exit::usage(e.to_string()))?],
        None => iface::list()?,
    };
    let mut out = std::io::stdout().lock();
    for i in all.iter().filter(|i| !a.up || i.flags.up) {
        if a.json {
            json_line(&mut out, i)?;
        } else {
            write_human(&mut out, i)?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn write_human<W: Write>(out: &mut W, i: &Interface) -> std::io::Result<()> {
    write!(
        out,
        "{}: {}: <{}>",
        i.index,
        i.name,
        i.flags.names().join(",")
    )?;
    if let Some(mtu) = i.mtu {
        write!(out, " mtu {mtu}")?;
    }
    writeln!(out)?;
    if let Some(mac) = &i.mac {
        let kind = if i.flags.loopback {
            "loopback"
        } else {
            "ether"
        };
        writeln!(out, "    link/{kind} {}", iface::format_mac(mac))?;
    }
    for a in &i.addresses {
        let fam = if a.net.addr().is_ipv4() {
            "inet"
        } else {
            "inet6"
        };
        write!(out, "    {fam} {}", a.net)?;
        if let Some(b) = a.broadcast {
            write!(out, " brd {b}")?;
        }
        if let Some(p) = a.peer {
            write!(out, " peer {p}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
