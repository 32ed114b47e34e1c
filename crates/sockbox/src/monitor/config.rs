//! What to probe: groups of targets, each with its own interval, size,
//! address family, source and labels; and the smokeping_prober YAML file
//! that describes them.
//!
//! The file format is smokeping_prober's (`targets:` → a list of groups
//! with `hosts`, `host`, `interval`, `network`, `protocol`, `size`,
//! `source`, `tos`, `labels`), so its configuration files work unchanged,
//! plus keys of sockbox's own: `files` (files of targets, one per line),
//! `interface`, `timeout` and `ttl`. A host may also be a range: a CIDR
//! block (`10.0.0.0/24`, network and broadcast addresses left out as fping
//! does) or `FIRST-LAST`. Unknown keys are refused (a typo would otherwise
//! go unnoticed). Durations use Go's syntax (`1s`, `500ms`, `1m30s`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which addresses a group probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// Whatever a name resolves to first (smokeping_prober's `ip`).
    #[default]
    Any,
    /// IPv4 only (`ip4`).
    V4,
    /// IPv6 only (`ip6`).
    V6,
}

impl Network {
    /// True when `addr` is of an allowed family.
    pub const fn accepts(self, addr: &IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => addr.is_ipv4(),
            Self::V6 => addr.is_ipv6(),
        }
    }
}

/// The smallest and largest echo data size accepted, bytes.
pub const SIZE_RANGE: (usize, usize) = (crate::ping::probe::ID_LEN, 65_000);

/// The longest interval or timeout accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// A group of targets probed with the same settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Names, addresses and ranges.
    pub hosts: Vec<String>,
    /// Files of more of them, one per line (`#` starts a comment).
    pub files: Vec<PathBuf>,
    /// Time between two probes to one target.
    pub interval: Duration,
    /// How long to wait for a reply (default: the interval, at least 1 s).
    pub timeout: Option<Duration>,
    /// Echo data bytes per probe.
    pub size: usize,
    /// Address family.
    pub network: Network,
    /// Send from this address.
    pub source: Option<IpAddr>,
    /// Send through this interface.
    pub interface: Option<String>,
    /// IP TTL / hop limit of probes.
    pub ttl: Option<u32>,
    /// Type of service / traffic class byte.
    pub tos: Option<u8>,
    /// Extra labels on every series of the group.
    pub labels: BTreeMap<String, String>,
}

impl Default for Group {
    /// smokeping_prober's defaults: every second, 56 bytes, any family.
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            files: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            size: 56,
            network: Network::Any,
            source: None,
            interface: None,
            ttl: None,
            tos: None,
            labels: BTreeMap::new(),
        }
    }
}

impl Group {
    /// The reply timeout in force.
    pub fn effective_timeout(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| self.interval.max(Duration::from_secs(1)))
    }

    /// The `source` label: the source address, else the interface, else "".
    pub fn source_label(&self) -> String {
        match (&self.source, &self.interface) {
            (Some(a), _) => a.to_string(),
            (None, Some(i)) => i.clone(),
            (None, None) => String::new(),
        }
    }

    /// Check the settings; `n` numbers the group in messages (from 1).
    pub fn validate(&self, n: usize) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Group { group: n, what };
        if self.interval.is_zero() || self.interval > MAX_INTERVAL {
            return Err(bad(format!(
                "interval {:?} must be above zero and at most 24h",
                self.interval
            )));
        }
        if let Some(t) = self.timeout
            && (t.is_zero() || t > MAX_INTERVAL)
        {
            return Err(bad(format!(
                "timeout {t:?} must be above zero and at most 24h"
            )));
        }
        if self.size < SIZE_RANGE.0 || self.size > SIZE_RANGE.1 {
            return Err(bad(format!(
                "size {} must be {} to {} bytes",
                self.size, SIZE_RANGE.0, SIZE_RANGE.1
            )));
        }
        if let Some(t) = self.ttl
            && !(1..=255).contains(&t)
        {
            return Err(bad(format!("ttl {t} must be 1 to 255")));
        }
        if let (Some(src), Network::V4 | Network::V6) = (self.source, self.network)
            && !self.network.accepts(&src)
        {
            return Err(bad(format!("source {src} is not of the group's network")));
        }
        for name in self.labels.keys() {
            check_label_name(name).map_err(bad)?;
        }
        Ok(())
    }
}

/// Label names a group may not set: the prober's own.
const RESERVED: [&str; 5] = ["host", "ip", "source", "le", "type"];

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "label name {name:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if name.starts_with("__") || RESERVED.contains(&name) {
        return Err(format!(
            "label name {name:?} is reserved (names starting with __, and host, ip, source, le, type)"
        ));
    }
    Ok(())
}

/// Errors in a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A group's settings are wrong.
    #[error("target group {group}: {what}")]
    Group {
        /// Which group, from 1.
        group: usize,
        /// What is wrong.
        what: String,
    },
}

/// Parse a duration in Go's syntax: one or more `<number><unit>` with
/// units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h` (`1s`, `1.5s`, `1m30s`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 1s, 500ms, 1m30s)");
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// One group as the YAML file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    interface: Option<String>,
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    tos: Option<u8>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    targets: Vec<RawGroup>,
}

impl RawGroup {
    fn into_group(self, n: usize, base: &Path) -> Result<Group, ConfigError> {
        let bad = |what: String| ConfigError::Group { group: n, what };
        let mut g = Group {
            hosts: self.hosts,
            files: self.files.into_iter().map(|f| base.join(f)).collect(),
            ..Group::default()
        };
        if let Some(h) = self.host
            && g.hosts.is_empty()
        {
            g.hosts.push(h);
        }
        if let Some(i) = self.interval {
            g.interval = parse_go_duration(&i).map_err(|e| bad(format!("interval: {e}")))?;
        }
        if let Some(t) = self.timeout {
            g.timeout = Some(parse_go_duration(&t).map_err(|e| bad(format!("timeout: {e}")))?);
        }
        g.network = match self.network.as_deref() {
            None | Some("ip") => Network::Any,
            Some("ip4") => Network::V4,
            Some("ip6") => Network::V6,
            Some(other) => {
                return Err(bad(format!("network {other:?} must be ip, ip4 or ip6")));
            }
        };
        match self.protocol.as_deref() {
            // smokeping_prober's "udp" is ICMP echo over an unprivileged
            // datagram socket, not UDP probing: the same probes here (the
            // socket kind is the prober's, chosen once for all groups).
            None | Some("icmp" | "udp") => {}
            Some(other) => {
                return Err(bad(format!(
                    "protocol {other:?} is not supported: sockbox probes with ICMP echo only \
                     (remove the key or set it to icmp or udp)"
                )));
            }
        }
        if let Some(s) = self.size {
            g.size = s;
        }
        if let Some(s) = self.source.filter(|s| !s.is_empty()) {
            g.source = Some(
                s.parse()
                    .map_err(|_| bad(format!("source {s:?} is not an IP address")))?,
            );
        }
        g.interface = self.interface.filter(|s| !s.is_empty());
        g.ttl = self.ttl;
        g.tos = self.tos;
        g.labels = self.labels;
        g.validate(n)?;
        Ok(g)
    }
}

/// Parse the text of a configuration file; relative `files` are taken
/// from `base` (the file's directory).
pub fn parse_config(text: &str, path: &Path) -> Result<Vec<Group>, ConfigError> {
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig {
            targets: Vec::new(),
        }
    } else {
        serde_norway::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    raw.targets
        .into_iter()
        .enumerate()
        .map(|(i, g)| g.into_group(i + 1, base))
        .collect()
}

/// Read and parse a configuration file.
pub fn load_config(path: &Path) -> Result<Vec<Group>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_config(&text, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_go_duration("10us").unwrap(),
            Duration::from_micros(10)
        );
        for bad in ["", "1", "1x", "s", "1s2", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn smokeping_probers_own_example_file_parses() {
        // The example shipped with smokeping_prober (Debian's
        // /etc/prometheus/smokeping_prober.yml).
        let text = "---\ntargets:\n- hosts:\n  - localhost\n  interval: 1s # Duration, Default 1s.\n  \
                    network: ip # One of ip, ip4, ip6. Default: ip (automatic IPv4/IPv6)\n  \
                    protocol: icmp # One of icmp, udp. Default: icmp (Requires privileged operation)\n  \
                    size: 56 # Packet data size in bytes. Default 56 (Range: 24 - 65535)\n";
        let g = parse_config(text, Path::new("/etc/x.yml")).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].hosts, vec!["localhost"]);
        assert_eq!(g[0].interval, Duration::from_secs(1));
        assert_eq!(g[0].size, 56);
    }

    #[test]
    fn sockbox_keys_and_defaults() {
        let text = "targets:\n- host: a.example\n  labels: {dc: x}\n  files: [more.txt]\n  \
                    network: ip6\n  interval: 250ms\n  interface: eth0\n- hosts: [10.0.0.0/30]\n";
        let g = parse_config(text, Path::new("/etc/p/c.yml")).unwrap();
        assert_eq!(g[0].hosts, vec!["a.example"]);
        assert_eq!(g[0].files, vec![PathBuf::from("/etc/p/more.txt")]);
        assert_eq!(g[0].network, Network::V6);
        assert_eq!(g[0].effective_timeout(), Duration::from_secs(1));
        assert_eq!(g[0].source_label(), "eth0");
        assert_eq!(g[0].labels.get("dc").map(String::as_str), Some("x"));
        assert_eq!(g[1].interval, Duration::from_secs(1));
    }

    #[test]
    fn smokeping_udp_protocol_is_unprivileged_icmp_and_accepted() {
        let g = parse_config(
            "targets:\n- hosts: [127.0.0.1]\n  protocol: udp\n",
            Path::new("c.yml"),
        )
        .unwrap();
        assert_eq!(g[0].hosts, ["127.0.0.1"]);
    }

    #[test]
    fn mistakes_name_the_group_and_the_fix() {
        let cases = [
            (
                "targets:\n- hosts: [a]\n  protocol: tcp\n",
                "ICMP echo only",
            ),
            ("targets:\n- hosts: [a]\n  size: 4\n", "size 4"),
            ("targets:\n- hosts: [a]\n  interval: 0s\n", "interval"),
            ("targets:\n- hosts: [a]\n  labels: {host: x}\n", "reserved"),
            (
                "targets:\n- hosts: [a]\n  labels: {\"a-b\": x}\n",
                "not a Prometheus label",
            ),
            ("targets:\n- hosts: [a]\n  intervall: 1s\n", "intervall"),
            ("targets:\n- hosts: [a]\n  network: tcp\n", "ip, ip4 or ip6"),
            (
                "targets:\n- hosts: [a]\n  source: eth0\n",
                "not an IP address",
            ),
            ("targets: [", "c.yml"),
        ];
        for (text, want) in cases {
            let e = parse_config(text, Path::new("c.yml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
