//! Hosts to wake: plain hosts files and named hosts in `hosts.toml`.
//!
//! A hosts file has one host per line, `#` starts a comment. A line's
//! address is where that host's packet goes instead of every interface's
//! broadcast (as in wakeonlan's files); a line that cannot be read is
//! reported and the others are kept:
//!
//! ```text
//! # MAC               [ADDR[:PORT]]         [name]
//! 00:11:22:33:44:55   192.168.1.255         nas
//! 00-11-22-33-44-66   wan.example.org:2050  office-pc
//! 0011.2233.4477                            printer
//! 001122334488        10.0.0.255 7          # wakeonlan's "MAC IP PORT" works too
//! ```
//!
//! `hosts.toml` (default `~/.config/sockbox/hosts.toml`) names hosts:
//!
//! ```toml
//! [hosts.nas]
//! mac = "00:11:22:33:44:55"
//! addr = "192.168.1.10"      # optional: sent to as well as the broadcast; the address to ping
//! port = 9                   # optional
//! password = "192.168.1.1"   # optional SecureOn password
//! iface = "eth0"             # optional: only broadcast on this interface
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sockbox_wire::mac::MacAddr;
use sockbox_wire::magic::Password;

use super::Error;
use super::target::{ToHost, ToSpec};

/// A machine to wake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its MAC address.
    pub mac: MacAddr,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// An address to send to (unicast, broadcast or WAN); also the
    /// address to ping to see the host is up.
    pub addr: Option<ToSpec>,
    /// True when `addr` replaces the default broadcast (hosts-file lines);
    /// false when the packet goes to `addr` as well (`hosts.toml`).
    pub addr_only: bool,
    /// UDP port for this host, unless the command line gives one.
    pub port: Option<u16>,
    /// SecureOn password.
    pub password: Option<Password>,
    /// Only broadcast on this interface.
    pub iface: Option<String>,
    /// Where it was defined (`FILE:LINE`, `FILE [hosts.NAME]`, or `command line`).
    pub origin: String,
}

impl Host {
    /// A host given only by its MAC on the command line.
    pub fn from_mac(mac: MacAddr) -> Self {
        Self {
            mac,
            name: None,
            addr: None,
            addr_only: false,
            port: None,
            password: None,
            iface: None,
            origin: "command line".to_owned(),
        }
    }

    /// `name (mac)` or just the MAC.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.mac),
            None => self.mac.to_string(),
        }
    }
}

fn looks_like_addr(tok: &str, spec: &ToSpec) -> bool {
    matches!(spec.host, ToHost::Ip(_)) || spec.port.is_some() || tok.contains('.')
}

fn valid_host_name(n: &str) -> bool {
    !n.is_empty() && !n.contains([':', '#', '/']) && n.chars().all(|c| !c.is_whitespace())
}

/// The hosts of a hosts file, and the lines that are not a host.
#[derive(Debug, Default)]
pub struct HostsFile {
    /// The hosts, in file order.
    pub hosts: Vec<Host>,
    /// One [`Error::HostsLine`] per line that could not be read.
    pub bad: Vec<Error>,
}

/// Parse the text of a hosts file; `path` is only used in messages. A bad
/// line is reported in [`HostsFile::bad`] and the others are kept.
pub fn parse_hosts_file(path: &Path, text: &str) -> HostsFile {
    let mut file = HostsFile::default();
    for (n, raw) in text.lines().enumerate() {
        match parse_line(path, n + 1, raw) {
            Ok(Some(host)) => file.hosts.push(host),
            Ok(None) => {}
            Err(e) => file.bad.push(e),
        }
    }
    file
}

/// One line: a host, nothing (blank or comment), or why it is not a host.
fn parse_line(path: &Path, line: usize, raw: &str) -> Result<Option<Host>, Error> {
    let err = |reason: String| Error::HostsLine {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let content = raw.split('#').next().unwrap_or("");
    let toks: Vec<&str> = content.split_whitespace().collect();
    let Some((first, rest)) = toks.split_first() else {
        return Ok(None);
    };
    let mac: MacAddr = first.parse().map_err(|e| err(format!("{e}")))?;
    let mut host = Host::from_mac(mac);
    host.origin = format!("{}:{line}", path.display());
    host.addr_only = true;
    let mut i = 0;
    if let Some(tok) = rest.first() {
        match tok.parse::<ToSpec>() {
            Ok(spec) if rest.len() >= 2 || looks_like_addr(tok, &spec) => {
                host.addr = Some(spec);
                i = 1;
            }
            Err(e) if rest.len() >= 2 || tok.contains([':', '.']) => {
                return Err(err(format!("{e}; expected: MAC [ADDR[:PORT]] [name]")));
            }
            _ => {}
        }
    }
    // wakeonlan's "MAC IP PORT": a bare number right after the address.
    if let (Some(spec), Some(tok)) = (host.addr.as_mut(), rest.get(i))
        && spec.port.is_none()
        && tok.bytes().all(|b| b.is_ascii_digit())
    {
        spec.port = Some(
            super::target::parse_port(tok, tok)
                .map_err(|_| err(format!("port {tok:?} is not a number from 1 to 65535")))?,
        );
        i += 1;
    }
    if let Some(name) = rest.get(i) {
        if !valid_host_name(name) {
            return Err(err(format!(
                "host name {name:?} may not contain ':', '/' or '#'"
            )));
        }
        host.name = Some((*name).to_owned());
        i += 1;
    }
    if let Some(extra) = rest.get(i) {
        return Err(err(format!(
            "unexpected {extra:?} after the name; expected: MAC [ADDR[:PORT]] [name]"
        )));
    }
    Ok(Some(host))
}

/// Read and parse a hosts file; only a file that cannot be read fails.
pub fn read_hosts_file(path: &Path) -> Result<HostsFile, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::HostsRead {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_hosts_file(path, &text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    hosts: BTreeMap<String, TomlHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlHost {
    mac: String,
    addr: Option<String>,
    port: Option<u16>,
    password: Option<String>,
    iface: Option<String>,
}

/// Parse the text of a `hosts.toml`; `path` is only used in messages.
pub fn parse_hosts_toml(path: &Path, text: &str) -> Result<Vec<Host>, Error> {
    let file: TomlFile = toml::from_str(text).map_err(|e| Error::HostsToml {
        path: path.to_path_buf(),
        reason: e.to_string().trim_end().to_owned(),
    })?;
    let mut hosts = Vec::new();
    for (name, h) in file.hosts {
        let err = |reason: String| Error::HostsToml {
            path: path.to_path_buf(),
            reason: format!("[hosts.{name}]: {reason}"),
        };
        if !valid_host_name(&name) {
            return Err(err("a host name may not contain ':', '/' or '#'".to_owned()));
        }
        let mac = h
            .mac
            .parse::<MacAddr>()
            .map_err(|e| err(format!("mac: {e}")))?;
        let addr = h
            .addr
            .as_deref()
            .map(str::parse::<ToSpec>)
            .transpose()
            .map_err(|e| err(format!("addr: {e}")))?;
        if h.port == Some(0) {
            return Err(err("port: 0 cannot be sent to; use 1 to 65535".to_owned()));
        }
        let password = h
            .password
            .as_deref()
            .map(str::parse::<Password>)
            .transpose()
            .map_err(|e| err(format!("password: {e}")))?;
        hosts.push(Host {
            mac,
            addr,
            addr_only: false,
            port: h.port,
            password,
            iface: h.iface,
            origin: format!("{} [hosts.{name}]", path.display()),
            name: Some(name),
        });
    }
    Ok(hosts)
}

/// Read a `hosts.toml`. A missing file gives no hosts when `must_exist` is
/// false (the default location), and an error otherwise.
pub fn read_hosts_toml(path: &Path, must_exist: bool) -> Result<Vec<Host>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_hosts_toml(path, &text),
        Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::HostsRead {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `$XDG_CONFIG_HOME/sockbox/hosts.toml`, else `~/.config/sockbox/hosts.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("sockbox").join("hosts.toml"))
}

/// True when `arg` can only have been meant as a MAC: it has a ':' (never
/// in a name), or it is hex digits with separators, or 12+ hex digits.
fn meant_as_mac(arg: &str) -> bool {
    let hexy = arg
        .chars()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
    arg.is_empty()
        || arg.contains(':')
        || (hexy && arg.contains(['-', '.']))
        || (hexy && arg.len() >= 12)
}

/// Turn a command-line target into a host: a MAC (enriched from `known`
/// when a known host has that MAC) or the name of a known host.
/// `searched` names where `known` came from, for the error message.
pub fn resolve_target(arg: &str, known: &[Host], searched: &str) -> Result<Host, Error> {
    match arg.parse::<MacAddr>() {
        Ok(mac) => Ok(known
            .iter()
            .find(|h| h.mac == mac)
            .cloned()
            .unwrap_or_else(|| Host::from_mac(mac))),
        Err(e) if meant_as_mac(arg) && !known.iter().any(|h| h.name.as_deref() == Some(arg)) => {
            Err(Error::BadMac(e))
        }
        Err(e) => known
            .iter()
            .find(|h| h.name.as_deref() == Some(arg))
            .cloned()
            .ok_or_else(|| Error::UnknownHost {
                input: arg.to_owned(),
                mac_error: e.kind.to_string(),
                searched: searched.to_owned(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Host>, Error> {
        let mut f = parse_hosts_file(Path::new("hosts.txt"), text);
        match f.bad.pop() {
            Some(e) => Err(e),
            None => Ok(f.hosts),
        }
    }

    #[test]
    fn hosts_file_forms() {
        let h = p("# comment\n\
                   00:11:22:33:44:55   192.168.1.255   nas\n\
                   \n\
                   00-11-22-33-44-66 wan.example.org:2050 office-pc # trailing comment\n\
                   0011.2233.4477 printer\n\
                   001122334488 10.0.0.255 7\n\
                   00:11:22:33:44:99 10.0.0.7\n\
                   00:11:22:33:44:aa\n")
        .unwrap();
        assert_eq!(h.len(), 6);
        assert_eq!(h[0].name.as_deref(), Some("nas"));
        assert_eq!(h[0].addr.as_ref().unwrap().to_string(), "192.168.1.255");
        assert_eq!(h[0].origin, "hosts.txt:2");
        assert_eq!(
            h[1].addr.as_ref().unwrap().to_string(),
            "wan.example.org:2050"
        );
        assert_eq!(h[1].name.as_deref(), Some("office-pc"));
        assert_eq!(
            (h[2].addr.as_ref(), h[2].name.as_deref()),
            (None, Some("printer"))
        );
        assert_eq!(h[3].addr.as_ref().unwrap().to_string(), "10.0.0.255:7");
        assert_eq!(h[3].name, None);
        assert_eq!(h[4].addr.as_ref().unwrap().to_string(), "10.0.0.7");
        assert_eq!(h[5].mac.to_string(), "00:11:22:33:44:aa");
        assert!(h.iter().all(|h| h.addr_only));
    }

    #[test]
    fn a_bad_line_is_reported_and_the_others_kept() {
        let f = parse_hosts_file(
            Path::new("hosts.txt"),
            "zz:zz:zz:zz:zz:zz a\n00:11:22:33:44:55 b\n00:11:22:33:44:66 10.0.0.300\n010203-040506 hp\n",
        );
        let names: Vec<_> = f.hosts.iter().map(Host::label).collect();
        assert_eq!(names, ["b (00:11:22:33:44:55)", "hp (01:02:03:04:05:06)"]);
        let bad: Vec<String> = f.bad.iter().map(ToString::to_string).collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].starts_with("hosts.txt:1: invalid MAC"), "{bad:?}");
        assert!(bad[1].starts_with("hosts.txt:3: "), "{bad:?}");
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        for (text, line, want) in [
            ("00:11:22:33:44:55\n00:11:22:33:44\n", 2, "5 groups"),
            ("\n\n00:11:22:33:44:55 10.0.0.300 nas\n", 3, "not an IPv4"),
            ("00:11:22:33:44:55 10.0.0.1:99999\n", 1, "port"),
            (
                "00:11:22:33:44:55 10.0.0.1 nas extra\n",
                1,
                "unexpected \"extra\"",
            ),
            ("zz\n", 1, "invalid MAC"),
            ("00:11:22:33:44:55 10.0.0.1 70000 x\n", 1, "port \"70000\""),
            ("00:11:22:33:44:55 10.0.0.1 0 x\n", 1, "port \"0\""),
        ] {
            let e = p(text).unwrap_err();
            let s = e.to_string();
            assert!(s.starts_with(&format!("hosts.txt:{line}: ")), "{s}");
            assert!(s.contains(want), "{s}");
            assert!(e.is_usage());
        }
    }

    #[test]
    fn toml_hosts() {
        let h = parse_hosts_toml(
            Path::new("hosts.toml"),
            r#"
[hosts.nas]
mac = "00:11:22:33:44:55"
addr = "192.168.1.10"
port = 7
password = "1.2.3.4"
iface = "eth0"

[hosts.pc]
mac = "0011.2233.4466"
"#,
        )
        .unwrap();
        assert_eq!(h.len(), 2);
        let nas = &h[0];
        assert_eq!(nas.name.as_deref(), Some("nas"));
        assert_eq!(nas.port, Some(7));
        assert_eq!(nas.password, Some(Password::Four([1, 2, 3, 4])));
        assert_eq!(nas.iface.as_deref(), Some("eth0"));
        assert_eq!(nas.origin, "hosts.toml [hosts.nas]");
        assert!(!nas.addr_only, "a hosts.toml address is sent to as well");
        assert_eq!(h[1].mac.to_string(), "00:11:22:33:44:66");
    }

    #[test]
    fn toml_errors_name_the_host_and_field() {
        let e = parse_hosts_toml(Path::new("h.toml"), "[hosts.nas]\nmac = \"00:11\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("h.toml: [hosts.nas]: mac: invalid MAC"), "{e}");
        let e = parse_hosts_toml(
            Path::new("h.toml"),
            "[hosts.nas]\nmac = \"00:11:22:33:44:55\"\nmack = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mack"), "{e}");
        let e = parse_hosts_toml(
            Path::new("h.toml"),
            "[hosts.nas]\nmac = \"00:11:22:33:44:55\"\nport = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[hosts.nas]: port: 0"), "{e}");
        let e = parse_hosts_toml(Path::new("h.toml"), "[hosts.nas\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn missing_default_config_is_empty_but_missing_given_one_is_an_error() {
        let p = Path::new("/nonexistent/sockbox/hosts.toml");
        assert!(read_hosts_toml(p, false).unwrap().is_empty());
        assert!(
            read_hosts_toml(p, true)
                .unwrap_err()
                .to_string()
                .contains("/nonexistent")
        );
    }

    #[test]
    fn resolve_targets() {
        let known = p("00:11:22:33:44:55 192.168.1.10 nas\n").unwrap();
        let h = resolve_target("nas", &known, "x").unwrap();
        assert_eq!(h.mac.to_string(), "00:11:22:33:44:55");
        // A MAC that a known host has picks up its address.
        let h = resolve_target("00-11-22-33-44-55", &known, "x").unwrap();
        assert_eq!(h.name.as_deref(), Some("nas"));
        let h = resolve_target("00:11:22:33:44:66", &known, "x").unwrap();
        assert_eq!((h.name, h.origin.as_str()), (None, "command line"));
        let e = resolve_target("00:11:22:33:44", &known, "x").unwrap_err();
        assert!(matches!(e, Error::BadMac(_)), "{e}");
        let e = resolve_target("desk", &known, "hosts.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"desk\"") && e.contains("hosts.txt"), "{e}");
    }
}
