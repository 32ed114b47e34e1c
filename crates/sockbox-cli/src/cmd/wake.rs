//! `sockbox wake`: send Wake-on-LAN magic packets on every interface (or
//! where told), and `sockbox wake listen` to see them arrive.

mod listen;
mod targets;
mod wait;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use sockbox::Shutdown;
use sockbox::iface::Interface;
use sockbox::wol::hosts::Host;
use sockbox::wol::send::Binding;
use sockbox::wol::{self, Job, Repeat, SendConfig, SendEvent, ToSpec, plan};
use sockbox_wire::hexdump;
use sockbox_wire::magic::{DEFAULT_PORT, Password};

use crate::cmd::runtime;
use crate::exit::{PARTIAL, SUCCESS, usage};
use crate::output::json_line;
use targets::Targets;

const AFTER_HELP: &str = "\
By default the packet goes to the directed broadcast address of every up, non-loopback IPv4
interface, each socket bound to its interface, so machines with several NICs work without a
default route. --to, --ipv6 and --raw replace that default, and so does the ADDR on a -f FILE
line for that host; add -b/--broadcast to keep it too. (The `addr` of a host in hosts.toml is
sent to as well as the broadcast.) A bad MAC address, unknown name or bad line of a -f FILE is
reported and skipped; the others are still woken.

Examples:
  sockbox wake 00:11:22:33:44:55                 every interface's broadcast, UDP port 9
  sockbox wake -n 00:11:22:33:44:55              show where it would go and the packet
  sockbox wake --iface eth1 -p 7 0011.2233.4455  one interface, port 7
  sockbox wake --to home.example.org:2050 AA-BB-CC-DD-EE-FF   WAN (router port forward)
  sockbox wake --raw eth0 00:11:22:33:44:55      Ethernet 0x0842 frame, like etherwake
  sockbox wake --ipv6 00:11:22:33:44:55          ff02::1 on every interface
  sockbox wake --password 192.168.1.1 00:11:22:33:44:55    SecureOn
  sockbox wake -f ~/hosts.txt                    every host in a file: MAC [ADDR[:PORT]] [name]
  sockbox wake nas --wait                        a host from ~/.config/sockbox/hosts.toml,
                                                 then ping it until it is up
  sockbox wake listen --port 9 --raw eth0        on the other machine: prove it arrives

Exit codes: 0 sent (and, with --wait, the hosts answered); 1 some sends failed, some targets or
hosts-file lines were invalid (the others were sent), or --wait timed out; 2 no valid target,
bad file, interface or option, or no interface to broadcast on; 3 system failure.";

/// Arguments of `sockbox wake`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// `listen`, or nothing to send.
    #[command(subcommand)]
    pub command: Option<WakeCommand>,
    /// What to send, and where.
    #[command(flatten)]
    pub send: Box<SendArgs>,
}

/// Subcommands of `sockbox wake`.
#[derive(Debug, clap::Subcommand)]
pub enum WakeCommand {
    /// Receive magic packets (UDP and raw 0x0842) and print whom they are for.
    Listen(Box<listen::Args>),
}

/// Options for sending.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// MAC addresses (00:11:22:33:44:55, 00-11-…, 001122334455, 0011.2233.4455,
    /// 001122-334455) or names of hosts from -f FILE or hosts.toml.
    #[arg(value_name = "MAC|NAME")]
    pub targets: Vec<String>,
    /// Send to this address instead: unicast, a subnet's broadcast, or a WAN address or host
    /// name (port forwarding). Repeatable. 255.255.255.255 goes out on every interface.
    #[arg(short = 'i', long = "to", value_name = "ADDR[:PORT]")]
    pub to: Vec<String>,
    /// UDP port [default: 9, or the host's port from the hosts file]. 7 and 9 are usual.
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Only use this interface (repeatable).
    #[arg(long, value_name = "NAME")]
    pub iface: Vec<String>,
    /// Also send to every interface's broadcast when --to, --ipv6 or --raw is given.
    #[arg(short, long)]
    pub broadcast: bool,
    /// Send to ff02::1 (all nodes) on every interface with IPv6.
    #[arg(long)]
    pub ipv6: bool,
    /// Send a raw Ethernet frame (ethertype 0x0842) on this interface, like etherwake
    /// (needs root or CAP_NET_RAW). Repeatable.
    #[arg(long, value_name = "IFACE")]
    pub raw: Vec<String>,
    /// Address raw frames to the target's MAC instead of ff:ff:ff:ff:ff:ff.
    #[arg(long, requires = "raw")]
    pub raw_unicast: bool,
    /// SecureOn password: 4 bytes dotted (192.168.1.1) or 6 bytes hex (00:11:22:33:44:55).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Hosts file, lines `MAC [ADDR[:PORT]] [name]`, `#` comments; a line's ADDR replaces the
    /// broadcast, as --to does. Without targets, wakes every host in it.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Named hosts [default: ~/.config/sockbox/hosts.toml].
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Print where each packet would go and a hexdump of it; send nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Send this many times.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Pause between repeats.
    #[arg(long, default_value = "100ms", value_parser = crate::input::duration)]
    pub delay: Duration,
    /// Then ping each host until it answers, for at most TIMEOUT (default 2m).
    #[arg(
        long,
        value_name = "TIMEOUT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "2m",
        value_parser = crate::input::duration
    )]
    pub wait: Option<Duration>,
    /// Address to ping for --wait [default: the host's address from the file].
    #[arg(long, value_name = "ADDR", requires = "wait")]
    pub wait_addr: Option<String>,
    /// One JSON object per packet sent (or planned) per line.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors (a dry run prints nothing either).
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
}

/// Run `sockbox wake` or `sockbox wake listen`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    match &a.command {
        Some(WakeCommand::Listen(l)) => listen::run(l),
        None => run_send(&a.send),
    }
}

/// A library error as the right kind of CLI error (exit 2 or 3), with the
/// flags that avoid it.
pub(crate) fn lib_err(e: wol::Error) -> anyhow::Error {
    let hint = match &e {
        wol::Error::InterfaceDown { .. } => ", or pick another with --iface".to_owned(),
        wol::Error::NoBroadcastOn { name } => format!(" (--to ADDR, --ipv6 or --raw {name})"),
        wol::Error::NoBroadcastInterface => " with --to ADDR[:PORT]".to_owned(),
        wol::Error::NoIpv6Interface => "; --ipv6 needs one".to_owned(),
        _ => String::new(),
    };
    match (e.is_usage(), hint.is_empty()) {
        (true, _) => usage(format!("{e}{hint}")),
        (false, true) => anyhow::Error::new(e),
        (false, false) => anyhow::anyhow!("{e}{hint}"),
    }
}

async fn build_jobs(
    a: &SendArgs,
    hosts: Vec<Host>,
    password: Option<Password>,
    to: &[ToSpec],
    all: &[Interface],
) -> anyhow::Result<Vec<Job>> {
    let explicit = !to.is_empty() || a.ipv6 || !a.raw.is_empty();
    let mut jobs = Vec::new();
    for host in hosts {
        let port = a.port.or(host.port).unwrap_or(DEFAULT_PORT);
        let mut dests: Vec<SocketAddr> = Vec::new();
        for spec in to.iter().chain(host.addr.as_ref()) {
            dests.push(spec.resolve(port).await.map_err(lib_err)?);
        }
        // A hosts-file line's address replaces the broadcast, as --to does.
        let own = host.addr.is_some() && host.addr_only;
        let cfg = SendConfig {
            broadcast: a.broadcast || !(explicit || own),
            to: dests,
            ipv6: a.ipv6,
            raw: a.raw.clone(),
            raw_unicast: a.raw_unicast,
            ifaces: if a.iface.is_empty() {
                host.iface.iter().cloned().collect()
            } else {
                a.iface.clone()
            },
            port,
        };
        let plan = plan::plan(&cfg, host.mac, all).map_err(lib_err)?;
        jobs.push(Job::new(host, password, plan));
    }
    Ok(jobs)
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    event: &'a str,
    mac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    route: &'a wol::Route,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<Binding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn print_dry_run(a: &SendArgs, jobs: &[Job]) -> anyhow::Result<()> {
    if a.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for j in jobs {
        if a.json {
            for r in &j.plan.routes {
                json_line(
                    &mut out,
                    &JsonEvent {
                        event: "plan",
                        mac: j.host.mac.to_string(),
                        name: j.host.name.as_deref(),
                        route: r,
                        bytes: j.packet.len(),
                        binding: None,
                        packet: Some(crate::output::hex(&j.packet)),
                        error: None,
                    },
                )?;
            }
            continue;
        }
        writeln!(
            out,
            "would wake {} with {} bytes{}, {}:",
            j.host.label(),
            j.packet.len(),
            if j.packet.len() > 102 {
                " (SecureOn)"
            } else {
                ""
            },
            if a.count == 1 {
                "once".to_owned()
            } else {
                format!(
                    "{} times {} apart",
                    a.count,
                    humantime::format_duration(a.delay)
                )
            }
        )?;
        for r in &j.plan.routes {
            writeln!(out, "  {r}")?;
        }
        for (name, why) in &j.plan.skipped {
            writeln!(out, "  (skipped {name}: {why})")?;
        }
        out.write_all(&hexdump::dump(&j.packet))?;
    }
    out.flush()?;
    Ok(())
}

fn describe_binding(b: Binding) -> &'static str {
    match b {
        Binding::Device | Binding::Routed => "",
        Binding::SourceAddress => " (bound by source address: SO_BINDTODEVICE not permitted)",
    }
}

/// Prints each packet as the library sends it: a line on standard output
/// (or a JSON object), failures on standard error when more than one
/// packet was planned (a single one's error is the command's error).
struct Show {
    json: bool,
    quiet: bool,
    count: u32,
    planned: usize,
    /// `(label, mac, name)` per job.
    who: Vec<(String, String, Option<String>)>,
    /// The first failed write to standard output; it stops the rounds.
    failed: Mutex<Option<anyhow::Error>>,
    stop: Shutdown,
}

impl Show {
    fn new(a: &SendArgs, jobs: &[Job], stop: &Shutdown) -> Self {
        let per_round: usize = jobs.iter().map(|j| j.plan.routes.len()).sum();
        Self {
            json: a.json,
            quiet: a.quiet,
            count: a.count,
            planned: per_round * a.count as usize,
            who: jobs
                .iter()
                .map(|j| (j.host.label(), j.host.mac.to_string(), j.host.name.clone()))
                .collect(),
            failed: Mutex::new(None),
            stop: stop.clone(),
        }
    }

    fn event(&self, ev: &SendEvent) {
        let (round, job) = match ev {
            SendEvent::Sent { round, job, .. } | SendEvent::Failed { round, job, .. } => {
                (*round, *job)
            }
            _ => return,
        };
        let Some((label, mac, name)) = self.who.get(job) else {
            return;
        };
        let tag = if self.count > 1 {
            format!("[{round}/{}] ", self.count)
        } else {
            String::new()
        };
        if let SendEvent::Failed { error, .. } = ev
            && self.planned > 1
        {
            crate::output::errln!("sockbox: {tag}{label}: {error}");
        }
        if let Err(e) = self.print(ev, &tag, label, mac, name.as_deref()) {
            self.failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(e);
            self.stop.trigger();
        }
    }

    fn print(
        &self,
        ev: &SendEvent,
        tag: &str,
        label: &str,
        mac: &str,
        name: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        match ev {
            SendEvent::Sent { sent, .. } if self.json => json_line(
                &mut out,
                &JsonEvent {
                    event: "sent",
                    mac: mac.to_owned(),
                    name,
                    route: &sent.route,
                    bytes: sent.bytes,
                    binding: Some(sent.binding),
                    packet: None,
                    error: None,
                },
            ),
            SendEvent::Sent { sent, .. } if !self.quiet => {
                writeln!(
                    out,
                    "{tag}sent {label} to {}{}",
                    sent.route,
                    describe_binding(sent.binding)
                )?;
                Ok(out.flush()?)
            }
            SendEvent::Failed { route, error, .. } if self.json => json_line(
                &mut out,
                &JsonEvent {
                    event: "error",
                    mac: mac.to_owned(),
                    name,
                    route,
                    bytes: 0,
                    binding: None,
                    packet: None,
                    error: Some(error.to_string()),
                },
            ),
            _ => Ok(()),
        }
    }
}

/// Send every job `--count` times through the library, printing as it goes.
async fn send_jobs(
    a: &SendArgs,
    jobs: &[Job],
    shutdown: &Shutdown,
) -> anyhow::Result<wol::SendReport> {
    let show = Arc::new(Show::new(a, jobs, shutdown));
    let shown = show.clone();
    let repeat = Repeat {
        count: a.count,
        delay: a.delay,
        events: Arc::new(move |e: &SendEvent| shown.event(e)),
    };
    let report = wol::send_all(jobs, &repeat, shutdown).await;
    let failed = show
        .failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn run_send(a: &SendArgs) -> anyhow::Result<u8> {
    // Stage 1: validate everything without touching the network.
    let password = a
        .password
        .as_deref()
        .map(str::parse::<Password>)
        .transpose()
        .map_err(|e| usage(e.to_string()))?;
    let to: Vec<ToSpec> =
        a.to.iter()
            .map(|s| s.parse::<ToSpec>().map_err(lib_err))
            .collect::<anyhow::Result<_>>()?;
    let wait_addr = a
        .wait_addr
        .as_deref()
        .map(|s| s.parse::<ToSpec>().map_err(lib_err))
        .transpose()?;
    let Targets { hosts, bad } = targets::hosts_to_wake(a)?;
    let some_bad = targets::report_bad(&hosts, bad)?;
    let all = sockbox::iface::list()?;

    runtime::block_on(async move {
        let jobs = build_jobs(a, hosts, password, &to, &all).await?;
        // Know what --wait will ping before sending anything.
        let wait_targets = match a.wait {
            Some(_) => {
                let hosts: Vec<&Host> = jobs.iter().map(|j| &j.host).collect();
                wait::targets(&hosts, wait_addr.as_ref(), &all).await?
            }
            None => Vec::new(),
        };
        let partial = if some_bad { PARTIAL } else { SUCCESS };
        if a.dry_run {
            print_dry_run(a, &jobs)?;
            return Ok(partial);
        }
        let shutdown = Shutdown::new();
        runtime::shutdown_on_signals(&shutdown)?;
        let report = send_jobs(a, &jobs, &shutdown).await?;
        if report.sent == 0
            && let Some(e) = report.first_error
        {
            if report.failed == 1 {
                return Err(lib_err(e));
            }
            return Err(anyhow::anyhow!(
                "none of the {} sends succeeded (errors above)",
                report.failed
            ));
        }
        let mut code = if report.failed > 0 { PARTIAL } else { partial };
        if let Some(timeout) = a.wait
            && !wait::wait_all(&wait_targets, timeout, a.quiet, &shutdown).await?
        {
            code = PARTIAL;
        }
        Ok(code)
    })?
}
