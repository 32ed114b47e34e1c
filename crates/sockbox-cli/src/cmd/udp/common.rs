//! Pieces shared by `udp send/listen` and `mcast send/listen`: port and
//! address parsing, the message to send, printing the replies of the
//! library's send-and-collect run, and the flag hints for its errors.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sockbox::Shutdown;
use sockbox::event::Events;
use sockbox::udp::{self, Collect, Exchange, ExchangeEvent, Payloads, Sender};
use tokio::io::AsyncReadExt;

use super::print::{Printer, ReplyLine};
use crate::exit::{self, usage};

/// Errors from the library, with the flag that fixes them where there is
/// one: the user's input exits 2, the system's 3.
pub fn lib_err(e: udp::Error) -> anyhow::Error {
    let text = format!("{e}{}", flag_hint(&e));
    if e.is_input() {
        usage(text)
    } else if text.len() > e.to_string().len() {
        anyhow::anyhow!(text)
    } else {
        anyhow::Error::new(e)
    }
}

/// The command-line spelling of the library's advice.
fn flag_hint(e: &udp::Error) -> &'static str {
    use udp::Error as E;
    match e {
        E::IfaceDown { .. } => ", or pick another with --iface",
        E::NoBroadcastOn { .. } => {
            ": send to an address instead of `broadcast`, or pick another --iface"
        }
        E::NoBroadcastInterface => {
            "; give an address such as 255.255.255.255 instead of `broadcast`"
        }
        E::Send(_, to) => match e.os_error() {
            Some(libc::EACCES) => "; pass --broadcast to set SO_BROADCAST",
            Some(libc::ENETUNREACH) if to.ip().is_multicast() => {
                "; choose the interface with --iface"
            }
            Some(libc::ENETUNREACH) if to.ip() == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) => {
                "; ADDR `broadcast` does that"
            }
            _ => "",
        },
        E::Join { .. } if e.os_error() == Some(libc::ENODEV) => "; choose another with --iface",
        E::TooLarge { .. } => " (`sockbox connect` is a TCP stream)",
        _ => "",
    }
}

/// A destination port: 1-65535.
pub fn parse_port(s: &str) -> Result<u16, String> {
    parse_port_in(s, 1)
}

/// A port to listen on: 0 (any free port) to 65535.
pub fn parse_listen_port(s: &str) -> Result<u16, String> {
    parse_port_in(s, 0)
}

fn parse_port_in(s: &str, min: u32) -> Result<u16, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("port {s:?} is not a number; ports are {min}-65535"))?;
    if n < u64::from(min) || n > 65_535 {
        return Err(format!("port {n} is out of range; ports are {min}-65535"));
    }
    Ok(n as u16)
}

/// An IP address, IPv6 optionally with a `%scope` (interface name or index).
pub fn parse_ip_scoped(s: &str, port: u16) -> anyhow::Result<Option<SocketAddr>> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let (ip, scope) = match s.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (s, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return Ok(None);
    };
    match (ip, scope) {
        (ip, None) => Ok(Some(SocketAddr::new(ip, port))),
        (IpAddr::V6(v6), Some(scope)) => {
            let index = match scope.parse::<u32>() {
                Ok(n) => n,
                Err(_) => nix::net::if_::if_nametoindex(scope).map_err(|_| {
                    usage(format!(
                        "{s}: no interface named {scope:?} (`sockbox ifaces` lists them)"
                    ))
                })?,
            };
            Ok(Some(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))))
        }
        (IpAddr::V4(_), Some(_)) => Err(usage(format!(
            "{s}: a %scope is only meaningful on IPv6 addresses"
        ))),
    }
}

/// Resolve a host name or address to the addresses of one family.
pub async fn resolve(host: &str, port: u16, v4: bool, v6: bool) -> anyhow::Result<SocketAddr> {
    if let Some(a) = parse_ip_scoped(host, port)? {
        if (v4 && !a.is_ipv4()) || (v6 && !a.is_ipv6()) {
            return Err(usage(format!(
                "{host} is not an {} address",
                if v4 { "IPv4" } else { "IPv6" }
            )));
        }
        return Ok(a);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| usage(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    found
        .into_iter()
        .find(|a| (!v4 || a.is_ipv4()) && (!v6 || a.is_ipv6()))
        .ok_or_else(|| usage(format!("host {host:?} has no address of the asked family")))
}

/// What to send: MESSAGE as text or hex, or standard input whole or by line.
#[derive(Debug, Clone, clap::Args)]
pub struct MessageArgs {
    /// The datagram: text, or `-` (or nothing) to read standard input.
    #[arg(value_name = "MESSAGE|-")]
    pub message: Option<String>,
    /// MESSAGE is hex bytes (`de ad be ef`, `de:ad:be:ef`, `0xdeadbeef`).
    #[arg(long)]
    pub hex: bool,
    /// Send one datagram per line of standard input (newline removed).
    #[arg(long, conflicts_with = "hex")]
    pub lines: bool,
}

impl MessageArgs {
    fn reads_stdin(&self) -> bool {
        self.message.as_deref().is_none_or(|m| m == "-")
    }
}

/// When to stop collecting replies.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Replies")]
pub struct CollectArgs {
    /// Collect replies for this long after the last datagram is sent (`500ms`, `2s`).
    #[arg(short, long, value_name = "DURATION", value_parser = crate::input::duration)]
    pub wait: Option<Duration>,
    /// Stop after this many replies (waits at most 3s unless --wait is given).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub replies: Option<u64>,
}

/// Default wait when only --replies is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

impl CollectArgs {
    /// The bounds, with the default wait filled in.
    pub fn bounds(&self) -> (Option<Duration>, Option<usize>) {
        let max = self
            .replies
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let wait = self.wait.or(max.map(|_| DEFAULT_WAIT));
        (wait, max)
    }
}

/// How to print datagrams.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Show payloads as a `hexdump -C` dump instead of text.
    #[arg(short = 'x', long)]
    pub hexdump: bool,
    /// One JSON object per datagram per line (payload as "text" when UTF-8, always as "hex").
    #[arg(long, conflicts_with = "hexdump")]
    pub json: bool,
}

/// Read the message (non-`--lines` forms).
async fn read_message(m: &MessageArgs, max: usize) -> anyhow::Result<Vec<u8>> {
    let bytes = match m.message.as_deref() {
        Some(text) if text != "-" => {
            if m.hex {
                crate::input::parse_hex(text)?
            } else {
                text.as_bytes().to_vec()
            }
        }
        _ => {
            let mut buf = Vec::new();
            tokio::io::stdin()
                .take(max as u64 + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            if m.hex {
                crate::input::parse_hex(&String::from_utf8_lossy(&buf))?
            } else {
                buf
            }
        }
    };
    check_size(bytes.len(), max)?;
    Ok(bytes)
}

pub(crate) fn check_size(len: usize, max: usize) -> anyhow::Result<()> {
    if len > max {
        return Err(usage(format!(
            "the message is over the UDP datagram limit: {}{len} bytes, at most {max} fit in one \
             datagram; send less (or one datagram per line with --lines)",
            if len == max + 1 { "at least " } else { "" }
        )));
    }
    Ok(())
}

/// The size error for one line of `--lines`.
fn line_too_large(len: usize, max: usize) -> anyhow::Error {
    usage(format!(
        "a line is over the UDP datagram limit: {len} bytes, at most {max} fit in one \
         datagram; send shorter lines"
    ))
}

/// Send the message (once, or per stdin line) and collect replies; returns
/// the exit code: 1 when replies were wanted and none came, or when a
/// unicast destination answered with an ICMP error (port unreachable…),
/// which ends the wait at once.
pub async fn send_and_collect(
    sender: Sender,
    msg: &MessageArgs,
    collect: &CollectArgs,
    out: &OutputArgs,
) -> anyhow::Result<u8> {
    let shutdown = Shutdown::new();
    crate::cmd::runtime::shutdown_on_signals(&shutdown)?;
    let (wait, max) = collect.bounds();
    if msg.lines && !msg.reads_stdin() {
        return Err(usage(
            "--lines sends one datagram per line of standard input: give `-` or no MESSAGE",
        ));
    }
    let payloads = if msg.lines {
        Payloads::Lines(Box::new(tokio::io::stdin()))
    } else {
        Payloads::One(read_message(msg, sender.max_payload()).await?)
    };
    let (events, failed) = print_replies(out, &shutdown);
    let ex = Exchange {
        payloads,
        collect: Collect { wait, max },
        events,
    };
    let result = sender.exchange(ex, &shutdown).await;
    if let Some(e) = failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
        return Err(e);
    }
    match result {
        Ok(r) => Ok(exit_for(r.collected, r.replies, wait)),
        Err(u @ udp::Error::Unreachable { .. }) => {
            crate::output::errln!("sockbox: udp send: {u}");
            Ok(exit::PARTIAL)
        }
        Err(udp::Error::TooLarge { len, max, .. }) if msg.lines => Err(line_too_large(len, max)),
        Err(udp::Error::Input(e)) => Err(usage(format!("cannot read standard input: {e}"))),
        Err(e) => Err(lib_err(e)),
    }
}

/// Replies print on standard output as they come; a destination that
/// refused a datagram others took is a warning. A failed write stops the
/// exchange and is kept for the caller.
fn print_replies(
    out: &OutputArgs,
    stop: &Shutdown,
) -> (Events<ExchangeEvent>, Arc<Mutex<Option<anyhow::Error>>>) {
    let failed = Arc::new(Mutex::new(None));
    let printer = Mutex::new(Printer::new(out.hexdump, out.json));
    let (keep, stop) = (failed.clone(), stop.clone());
    let events: Events<ExchangeEvent> = Arc::new(move |e: &ExchangeEvent| match e {
        ExchangeEvent::Reply(r) => {
            let mut p = printer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(err) = p.reply(&ReplyLine::from(r)) {
                keep.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(err);
                stop.trigger();
            }
        }
        ExchangeEvent::SendFailed(err) => {
            let text = format!("{err}{}", flag_hint(err));
            crate::output::errln!("sockbox: warning: {text}");
        }
        _ => {}
    });
    (events, failed)
}

fn exit_for(collecting: bool, got: usize, wait: Option<Duration>) -> u8 {
    if collecting && got == 0 {
        match wait {
            Some(w) => {
                crate::output::errln!("sockbox: no reply within {}", humantime::format_duration(w));
            }
            None => crate::output::errln!("sockbox: no reply"),
        }
        exit::PARTIAL
    } else {
        exit::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("9"), Ok(9));
        assert!(parse_port("0").unwrap_err().contains("1-65535"));
        assert!(parse_port("70000").unwrap_err().contains("out of range"));
        assert!(parse_port("http").unwrap_err().contains("not a number"));
        assert_eq!(parse_listen_port("0"), Ok(0));
    }

    #[test]
    fn scoped_addresses() {
        let a = parse_ip_scoped("fe80::1%1", 9).unwrap().unwrap();
        assert_eq!(a, "[fe80::1%1]:9".parse().unwrap());
        let lo = parse_ip_scoped("fe80::1%lo", 9).unwrap().unwrap();
        assert!(matches!(lo, SocketAddr::V6(v) if v.scope_id() > 0));
        assert!(parse_ip_scoped("10.0.0.1%lo", 9).is_err());
        assert!(parse_ip_scoped("example.org", 9).unwrap().is_none());
    }

    #[test]
    fn replies_alone_wait_three_seconds() {
        let c = CollectArgs {
            wait: None,
            replies: Some(2),
        };
        assert_eq!(c.bounds(), (Some(DEFAULT_WAIT), Some(2)));
        let c = CollectArgs {
            wait: None,
            replies: None,
        };
        assert_eq!(c.bounds(), (None, None));
    }
}
