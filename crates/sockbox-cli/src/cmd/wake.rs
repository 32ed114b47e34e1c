//! `sockbox wake`: send Wake-on-LAN magic packets on every interface (or
//! where told), and `sockbox wake listen` to see them arrive.

mod listen;
mod wait;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sockbox::Shutdown;
use sockbox::iface::Interface;
use sockbox::wol::hosts::{self, Host};
use sockbox::wol::send::{Binding, send};
use sockbox::wol::{self, Plan, SendConfig, ToSpec, plan};
use sockbox_wire::hexdump;
use sockbox_wire::magic::{DEFAULT_PORT, Password, Repr};

use crate::cmd::runtime;
use crate::exit::{PARTIAL, SUCCESS, usage};
use crate::output::json_line;

const AFTER_HELP: &str = "\
By default the packet goes to the directed broadcast address of every up, non-loopback IPv4
interface, each socket bound to its interface, so machines with several NICs work without a
default route. --to, --ipv6 and --raw replace that default; add -b/--broadcast to keep it too.

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

Exit codes: 0 sent (and, with --wait, the hosts answered); 1 some sends failed or --wait timed
out; 2 bad MAC, file, interface or option, or no interface to broadcast on; 3 system failure.";

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
    /// MAC addresses (00:11:22:33:44:55, 00-11-…, 001122334455, 0011.2233.4455) or names
    /// of hosts from -f FILE or hosts.toml.
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
    /// Hosts file, lines `MAC [ADDR[:PORT]] [name]`, `#` comments. Without targets, wakes
    /// every host in it.
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
    /// Print nothing but errors.
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

/// A library error as the right kind of CLI error (exit 2 or 3).
pub(crate) fn lib_err(e: wol::Error) -> anyhow::Error {
    if e.is_usage() {
        usage(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

/// One host with its packet and routes.
struct Job {
    host: Host,
    packet: Vec<u8>,
    plan: Plan,
}

/// Resolve the targets from the command line and the hosts files.
fn hosts_to_wake(a: &SendArgs) -> anyhow::Result<Vec<Host>> {
    let mut searched = Vec::new();
    let file_hosts = match &a.file {
        Some(f) => {
            searched.push(f.display().to_string());
            hosts::read_hosts_file(f).map_err(lib_err)?
        }
        None => Vec::new(),
    };
    if a.targets.is_empty() {
        return match &a.file {
            Some(_) if !file_hosts.is_empty() => Ok(file_hosts),
            Some(f) => Err(usage(format!("hosts file {} lists no hosts", f.display()))),
            None => Err(usage(
                "give at least one MAC address or host name to wake (or -f FILE); \
                 `sockbox wake --help` shows examples",
            )),
        };
    }
    let mut known = file_hosts;
    let config = a.hosts.clone().or_else(hosts::default_config_path);
    if let Some(c) = &config {
        match hosts::read_hosts_toml(c, a.hosts.is_some()) {
            Ok(h) => {
                known.extend(h);
                searched.push(if c.exists() {
                    c.display().to_string()
                } else {
                    format!("{} (no such file)", c.display())
                });
            }
            // The default file being unreadable only matters for names.
            Err(wol::Error::HostsRead { source, .. }) if a.hosts.is_none() => {
                searched.push(format!("{} (unreadable: {source})", c.display()));
            }
            Err(e) => return Err(lib_err(e)),
        }
    }
    let searched = if searched.is_empty() {
        "no hosts file given".to_owned()
    } else {
        format!("looked in {}", searched.join(" and "))
    };
    a.targets
        .iter()
        .map(|t| {
            hosts::resolve_target(t, &known, &searched).map_err(|e| {
                // `--wait 2m` (no '='): clap gave the time to the targets.
                if matches!(e, wol::Error::UnknownHost { .. }) && crate::input::duration(t).is_ok()
                {
                    usage(format!(
                        "{t:?} is not a MAC address or host name; if it is the time for \
                         --wait, write --wait={t}"
                    ))
                } else {
                    lib_err(e)
                }
            })
        })
        .collect()
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
        let cfg = SendConfig {
            broadcast: a.broadcast || !explicit,
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
        let repr = Repr {
            mac: host.mac,
            password: password.or(host.password),
        };
        jobs.push(Job {
            packet: repr.to_bytes(),
            host,
            plan,
        });
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

fn print_dry_run(a: &SendArgs, jobs: &[Job]) -> anyhow::Result<u8> {
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
    Ok(SUCCESS)
}

fn describe_binding(b: Binding) -> &'static str {
    match b {
        Binding::Device | Binding::Routed => "",
        Binding::SourceAddress => " (bound by source address: SO_BINDTODEVICE not permitted)",
    }
}

async fn send_all(
    a: &SendArgs,
    jobs: &[Job],
    shutdown: &Shutdown,
) -> anyhow::Result<(usize, usize, Option<wol::Error>)> {
    let (mut ok, mut failed, mut first_err) = (0usize, 0usize, None);
    // With a single send planned, its error is the command's error: say it once.
    let planned = a.count as usize * jobs.iter().map(|j| j.plan.routes.len()).sum::<usize>();
    let mut out = std::io::stdout().lock();
    for round in 1..=a.count {
        if shutdown.is_triggered() {
            break;
        }
        if round > 1 {
            tokio::select! {
                () = tokio::time::sleep(a.delay) => {}
                () = shutdown.wait() => break,
            }
        }
        let tag = if a.count > 1 {
            format!("[{round}/{}] ", a.count)
        } else {
            String::new()
        };
        for j in jobs {
            for r in &j.plan.routes {
                match send(r, &j.packet).await {
                    Ok(s) => {
                        ok += 1;
                        if a.json {
                            json_line(
                                &mut out,
                                &JsonEvent {
                                    event: "sent",
                                    mac: j.host.mac.to_string(),
                                    name: j.host.name.as_deref(),
                                    route: r,
                                    bytes: s.bytes,
                                    binding: Some(s.binding),
                                    packet: None,
                                    error: None,
                                },
                            )?;
                        } else if !a.quiet {
                            writeln!(
                                out,
                                "{tag}sent {} to {r}{}",
                                j.host.label(),
                                describe_binding(s.binding)
                            )?;
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        if a.json {
                            json_line(
                                &mut out,
                                &JsonEvent {
                                    event: "error",
                                    mac: j.host.mac.to_string(),
                                    name: j.host.name.as_deref(),
                                    route: r,
                                    bytes: 0,
                                    binding: None,
                                    packet: None,
                                    error: Some(e.to_string()),
                                },
                            )?;
                        }
                        if planned > 1 {
                            crate::output::errln!("sockbox: {tag}{}: {e}", j.host.label());
                        }
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok((ok, failed, first_err))
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
    let hosts = hosts_to_wake(a)?;
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
        if a.dry_run {
            return print_dry_run(a, &jobs);
        }
        let shutdown = Shutdown::new();
        runtime::shutdown_on_signals(&shutdown)?;
        let (ok, failed, first_err) = send_all(a, &jobs, &shutdown).await?;
        if ok == 0
            && let Some(e) = first_err
        {
            if failed == 1 {
                return Err(lib_err(e));
            }
            return Err(anyhow::anyhow!(
                "none of the {failed} sends succeeded (errors above)"
            ));
        }
        let mut code = if failed > 0 { PARTIAL } else { SUCCESS };
        if let Some(timeout) = a.wait
            && !wait::wait_all(&wait_targets, timeout, a.quiet, &shutdown).await?
        {
            code = PARTIAL;
        }
        Ok(code)
    })?
}
