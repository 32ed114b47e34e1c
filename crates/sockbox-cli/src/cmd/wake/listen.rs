//! `sockbox wake listen`: receive magic packets on UDP (and raw 0x0842
//! frames), print when, from where, for which MAC, and any SecureOn password.

use std::fmt::Write as _;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use sockbox::Shutdown;
use sockbox::wol::{
    self,
    listen::{ListenConfig, Listener, Received, Source},
};
use sockbox_wire::magic::DEFAULT_PORT;

use super::lib_err;
use crate::cmd::serve::{DaemonArgs, SIGNALS_HELP, serve_with};
use crate::exit::SUCCESS;
use crate::output::json_line;

const LISTEN_HELP: &str = "\
Prints one line per magic packet on standard output, found anywhere in a datagram or
frame, as NICs do. Other datagrams are counted (and shown with -v) but otherwise ignored.
Runs until Ctrl-C or --count magic packets. Where it listens, and the counts at the end,
are log lines on standard error (or --log-file, where a daemon also logs each packet).

Examples:
  sockbox wake listen                           UDP port 9, IPv4 and IPv6 (needs root for port 9)
  sockbox wake listen -p 40009 --count 1        a high port, stop after the first packet
  sockbox wake listen --raw eth0 --json         UDP and raw 0x0842 frames on eth0, JSON lines
  sockbox wake listen --daemon --log-file /var/log/wol.log --user nobody

Exit codes: 0 stopped by Ctrl-C or --count; 2 bad option or interface; 3 cannot bind.";

/// Arguments of `sockbox wake listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{LISTEN_HELP}\n{SIGNALS_HELP}"))]
pub struct Args {
    /// UDP port to listen on.
    #[arg(short, long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Listen on this address only [default: all IPv4 and IPv6 addresses].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Also receive raw Ethernet frames (ethertype 0x0842) on this interface (needs root
    /// or CAP_NET_RAW). Repeatable.
    #[arg(long, value_name = "IFACE")]
    pub raw: Vec<String>,
    /// Do not listen on UDP (raw frames only).
    #[arg(long, requires = "raw")]
    pub no_udp: bool,
    /// Stop after this many magic packets.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Also print datagrams that hold no magic packet.
    #[arg(short, long)]
    pub verbose: bool,
    /// Daemon options.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    time: String,
    transport: &'a str,
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    iface: Option<&'a str>,
    magic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
}

fn to_json(ev: &Received) -> JsonEvent<'_> {
    let (transport, from, iface) = match &ev.source {
        Source::Udp(a) => ("udp", a.to_string(), None),
        Source::Raw { iface, mac } => ("raw", mac.to_string(), Some(iface.as_str())),
    };
    JsonEvent {
        time: humantime::format_rfc3339_millis(ev.time).to_string(),
        transport,
        from,
        iface,
        magic: ev.found.is_some(),
        mac: ev.found.map(|f| f.repr.mac.to_string()),
        password: ev
            .found
            .and_then(|f| f.repr.password)
            .map(|p| p.to_string()),
        len: ev.len,
        offset: ev.found.map(|f| f.offset),
    }
}

fn human(ev: &Received) -> String {
    let time = humantime::format_rfc3339_millis(ev.time);
    let kind = match ev.source {
        Source::Udp(_) => "udp",
        Source::Raw { .. } => "raw",
    };
    match ev.found {
        Some(f) => {
            let mut s = format!("{time}  {kind} from {}  wake {}", ev.source, f.repr.mac);
            if let Some(p) = f.repr.password {
                let _ = write!(s, "  SecureOn {p}");
            }
            s
        }
        None => format!(
            "{time}  {kind} from {}  {} bytes, no magic packet (ignored)",
            ev.source, ev.len
        ),
    }
}

/// How received packets are shown: a line each on standard output (magic
/// packets, and with -v the others), and for a daemon a log line each.
struct Show {
    json: bool,
    verbose: bool,
    log_packets: bool,
    out: Mutex<std::io::Stdout>,
    /// The first failed write to standard output; it stops the listener.
    failed: Mutex<Option<anyhow::Error>>,
    stop: Shutdown,
}

impl Show {
    fn received(&self, ev: &Received) {
        if let Some(f) = ev.found {
            if self.log_packets {
                tracing::info!(
                    mac = %f.repr.mac,
                    from = %ev.source,
                    secureon = f.repr.password.is_some(),
                    "magic packet"
                );
            } else {
                tracing::debug!(mac = %f.repr.mac, from = %ev.source, "magic packet");
            }
        }
        if ev.found.is_none() && !self.verbose {
            return;
        }
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_some() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let written = if self.json {
            json_line(&mut *out, &to_json(ev))
        } else {
            writeln!(out, "{}", human(ev))
                .and_then(|()| out.flush())
                .map_err(anyhow::Error::from)
        };
        if let Err(e) = written {
            *failed = Some(e);
            self.stop.trigger();
        }
    }
}

/// The library's error, with the flags that avoid it.
fn listen_err(e: wol::Error) -> anyhow::Error {
    let hint = match &e {
        wol::Error::Bind(b) if b.in_use() => {
            format!(
                "; `ss -ulpn` shows which socket holds port {}",
                b.addr.port()
            )
        }
        wol::Error::Bind(b)
            if b.addr.port() < 1024
                && matches!(b.source.raw_os_error(), Some(libc::EACCES | libc::EPERM)) =>
        {
            "; run as root, `sudo setcap cap_net_bind_service+ep $(command -v sockbox)`, or \
             listen on a high port (--port 40009) and send with -p 40009"
                .to_owned()
        }
        wol::Error::Bind(b) if b.not_local() => {
            "; --bind takes an address of this machine (`sockbox ifaces` lists them)".to_owned()
        }
        _ => return lib_err(e),
    };
    anyhow::anyhow!("{e}{hint}")
}

/// Run `sockbox wake listen`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let udp = (!a.no_udp)
        .then(|| SocketAddr::new(a.bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), a.port));
    // A daemon's standard output goes nowhere: there each magic packet is
    // logged too (at debug level otherwise, so it does not repeat the line
    // standard output already shows).
    let log_packets = a.daemon.daemon || a.daemon.log_file.is_some();
    serve_with(&a.daemon, tracing::Level::INFO, |mut ctx| async move {
        let stop = ctx.shutdown.child();
        let show = Arc::new(Show {
            json: a.json,
            verbose: a.verbose,
            log_packets,
            out: Mutex::new(std::io::stdout()),
            failed: Mutex::new(None),
            stop: stop.clone(),
        });
        let shown = show.clone();
        let mut cfg = ListenConfig::new(a.port);
        cfg.udp = udp;
        cfg.raw.clone_from(&a.raw);
        cfg.count = a.count;
        cfg.events = Arc::new(move |ev: &Received| shown.received(ev));
        cfg.server.stats = ctx.stats.clone();
        cfg.server.grace = ctx.grace;
        let listener = Listener::bind(cfg).map_err(listen_err)?;
        let mut what = Vec::new();
        if let Some(addr) = listener.local_addr() {
            what.push(format!("udp {}", sockbox::net::canonical(addr)));
        }
        what.extend(a.raw.iter().map(|r| format!("raw 0x0842 on {r}")));
        tracing::info!("listening for magic packets on {}", what.join(" and "));
        ctx.ready()?;

        let report = listener.run(stop).await.map_err(lib_err)?;
        tracing::info!(
            "{} magic packet{}, {} other datagram{} ignored",
            report.magic,
            if report.magic == 1 { "" } else { "s" },
            report.other,
            if report.other == 1 { "" } else { "s" }
        );
        let failed = show
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failed {
            Some(e) => Err(e),
            None => Ok(SUCCESS),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockbox_wire::mac::MacAddr;
    use sockbox_wire::magic::{Found, Password, Repr};
    use std::time::{Duration, UNIX_EPOCH};

    fn ev(found: Option<Found>, source: Source) -> Received {
        Received {
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            source,
            len: 106,
            found,
        }
    }

    #[test]
    fn human_and_json_lines() {
        let f = Found {
            offset: 0,
            repr: Repr {
                mac: MacAddr([0, 0x11, 0x22, 0x33, 0x44, 0x55]),
                password: Some(Password::Four([1, 2, 3, 4])),
            },
            trailing: 4,
        };
        let e = ev(Some(f), Source::Udp("10.0.0.1:4000".parse().unwrap()));
        assert_eq!(
            human(&e),
            "2023-11-14T22:13:20.123Z  udp from 10.0.0.1:4000  wake 00:11:22:33:44:55  SecureOn 1.2.3.4"
        );
        assert_eq!(
            serde_json::to_string(&to_json(&e)).unwrap(),
            r#"{"time":"2023-11-14T22:13:20.123Z","transport":"udp","from":"10.0.0.1:4000","magic":true,"mac":"00:11:22:33:44:55","password":"1.2.3.4","len":106,"offset":0}"#
        );
        let raw = ev(
            None,
            Source::Raw {
                iface: "eth0".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
            },
        );
        assert_eq!(
            human(&raw),
            "2023-11-14T22:13:20.123Z  raw from 02:00:00:00:00:01 on eth0  106 bytes, no magic packet (ignored)"
        );
    }
}
