//! Target lists: addresses, host names, CIDR ranges and `A-B` ranges, and
//! concurrent name resolution.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::Semaphore;

use super::PingError;

/// Most addresses one range may expand to.
pub const MAX_RANGE: u64 = 1 << 24;

/// One thing to ping, as the user wrote it and where it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name the user gave, when it was a host name (not an address).
    pub name: Option<Box<str>>,
    /// The address probed.
    pub addr: IpAddr,
}

impl Target {
    /// A target given as an address.
    pub const fn addr(addr: IpAddr) -> Self {
        Self { name: None, addr }
    }

    /// How to show it: the name when there is one, else the address.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => self.addr.to_string(),
        }
    }
}

/// A target as written, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// An address literal.
    Addr(IpAddr),
    /// A host name to resolve.
    Name(String),
}

/// Parse one target word: an address (IPv6 may be in brackets, may carry a
/// `%zone` which is dropped) or a host name.
pub fn parse_spec(word: &str) -> Result<Spec, PingError> {
    let w = word.trim();
    let unbracketed = w
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(w);
    let no_zone = unbracketed.split('%').next().unwrap_or(unbracketed);
    if let Ok(a) = no_zone.parse::<IpAddr>() {
        return Ok(Spec::Addr(a));
    }
    let valid = !w.is_empty()
        && w.len() <= 253
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !w.starts_with('-');
    if valid {
        Ok(Spec::Name(w.to_owned()))
    } else {
        Err(PingError::BadTarget(word.to_owned()))
    }
}

/// Expand a range: `10.0.0.0/24` (without the network and broadcast
/// addresses for IPv4 prefixes up to /30, as fping does), or
/// `10.0.0.1-10.0.0.20` / `10.0.0.1-20` (inclusive).
pub fn expand_range(spec: &str) -> Result<Vec<IpAddr>, PingError> {
    let bad = |why: &str| PingError::BadRange(spec.to_owned(), why.to_owned());
    if let Some((a, b)) = spec.split_once('-') {
        let start: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| bad("the start is not an address"))?;
        let end: IpAddr = match b.trim().parse() {
            Ok(e) => e,
            Err(_) => {
                last_octet(start, b.trim()).ok_or_else(|| bad("the end is not an address"))?
            }
        };
        return expand_pair(start, end).map_err(&bad);
    }
    let net: IpNet = spec
        .trim()
        .parse()
        .map_err(|_| bad("expected ADDR/PREFIX or START-END"))?;
    let size: u128 = match net {
        IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
        IpNet::V6(n) => 1u128
            .checked_shl(u32::from(128 - n.prefix_len()))
            .unwrap_or(u128::MAX),
    };
    if size > u128::from(MAX_RANGE) {
        return Err(bad(&format!(
            "{size} addresses is more than the {MAX_RANGE} one range may hold"
        )));
    }
    Ok(match net {
        // hosts() leaves out network and broadcast for /0../30 and keeps
        // every address of /31 and /32.
        IpNet::V4(n) => n.hosts().map(IpAddr::V4).collect(),
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            (0..size)
                .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
                .collect()
        }
    })
}

/// `10.0.0.1-20`: the end is the last octet (v4) or group (v6) only.
fn last_octet(start: IpAddr, end: &str) -> Option<IpAddr> {
    match start {
        IpAddr::V4(s) => {
            let last: u8 = end.parse().ok()?;
            let mut o = s.octets();
            o[3] = last;
            Some(IpAddr::V4(Ipv4Addr::from(o)))
        }
        IpAddr::V6(s) => {
            let last = u16::from_str_radix(end, 16).ok()?;
            let mut seg = s.segments();
            seg[7] = last;
            Some(IpAddr::V6(Ipv6Addr::from(seg)))
        }
    }
}

fn expand_pair(start: IpAddr, end: IpAddr) -> Result<Vec<IpAddr>, &'static str> {
    match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a {
                return Err("the end comes before the start");
            }
            if u64::from(b - a) + 1 > MAX_RANGE {
                return Err("more addresses than one range may hold (16777216)");
            }
            Ok((a..=b).map(|v| IpAddr::V4(Ipv4Addr::from(v))).collect())
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (u128::from(a), u128::from(b));
            if b < a {
                return Err("the end comes before the start");
            }
            if b - a >= u128::from(MAX_RANGE) {
                return Err("more addresses than one range may hold (16777216)");
            }
            Ok((a..=b).map(|v| IpAddr::V6(Ipv6Addr::from(v))).collect())
        }
        _ => Err("the start and the end are of different address families"),
    }
}

/// Which addresses a host name may resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FamilyPref {
    /// Whatever comes first.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl FamilyPref {
    /// True when `addr` is acceptable.
    pub fn accepts(self, addr: &IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => addr.is_ipv4(),
            Self::V6 => addr.is_ipv6(),
        }
    }
}

/// Resolve host names concurrently (at most `concurrency` lookups at once),
/// keeping the order. Each result is the first address of the wanted
/// family, or an error naming the host.
pub async fn resolve_all(
    names: &[String],
    pref: FamilyPref,
    concurrency: usize,
) -> Vec<Result<IpAddr, PingError>> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let sem = Arc::clone(&sem);
        let name = name.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, resolve_one(&name, pref).await)
        });
    }
    let mut out: Vec<Option<Result<IpAddr, PingError>>> = (0..names.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .zip(names)
        .map(|(r, n)| {
            r.unwrap_or_else(|| {
                Err(PingError::Resolve(
                    n.clone(),
                    std::io::Error::other("lookup task failed"),
                ))
            })
        })
        .collect()
}

async fn resolve_one(name: &str, pref: FamilyPref) -> Result<IpAddr, PingError> {
    let addrs = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| PingError::Resolve(name.to_owned(), e))?;
    let mut any = false;
    for a in addrs {
        any = true;
        if pref.accepts(&a.ip()) {
            return Ok(a.ip());
        }
    }
    let why = if any {
        "it has no address of the requested family"
    } else {
        "no address found"
    };
    Err(PingError::Resolve(
        name.to_owned(),
        std::io::Error::other(why),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_like_fping() {
        let r = expand_range("10.0.0.0/30").unwrap();
        assert_eq!(r, vec![v4("10.0.0.1"), v4("10.0.0.2")]);
        assert_eq!(expand_range("10.0.0.0/31").unwrap().len(), 2);
        assert_eq!(expand_range("10.0.0.7/32").unwrap(), vec![v4("10.0.0.7")]);
        let big = expand_range("127.0.0.0/16").unwrap();
        assert_eq!(big.len(), 65534);
        assert_eq!(big[0], v4("127.0.0.1"));
        assert_eq!(big[65533], v4("127.0.255.254"));
        assert_eq!(expand_range("2001:db8::/126").unwrap().len(), 4);
    }

    #[test]
    fn dash_ranges() {
        assert_eq!(expand_range("10.0.0.250-10.0.1.1").unwrap().len(), 8);
        assert_eq!(expand_range("10.0.0.1-3").unwrap().len(), 3);
        assert_eq!(expand_range("::1-::3").unwrap().len(), 3);
        assert_eq!(expand_range("fe80::1-a").unwrap().len(), 10);
    }

    #[test]
    fn bad_ranges_name_the_problem() {
        for (spec, why) in [
            ("10.0.0.5-10.0.0.1", "before"),
            ("10.0.0.1-::1", "families"),
            ("10.0.0.0/33", "ADDR/PREFIX"),
            ("10.0.0.0/4", "more"),
            ("::/64", "more"),
            ("x-10.0.0.1", "start"),
            ("10.0.0.1-300", "end"),
        ] {
            let e = expand_range(spec).unwrap_err().to_string();
            assert!(e.contains(spec) && e.contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse_spec("127.0.0.1").unwrap(),
            Spec::Addr(v4("127.0.0.1"))
        );
        assert_eq!(parse_spec("[::1]").unwrap(), Spec::Addr(v4("::1")));
        assert_eq!(
            parse_spec("fe80::1%eth0").unwrap(),
            Spec::Addr(v4("fe80::1"))
        );
        assert_eq!(
            parse_spec("example.com").unwrap(),
            Spec::Name("example.com".into())
        );
        assert!(parse_spec("bad host").is_err());
        assert!(parse_spec("").is_err());
        assert!(parse_spec("-rf").is_err());
    }

    #[tokio::test]
    async fn resolves_localhost_and_reports_failures_in_order() {
        let names = vec![
            "localhost".to_owned(),
            "no-such-host.invalid".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let r = resolve_all(&names, FamilyPref::V4, 4).await;
        assert_eq!(r[0].as_ref().unwrap(), &v4("127.0.0.1"));
        let e = r[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("no-such-host.invalid"), "{e}");
        assert!(r[2].is_ok());
    }
}
