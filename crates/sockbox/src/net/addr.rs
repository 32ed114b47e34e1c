//! Addresses: name resolution with a family filter, the wildcard to
//! listen on, and the canonical form of a peer's address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Address family restriction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// Either.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// True when `a` belongs to this family.
    pub fn admits(self, a: &SocketAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => a.is_ipv4(),
            Self::V6 => a.is_ipv6(),
        }
    }

    /// "IPv4", "IPv6", or "IP" for [`Family::Any`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "IP",
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }
}

/// Why a host did not give an address.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// The host is the empty string.
    #[error("the host name is empty: give a name or an address such as 127.0.0.1 or ::1")]
    Empty,
    /// The host looks like an address literal but is not a valid one
    /// (`300.1.1.1`, `1.2.3`, `::zz`); it is not sent to the resolver.
    #[error(
        "{host:?} is not a valid IP address (IPv4 is four numbers 0-255 such as 192.0.2.7; IPv6 looks like 2001:db8::1)"
    )]
    NotAnAddress {
        /// What was given.
        host: String,
    },
    /// The resolver failed.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// What was asked.
        host: String,
        /// The resolver's answer.
        #[source]
        source: io::Error,
    },
    /// The host resolved, but to no address of the wanted family.
    #[error("{host} has no {} address", family.name())]
    NoAddress {
        /// What was asked.
        host: String,
        /// The family asked for.
        family: Family,
    },
}

impl AddrError {
    /// True when the input itself is wrong (not the network or resolver).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Empty | Self::NotAnAddress { .. })
    }
}

/// A socket address with an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`,
/// what a dual-stack socket reports for IPv4 peers) shown as plain IPv4;
/// any other address unchanged (an IPv6 scope id kept). Every server shows
/// its peers through this.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// `host` without the brackets of a bracketed IPv6 literal (`[::1]`).
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// True when `host` can only have been meant as an address literal: digits
/// and dots with a dot (`300.1.1.1`, `10.1`), or anything with a colon.
/// Such a string that does not parse is an error, not a name to look up.
fn address_shaped(host: &str) -> bool {
    host.contains(':')
        || (host.contains('.') && host.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// Parse `host` as an address literal: `Ok(Some(ip))` for a valid one,
/// `Ok(None)` for a name to resolve, an error for the empty string and for
/// strings shaped like an address that are not one.
pub fn parse_literal(host: &str) -> Result<Option<IpAddr>, AddrError> {
    let bare = unbracket(host.trim());
    if bare.is_empty() {
        return Err(AddrError::Empty);
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    // `fe80::1%eth0`: a scoped literal, for the resolver to read the zone.
    if address_shaped(bare) && !bare.contains('%') {
        return Err(AddrError::NotAnAddress {
            host: host.to_owned(),
        });
    }
    Ok(None)
}

/// Resolve `host` (a name or an address literal, brackets allowed around
/// IPv6) and keep the addresses of `family`, in resolver order. Blocking:
/// call it from a blocking context or use [`resolve_async`].
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, AddrError> {
    let found = match parse_literal(host)? {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => answer(host, (unbracket(host.trim()), port).to_socket_addrs())?,
    };
    keep_family(host, found, family)
}

/// [`resolve`] on tokio's resolver (a blocking thread), for async callers.
pub async fn resolve_async(
    host: &str,
    port: u16,
    family: Family,
) -> Result<Vec<SocketAddr>, AddrError> {
    let found = match parse_literal(host)? {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => answer(
            host,
            tokio::net::lookup_host((unbracket(host.trim()), port)).await,
        )?,
    };
    keep_family(host, found, family)
}

/// The resolver's answer for `host`, or its error naming the host.
fn answer(
    host: &str,
    looked_up: io::Result<impl Iterator<Item = SocketAddr>>,
) -> Result<Vec<SocketAddr>, AddrError> {
    looked_up
        .map(Iterator::collect)
        .map_err(|source| AddrError::Resolve {
            host: host.to_owned(),
            source,
        })
}

fn keep_family(
    host: &str,
    found: Vec<SocketAddr>,
    family: Family,
) -> Result<Vec<SocketAddr>, AddrError> {
    let kept: Vec<SocketAddr> = found.into_iter().filter(|a| family.admits(a)).collect();
    if kept.is_empty() {
        return Err(AddrError::NoAddress {
            host: host.to_owned(),
            family,
        });
    }
    Ok(kept)
}

/// The address to listen on: `host` resolved (its first address of
/// `family`), or the wildcard of the family (`[::]`, which also serves
/// IPv4 unless the socket is made IPv6-only, for [`Family::Any`]).
pub fn listen_addr(host: Option<&str>, port: u16, family: Family) -> Result<SocketAddr, AddrError> {
    match host {
        Some(h) => resolve(h, port, family).map(|v| v[0]),
        None => Ok(wildcard(port, family)),
    }
}

/// The unspecified address of `family` (`[::]` for [`Family::Any`]).
pub fn wildcard(port: u16, family: Family) -> SocketAddr {
    match family {
        Family::V4 => (Ipv4Addr::UNSPECIFIED, port).into(),
        Family::V6 | Family::Any => (Ipv6Addr::UNSPECIFIED, port).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_families() {
        let v = resolve("[::1]", 7, Family::Any).unwrap();
        assert_eq!(v, vec!["[::1]:7".parse().unwrap()]);
        let err = resolve("127.0.0.1", 7, Family::V6).unwrap_err();
        assert!(matches!(
            err,
            AddrError::NoAddress {
                family: Family::V6,
                ..
            }
        ));
        assert_eq!(err.to_string(), "127.0.0.1 has no IPv6 address");
        assert_eq!(
            listen_addr(None, 9, Family::V4).unwrap(),
            "0.0.0.0:9".parse().unwrap()
        );
        assert_eq!(
            listen_addr(None, 9, Family::Any).unwrap(),
            "[::]:9".parse().unwrap()
        );
    }

    #[test]
    fn address_shaped_strings_are_not_looked_up() {
        for bad in ["300.1.1.1", "1.2.3", "10.0.0.1.5", "::zz", "1:2:3"] {
            let err = parse_literal(bad).unwrap_err();
            assert!(
                matches!(err, AddrError::NotAnAddress { .. }),
                "{bad}: {err}"
            );
            assert!(err.is_usage());
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(matches!(parse_literal(""), Err(AddrError::Empty)));
        assert!(matches!(parse_literal(" [] "), Err(AddrError::Empty)));
        assert_eq!(parse_literal("localhost").unwrap(), None);
        assert_eq!(parse_literal("host-1.example").unwrap(), None);
        assert_eq!(parse_literal("fe80::1%lo").unwrap(), None);
    }

    #[test]
    fn canonical_unmaps_ipv4() {
        let a: SocketAddr = "[::ffff:10.1.2.3]:99".parse().unwrap();
        assert_eq!(canonical(a).to_string(), "10.1.2.3:99");
        let b: SocketAddr = "[fe80::1%2]:5".parse().unwrap();
        assert_eq!(canonical(b), b);
        let c: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(canonical(c), c);
    }

    #[tokio::test]
    async fn async_resolution_agrees() {
        let v = resolve_async("127.0.0.1", 80, Family::V4).await.unwrap();
        assert_eq!(v, vec!["127.0.0.1:80".parse().unwrap()]);
        assert!(resolve_async("", 80, Family::Any).await.is_err());
    }
}
