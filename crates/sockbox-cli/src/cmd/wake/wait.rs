//! `sockbox wake --wait`: after sending, ping each host until it answers.

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sockbox::Shutdown;
use sockbox::iface::Interface;
use sockbox::ping::{WaitConfig, wait_until_up};
use sockbox::udp::target::{self, Kind};
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
        IpAddr::V4(v4) => matches!(
            target::classify(v4, all),
            Kind::Limited | Kind::Interface(_) | Kind::Multicast
        ),
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

/// How often `--wait` probes.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Ping every target (all at once) until it answers or `timeout` passes,
/// with a progress line on stderr. True when all answered.
pub(crate) async fn wait_all(
    targets: &[WaitTarget],
    timeout: Duration,
    quiet: bool,
    shutdown: &Shutdown,
) -> anyhow::Result<bool> {
    let progress = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let names: Vec<String> = targets
        .iter()
        .map(|t| format!("{} at {}", t.label, t.addr))
        .collect();
    let msg = format!(
        "waiting up to {} for {} to answer ping",
        humantime::format_duration(timeout),
        names.join(", ")
    );
    match &progress {
        Some(pb) => pb.set_message(msg),
        None if !quiet => crate::output::errln!("{msg}"),
        None => {}
    }
    let cfg = WaitConfig {
        interval: PROBE_EVERY,
        timeout,
        ..WaitConfig::default()
    };
    // wait_until_up's future is not Send (it holds mmsghdr buffers), so the
    // waits run concurrently on this thread.
    let local = tokio::task::LocalSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let (cfg, sd, addr) = (cfg.clone(), shutdown.clone(), t.addr);
        tasks.spawn_local_on(
            async move {
                let start = Instant::now();
                (i, wait_until_up(addr, &cfg, &sd).await, start.elapsed())
            },
            &local,
        );
    }
    let mut all_up = true;
    let mut first_err = None;
    let mut out = std::io::stdout();
    while let Some(joined) = local.run_until(tasks.join_next()).await {
        let (i, result, took) = joined?;
        let t = &targets[i];
        let line = match result {
            Ok(Some(rtt)) => format!(
                "{} is up: {} answered after {:.1}s (rtt {:.2} ms)",
                t.label,
                t.addr,
                took.as_secs_f64(),
                rtt.as_secs_f64() * 1000.0
            ),
            Ok(None) => {
                all_up = false;
                if shutdown.is_triggered() {
                    format!("{}: stopped waiting for {}", t.label, t.addr)
                } else {
                    format!(
                        "{}: {} did not answer within {}",
                        t.label,
                        t.addr,
                        humantime::format_duration(timeout)
                    )
                }
            }
            Err(e) => {
                all_up = false;
                first_err.get_or_insert(e);
                continue;
            }
        };
        if let Some(pb) = &progress {
            pb.suspend(|| writeln!(out, "{line}"))?;
        } else if !quiet {
            writeln!(out, "{line}")?;
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if let Some(e) = first_err {
        return Err(anyhow::Error::new(e).context("packets sent, but --wait cannot ping"));
    }
    Ok(all_up)
}
