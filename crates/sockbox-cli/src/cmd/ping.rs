//! `sockbox ping`: ICMP echo to one target (output like iputils `ping`) or
//! many targets and ranges (output and exit codes like `fping`), or JSON
//! lines.

pub mod argv;
mod format;
mod opts;
mod output;
mod plan;
mod progress;
mod serve;
mod sources;

use std::io::IsTerminal;
use std::net::{IpAddr, ToSocketAddrs};

use sockbox::Shutdown;
use sockbox::ping::targets::{self, FamilyPref, Spec};
use sockbox::ping::{
    FamilySockets, IcmpTransport, Mode, OpenError, Outcome, PingError, SetupError,
};

use crate::cmd::runtime;
use crate::exit::{PARTIAL, SUCCESS, UsageError, usage};
pub use opts::Args;
use output::{FINAL_BYTES, Printer, Style};
use plan::Plan;
use sources::{Input, Shape};

/// fping's exit codes for errors (its manual: 3 bad arguments, 4 system
/// call failure).
const FPING_USAGE: u8 = 3;
const FPING_SYSTEM: u8 = 4;
/// fping's exit code when a name did not resolve.
const FPING_UNRESOLVED: u8 = 2;

/// True when the invocation is fping style (see the help text).
fn fping_style(a: &Args) -> bool {
    a.has_fping_only()
        || a.targets.len() > 1
        || (a.targets.is_empty() && !std::io::stdin().is_terminal())
}

/// Run `sockbox ping`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    if a.serve.any() {
        return serve::run(a, &a.serve);
    }
    let fping = fping_style(a);
    match run_style(a, fping) {
        Err(e) if fping => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return Ok(SUCCESS);
            }
            let usage = e.chain().any(|c| c.downcast_ref::<UsageError>().is_some());
            let _ = std::io::Write::write_all(
                &mut std::io::stderr().lock(),
                format!("sockbox: {}\n", crate::exit::render(&e)).as_bytes(),
            );
            Ok(if usage { FPING_USAGE } else { FPING_SYSTEM })
        }
        r => r,
    }
}

/// The one target of a ping-style run, resolved now (before any thread).
fn single_target(word: &str, pref: FamilyPref) -> anyhow::Result<(String, IpAddr)> {
    match targets::parse_spec(word).map_err(|e| usage(e.to_string()))? {
        Spec::Addr(a) if !pref.accepts(&a) => Err(usage(format!(
            "{word}: an IPv{} address, but -{} was given",
            if a.is_ipv4() { 4 } else { 6 },
            if a.is_ipv4() { 6 } else { 4 },
        ))),
        Spec::Addr(a) => Ok((a.to_string(), a)),
        Spec::Name(n) => {
            let addrs = (n.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| usage(format!("cannot resolve {n}: {e}")))?;
            let mut any = false;
            for sa in addrs {
                any = true;
                if pref.accepts(&sa.ip()) {
                    return Ok((n, sa.ip()));
                }
            }
            let why = if any {
                "it has no address of the requested family"
            } else {
                "no address found"
            };
            Err(usage(format!("cannot resolve {n}: {why}")))
        }
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuse, before anything runs, a run whose per-target summaries could
/// not fit in memory.
fn check_memory(p: &Plan, shape: &Shape) -> anyhow::Result<()> {
    let looping = matches!(p.cfg.mode, Mode::Forever);
    let summaries = p.fping && !p.json && matches!(p.cfg.mode, Mode::Count(_) | Mode::Forever);
    let (Some(total), true) = (shape.total, summaries || looping) else {
        return Ok(());
    };
    let columns = match p.cfg.mode {
        Mode::Count(n) if p.out.columns => u128::from(n) * 8,
        _ => 0,
    };
    let kept = if summaries {
        u128::from(FINAL_BYTES)
    } else {
        0
    };
    // A loop never lets a target go: the engine holds each one's state.
    let engine = if looping {
        sockbox::ping::engine::TARGET_STATE_BYTES as u128
    } else {
        0
    };
    let per = kept + engine + columns + if p.out.squiet.is_some() { 64 } else { 0 };
    let need = total.saturating_mul(per);
    let avail = u128::from(mem_available().unwrap_or(u64::MAX));
    if need > avail {
        return Err(usage(format!(
            "{total} targets with -c/-C/-l: what is kept of each would need {} MB ({per} bytes \
             each), more than the {} MB available; ping fewer targets, or drop -c/-C/-l \
             (with -a/-u/-q a sweep keeps nothing per target)",
            need >> 20,
            avail >> 20
        )));
    }
    Ok(())
}

/// Whether round-trip times are shown: only then is each probe's kernel
/// transmit timestamp worth its cost.
fn shows_rtt(p: &Plan) -> bool {
    !p.fping
        || p.json
        || p.out.elapsed
        || p.out.stats
        || p.out.squiet.is_some()
        || matches!(p.cfg.mode, Mode::Count(_) | Mode::Forever)
}

fn map_open_error(e: OpenError) -> anyhow::Error {
    match e {
        OpenError::Setup {
            error: SetupError::Device { device, source },
            ..
        } => usage(format!(
            "-I {device:?}: cannot bind to this interface: {source}"
        )),
        OpenError::Setup {
            error: SetupError::Source { addr, source },
            ..
        } => usage(format!(
            "-I/-S {addr}: cannot send from this address: {source} (is it an address of this host?)"
        )),
        OpenError::Setup {
            error: e @ SetupError::Option { .. },
            ..
        } => usage(format!("invalid socket option: {e}")),
        other => anyhow::Error::new(other),
    }
}

fn take_socket(
    r: Result<FamilySockets, OpenError>,
    strict: bool,
    other_ok: bool,
) -> anyhow::Result<Option<FamilySockets>> {
    match r {
        Ok(s) => Ok(Some(s)),
        Err(OpenError::NotWanted) => Ok(None),
        Err(e @ OpenError::Setup { .. }) => Err(map_open_error(e)),
        Err(e) if strict || !other_ok => Err(map_open_error(e)),
        Err(e) => {
            tracing::debug!("{e}");
            Ok(None)
        }
    }
}

fn run_style(a: &Args, fping: bool) -> anyhow::Result<u8> {
    let mut p = plan::plan(a, fping)?;
    let shape = if fping {
        sources::shape(&a.targets, a.file.as_deref(), a.generate, &p)?
    } else {
        let [word] = a.targets.as_slice() else {
            return Err(usage(
                "no targets: give hosts, addresses, -g RANGE, -f FILE, or names on stdin",
            ));
        };
        let (name, addr) = single_target(word, p.pref)?;
        Shape {
            total: Some(1),
            width: name.len(),
            v4: addr.is_ipv4(),
            v6: addr.is_ipv6(),
            input: Input::Words(vec![addr.to_string()]),
            wrong_family: Vec::new(),
            single: Some((name, addr)),
        }
    };
    check_memory(&p, &shape)?;
    p.opts.tx_timestamps = match a.send_time.as_str() {
        "kernel" => true,
        "clock" => false,
        _ => shows_rtt(&p),
    };
    let strict = matches!(&shape.input, Input::Ranges(_))
        || matches!(&shape.input, Input::Words(w) if w.iter().all(|w| w.parse::<IpAddr>().is_ok()));
    // A sweep sends from one thread per core, each on its own socket.
    let lanes = match shape.total {
        Some(n) if n <= sockbox::ping::socket::BATCH as u128 => 1,
        _ => std::thread::available_parallelism().map_or(1, usize::from),
    };
    // Open sockets while single-threaded, then drop capabilities for good.
    let opened = sockbox::ping::socket::open(p.choice, shape.v4, shape.v6, &p.opts, lanes);
    if let Err(e) = sockbox::ping::drop_capabilities() {
        tracing::debug!("could not drop capabilities: {e}");
    }
    let v4_ok = opened.v4.is_ok();
    let v6_ok = opened.v6.is_ok();
    let v4 = take_socket(opened.v4, strict, v6_ok)?;
    let v6 = take_socket(opened.v6, strict, v4_ok)?;
    // One thread: the loop is a single task (big sends are spread over
    // threads by the transport itself).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(run_async(p, shape, v4, v6))
}

async fn run_async(
    p: Plan,
    shape: Shape,
    v4: Option<FamilySockets>,
    v6: Option<FamilySockets>,
) -> anyhow::Result<u8> {
    let shutdown = Shutdown::new();
    runtime::shutdown_on_signals(&shutdown)?;
    let style = if p.json {
        Style::Json
    } else if p.fping {
        Style::Fping
    } else {
        Style::Ping
    };
    let kinds = (v4.as_ref().map(|s| s.kind), v6.as_ref().map(|s| s.kind));
    let mut printer = Printer::new(style, &p, shape.width, shape.total, shutdown.clone());
    printer.set_kinds(kinds);
    for w in &shape.wrong_family {
        sockbox::ping::Observer::event(
            &mut printer,
            &sockbox::ping::Event::Unresolved {
                name: w,
                error: "Address family for hostname not supported",
            },
        );
    }
    if let Some((name, addr)) = &shape.single {
        printer.set_single(name.clone(), *addr);
        if style == Style::Ping {
            printer.ping_header();
        }
    }
    let max_packet = p.cfg.payload_len + 8 + 60;
    let mut transport = IcmpTransport::new(v4, v6, max_packet)
        .map_err(|e| anyhow::anyhow!("cannot watch the ICMP sockets: {e}"))?;
    let mut source = sources::build(shape.input, &p);
    let outcome = sockbox::ping::run(&p.cfg, &mut source, &mut transport, &shutdown, &mut printer)
        .await
        .map_err(|e| match e {
            PingError::Config(c) => usage(c.to_string()),
            other => anyhow::Error::new(other),
        })?;
    printer.finish(&outcome)?;
    if let Some(e) = printer.memory_error() {
        return Err(anyhow::anyhow!("{e}"));
    }
    if outcome.totals.targets == 0 && printer.unresolved() == 0 {
        return Err(usage(
            "no targets: give hosts, addresses, -g RANGE, -f FILE, or names on stdin",
        ));
    }
    Ok(exit_code(&p, &printer, &outcome))
}

fn exit_code(p: &Plan, printer: &Printer, o: &Outcome) -> u8 {
    let t = &o.totals;
    if !p.fping {
        return if t.received > 0 { SUCCESS } else { PARTIAL };
    }
    // An interrupted sweep did not check every target (a loop ends so).
    let cut = !o.source_ended && !matches!(p.cfg.mode, Mode::Forever);
    if let Some((n, _)) = p.out.reachable {
        return if printer.alive() >= u64::from(n) {
            SUCCESS
        } else {
            PARTIAL
        };
    }
    if printer.unresolved() > 0 {
        FPING_UNRESOLVED
    } else if t.alive == t.targets && !cut {
        SUCCESS
    } else {
        PARTIAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_of_the_other_family_is_refused() {
        let t = single_target("127.0.0.1", FamilyPref::Any).map(|t| t.1);
        assert_eq!(t.ok(), Some(IpAddr::from([127, 0, 0, 1])));
        let e = single_target("127.0.0.1", FamilyPref::V6)
            .unwrap_err()
            .to_string();
        assert!(e.contains("127.0.0.1") && e.contains("-6"), "{e}");
        assert!(single_target("::1", FamilyPref::V4).is_err());
        assert!(single_target("bad host!", FamilyPref::Any).is_err());
    }
}
