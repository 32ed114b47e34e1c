//! Destinations written as `ADDR[:PORT]`: an IPv4 address, an IPv6 address
//! (bare, or `[addr]:port`, with an optional `%iface` zone), or a host name.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::str::FromStr;

use super::Error;

/// The address part of a [`ToSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToHost {
    /// A literal address.
    Ip(IpAddr),
    /// A name to resolve.
    Name(String),
}

/// A parsed `ADDR[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToSpec {
    /// Address or name.
    pub host: ToHost,
    /// The port, when given.
    pub port: Option<u16>,
    /// An IPv6 zone (`fe80::1%eth0`): an interface name or index.
    pub zone: Option<String>,
}

fn bad(input: &str, reason: impl Into<String>) -> Error {
    Error::BadDestination {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn parse_port(input: &str, p: &str) -> Result<u16, Error> {
    p.parse::<u16>()
        .map_err(|_| bad(input, format!("port {p:?} is not a number from 0 to 65535")))
}

fn split_zone(s: &str) -> (&str, Option<String>) {
    match s.split_once('%') {
        Some((a, z)) => (a, Some(z.to_owned())),
        None => (s, None),
    }
}

fn parse_v6(input: &str, s: &str) -> Result<(Ipv6Addr, Option<String>), Error> {
    let (a, zone) = split_zone(s);
    if zone.as_deref() == Some("") {
        return Err(bad(input, "empty IPv6 zone after '%'"));
    }
    let ip = a
        .parse::<Ipv6Addr>()
        .map_err(|_| bad(input, format!("{a:?} is not an IPv6 address")))?;
    Ok((ip, zone))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl FromStr for ToSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(bad(s, "it is empty"));
        }
        // [v6]:port or [v6]
        if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = rest
                .split_once(']')
                .ok_or_else(|| bad(s, "'[' without a closing ']'"))?;
            let (ip, zone) = parse_v6(s, inner)?;
            let port = match after {
                "" => None,
                a => Some(parse_port(
                    s,
                    a.strip_prefix(':')
                        .ok_or_else(|| bad(s, "expected ':PORT' after ']'"))?,
                )?),
            };
            return Ok(Self {
                host: ToHost::Ip(IpAddr::V6(ip)),
                port,
                zone,
            });
        }
        // Two or more colons: a bare IPv6 address.
        if s.matches(':').count() >= 2 {
            let (ip, zone) = parse_v6(s, s)?;
            return Ok(Self {
                host: ToHost::Ip(IpAddr::V6(ip)),
                port: None,
                zone,
            });
        }
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(s, p)?)),
            None => (s, None),
        };
        if host.is_empty() {
            return Err(bad(s, "no address before ':'"));
        }
        let looks_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            ToHost::Ip(ip)
        } else if looks_numeric {
            return Err(bad(s, format!("{host:?} is not an IPv4 address")));
        } else if valid_name(host) {
            ToHost::Name(host.to_owned())
        } else {
            return Err(bad(
                s,
                format!("{host:?} is neither an IP address nor a valid host name"),
            ));
        };
        Ok(Self {
            host,
            port,
            zone: None,
        })
    }
}

impl fmt::Display for ToSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zone = self
            .zone
            .as_ref()
            .map(|z| format!("%{z}"))
            .unwrap_or_default();
        match (&self.host, self.port) {
            (ToHost::Ip(IpAddr::V6(a)), Some(p)) => write!(f, "[{a}{zone}]:{p}"),
            (ToHost::Ip(IpAddr::V6(a)), None) => write!(f, "{a}{zone}"),
            (ToHost::Ip(a), Some(p)) => write!(f, "{a}:{p}"),
            (ToHost::Ip(a), None) => write!(f, "{a}"),
            (ToHost::Name(n), Some(p)) => write!(f, "{n}:{p}"),
            (ToHost::Name(n), None) => write!(f, "{n}"),
        }
    }
}

fn zone_index(spec: &ToSpec, zone: &str) -> Result<u32, Error> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    nix::net::if_::if_nametoindex(zone).map_err(|_| {
        bad(
            &spec.to_string(),
            format!("no interface named {zone:?} for the IPv6 zone"),
        )
    })
}

impl ToSpec {
    /// The literal address, if this is not a name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            ToHost::Ip(ip) => Some(ip),
            ToHost::Name(_) => None,
        }
    }

    /// Resolve to one socket address, using `default_port` when none was
    /// given. A name that resolves to several addresses gives the first
    /// IPv4 one, else the first.
    pub async fn resolve(&self, default_port: u16) -> Result<SocketAddr, Error> {
        let port = self.port.unwrap_or(default_port);
        match &self.host {
            ToHost::Ip(IpAddr::V6(a)) => {
                let scope = match &self.zone {
                    Some(z) => zone_index(self, z)?,
                    None => 0,
                };
                Ok(SocketAddr::V6(SocketAddrV6::new(*a, port, 0, scope)))
            }
            ToHost::Ip(a) => Ok(SocketAddr::new(*a, port)),
            ToHost::Name(n) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((n.as_str(), port))
                    .await
                    .map_err(|source| Error::Resolve {
                        host: n.clone(),
                        source,
                    })?
                    .collect();
                addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or_else(|| addrs.first())
                    .copied()
                    .ok_or_else(|| Error::Resolve {
                        host: n.clone(),
                        source: std::io::Error::other("no addresses"),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn p(s: &str) -> ToSpec {
        s.parse().unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(
            p("10.0.0.255"),
            ToSpec {
                host: ToHost::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255))),
                port: None,
                zone: None
            }
        );
        assert_eq!(p("10.0.0.1:7").port, Some(7));
        assert_eq!(p("[2001:db8::1]:2050").port, Some(2050));
        assert_eq!(p("[fe80::1%eth0]:9").zone.as_deref(), Some("eth0"));
        assert_eq!(p("fe80::1%3").zone.as_deref(), Some("3"));
        assert_eq!(p("2001:db8::1").port, None);
        assert_eq!(
            p("nas.example.com:9").host,
            ToHost::Name("nas.example.com".into())
        );
        assert_eq!(p("router").host, ToHost::Name("router".into()));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "10.0.0.1:9",
            "[fe80::1%eth0]:9",
            "2001:db8::1",
            "h.example:40000",
            "h",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn bad_forms_name_the_problem() {
        for (s, want) in [
            ("10.0.0.1:99999", "port"),
            ("10.0.0.300", "not an IPv4"),
            ("[::1", "closing"),
            ("[::1]9", "':PORT'"),
            ("fe80::zz", "not an IPv6"),
            ("", "empty"),
            (":9", "no address"),
            ("bad host!", "valid host name"),
        ] {
            let e = s.parse::<ToSpec>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
        }
    }

    #[tokio::test]
    async fn resolve_literals_and_default_port() {
        assert_eq!(
            p("127.0.0.1").resolve(9).await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            p("127.0.0.1:7").resolve(9).await.unwrap(),
            "127.0.0.1:7".parse().unwrap()
        );
        let SocketAddr::V6(v6) = p("fe80::1%lo").resolve(9).await.unwrap() else {
            panic!("v6")
        };
        assert!(v6.scope_id() > 0);
        assert!(p("fe80::1%sockbox-nope").resolve(9).await.is_err());
        assert!(p("localhost").resolve(9).await.unwrap().ip().is_loopback());
    }
}
