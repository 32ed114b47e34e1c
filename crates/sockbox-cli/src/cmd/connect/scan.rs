//! `sockbox connect -z HOST PORTS…`: nc's zero-I/O port check. Each port
//! that accepts a connection is printed on standard output as nc prints it
//! (`Connection to HOST PORT port [tcp/SERVICE] succeeded!`), in the order
//! given; with `-v` each refused or silent port is said on standard error.
//! Exit 0 when at least one port is open, 1 when none is. `-zU PATH` does
//! the same for a UNIX socket.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use sockbox::net::scan::{PortState, Probe, ScanProto, Scanner, parse_ports};
use sockbox::relay::client::connect_unix_datagram;

use crate::cmd::runtime;
use crate::exit::{PARTIAL, SUCCESS, usage};

/// What a port check needs from the command line.
pub struct ScanArgs<'a> {
    /// The host as typed (shown in the output).
    pub host: &'a str,
    /// Its addresses, in the order to try.
    pub ips: Vec<IpAddr>,
    /// The port lists as typed.
    pub ports: &'a [String],
    /// UDP instead of TCP.
    pub udp: bool,
    /// `-w`: per attempt.
    pub wait: Option<std::time::Duration>,
    /// `-s`: the local address to connect from.
    pub source: Option<IpAddr>,
    /// `-v`: say what is not open.
    pub verbose: bool,
}

/// Run the check; 0 if any port is open, 1 if none.
pub fn run(a: &ScanArgs<'_>) -> anyhow::Result<u8> {
    let mut ports = Vec::new();
    for list in a.ports {
        ports.extend(parse_ports(list).map_err(|e| usage(e.to_string()))?);
    }
    let mut scanner = Scanner::new().proto(if a.udp {
        ScanProto::Udp
    } else {
        ScanProto::Tcp
    });
    if let Some(w) = a.wait {
        scanner = scanner.timeout(w);
    }
    if let Some(s) = a.source {
        scanner = scanner.source(s);
    }
    let services = Services::load();
    let proto = if a.udp { "udp" } else { "tcp" };
    let out = std::io::stdout();
    let mut failed_write = None;
    let open = runtime::block_on(async {
        scanner
            .run(&a.ips, &ports, |p| {
                if failed_write.is_some() {
                    return;
                }
                if let Err(e) = show(a, &p, &services, proto, &mut out.lock()) {
                    failed_write = Some(e);
                }
            })
            .await
    })?;
    if let Some(e) = failed_write
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(anyhow::Error::new(e).context("writing the open ports"));
    }
    Ok(if open > 0 { SUCCESS } else { PARTIAL })
}

/// `-zU PATH`: connect to the UNIX socket (a datagram one with
/// `datagram`) and say whether it answered within `wait` (default 2 s: a
/// server whose backlog is full never accepts); exit 0 if so, 1 if not
/// (the reason on standard error with `verbose`).
pub fn unix(
    path: &Path,
    datagram: bool,
    wait: Option<Duration>,
    verbose: bool,
) -> anyhow::Result<u8> {
    let wait = wait.unwrap_or(Duration::from_secs(2));
    let (kind, tried) = if datagram {
        let tried = connect_unix_datagram(path, None).map_err(|e| e.to_string());
        ("unix datagram", tried.map(drop))
    } else {
        let connect =
            async { tokio::time::timeout(wait, tokio::net::UnixStream::connect(path)).await };
        let tried = match runtime::block_on(connect)? {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {}: {e}", path.display())),
            Err(_) => Err(format!(
                "{} did not accept within {} (-w)",
                path.display(),
                humantime::format_duration(wait)
            )),
        };
        ("unix", tried)
    };
    if let Err(why) = tried {
        if verbose {
            crate::output::errln!("sockbox: {why}");
        }
        return Ok(PARTIAL);
    }
    let line = format!("Connection to {} [{kind}] succeeded!\n", path.display());
    match std::io::stdout().lock().write_all(line.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the result"))
        }
        _ => Ok(SUCCESS),
    }
}

/// One port's line: the open ones on standard output, the others on
/// standard error with `-v`.
fn show(
    a: &ScanArgs<'_>,
    p: &Probe,
    services: &Services,
    proto: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let why = match &p.state {
        PortState::Open(addr) => {
            let shown = if a.host == addr.ip().to_string() {
                a.host.to_owned()
            } else {
                format!("{} ({})", a.host, addr.ip())
            };
            let name = services.name(p.port, proto).unwrap_or("*");
            return writeln!(
                out,
                "Connection to {shown} {} port [{proto}/{name}] succeeded!",
                p.port
            );
        }
        _ if !a.verbose => return Ok(()),
        PortState::Closed => "Connection refused".to_owned(),
        PortState::TimedOut => "timed out (-w)".to_owned(),
        PortState::Failed(e) => e.to_string(),
    };
    crate::output::errln!(
        "sockbox: connect to {} port {} ({proto}) failed: {why}",
        a.host,
        p.port
    );
    Ok(())
}

/// Service names by port and protocol, from `/etc/services` (nothing when
/// the file is missing).
struct Services(HashMap<(u16, String), String>);

impl Services {
    fn load() -> Self {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        Self(parse_services(&text))
    }

    fn name(&self, port: u16, proto: &str) -> Option<&str> {
        self.0.get(&(port, proto.to_owned())).map(String::as_str)
    }
}

/// `name port/proto [aliases] [# comment]` lines; the first name for a
/// port wins.
fn parse_services(text: &str) -> HashMap<(u16, String), String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(spec)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = spec.split_once('/') else {
            continue;
        };
        if let Ok(port) = port.parse::<u16>() {
            map.entry((port, proto.to_owned()))
                .or_insert_with(|| name.to_owned());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_lines() {
        let m = parse_services(
            "# comment\nssh\t\t22/tcp\t\t\t# SSH\nhttp 80/tcp www\nhttp-alt 80/tcp\n\
             domain 53/udp\nbroken\nx notaport/tcp\n",
        );
        assert_eq!(m.get(&(22, "tcp".into())).map(String::as_str), Some("ssh"));
        assert_eq!(m.get(&(80, "tcp".into())).map(String::as_str), Some("http"));
        assert_eq!(
            m.get(&(53, "udp".into())).map(String::as_str),
            Some("domain")
        );
        assert_eq!(m.len(), 3);
    }
}
