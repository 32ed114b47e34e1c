//! `sockbox wake --wait`: after sending, ping each host until it answers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sockbox::Shutdown;
use sockbox::iface::Interface;
use sockbox::wol::ToSpec;
use sockbox::wol::hosts::Host;

use super::lib_err;

/// An address to ping for `--wait`, with the label to show.
pub(crate) struct WaitTarget {
    label: String,
    addr: IpAddr,
}
use crate::exit::usage;

/// True for addresses that cannot answer a ping as one host: broadcast
/// (limited or any local interface's directed broadcast) and multicast.
fn is_broadcast_like(ip: IpAddr, all: &[Interface]) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::BROADCAST
                || v4.is_multicast()
                || all.iter().any(|i| i.ipv4().any(|(_, b)| b == Some(v4)))
        }
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// The address to ping for each host: `--wait-addr`, else the host's
/// address from the hosts file, which must not be a broadcast address.
pub(crate) async fn targets(
    hosts: &[&Host],
    wait_addr: Option<&ToSpec>,
    all: &[Interface],
) -> anyhow::Result<Vec<WaitTarget>> {
    let mut out = Vec::new();
    for h in hosts {
        let Some(spec) = wait_addr.or(h.addr.as_ref()) else {
            return Err(usage(format!(
                "--wait needs {}'s own IP address to ping: give --wait-addr ADDR, or add it \
                 to the hosts file (MAC ADDR name)",
                h.label()
            )));
        };
        let addr = spec.resolve(0).await.map_err(lib_err)?.ip();
        if is_broadcast_like(addr, all) {
            return Err(usage(format!(
                "--wait cannot ping {addr} for {}: it is a broadcast or multicast address; \
                 give the host's own address with --wait-addr ADDR",
                h.label()
            )));
        }
        out.push(WaitTarget {
            label: h.label(),
            addr,
        });
    }
    Ok(out)
}

/// Ping every target until it answers or `timeout` passes. True when all
/// answered.
#[allow(clippy::unused_async)] // until the ping engine lands
pub(crate) async fn wait_all(
    targets: &[WaitTarget],
    timeout: Duration,
    quiet: bool,
    shutdown: &Shutdown,
) -> anyhow::Result<bool> {
    let _ = (timeout, quiet, shutdown);
    let which: Vec<String> = targets
        .iter()
        .map(|t| format!("{} at {}", t.label, t.addr))
        .collect();
    Err(anyhow::anyhow!(
        "packets sent, but --wait cannot ping {} yet: this build has no ping engine",
        which.join(", ")
    ))
}
