//! Target lists: addresses, host names, CIDR ranges and `A-B` ranges, and
//! concurrent name resolution.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::Semaphore;

use super::PingError;

pub use super::event::Target;

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

/// An inclusive range of addresses of one family, generated lazily: a
/// range of any size costs a few bytes until it is walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrRange {
    next: u128,
    last: u128,
    v4: bool,
    done: bool,
}

impl AddrRange {
    /// From `first` to `last` inclusive; `None` when they are of different
    /// families or `last` comes first.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        let (a, b, v4) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), true)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), false),
            _ => return None,
        };
        (a <= b).then_some(Self {
            next: a,
            last: b,
            v4,
            done: false,
        })
    }

    /// Addresses left (saturating at `u128::MAX` for a whole IPv6 space).
    pub fn len(&self) -> u128 {
        if self.done {
            0
        } else {
            (self.last - self.next).saturating_add(1)
        }
    }

    /// True when every address was handed out.
    pub fn is_empty(&self) -> bool {
        self.done
    }

    /// True for IPv4.
    pub fn is_v4(&self) -> bool {
        self.v4
    }

    fn addr(&self, v: u128) -> IpAddr {
        if self.v4 {
            IpAddr::V4(Ipv4Addr::from(v as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(v))
        }
    }

    /// The first address left.
    pub fn first(&self) -> Option<IpAddr> {
        (!self.done).then(|| self.addr(self.next))
    }

    /// The last address.
    pub fn last_addr(&self) -> IpAddr {
        self.addr(self.last)
    }
}

impl Iterator for AddrRange {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        if self.done {
            return None;
        }
        let a = self.addr(self.next);
        if self.next == self.last {
            self.done = true;
        } else {
            self.next += 1;
        }
        Some(a)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.len()).unwrap_or(usize::MAX);
        (n, usize::try_from(self.len()).ok())
    }
}

/// Parse a range: `10.0.0.0/24` (without the network and broadcast
/// addresses for IPv4 prefixes up to /30, as fping does; IPv6 prefixes
/// keep every address), or `10.0.0.1-10.0.0.20` / `10.0.0.1-20`
/// (inclusive). Nothing is expanded: any size is accepted.
pub fn parse_range(spec: &str) -> Result<AddrRange, PingError> {
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
        if start.is_ipv4() != end.is_ipv4() {
            return Err(bad(
                "the start and the end are of different address families",
            ));
        }
        return AddrRange::new(start, end).ok_or_else(|| bad("the end comes before the start"));
    }
    let net: IpNet = spec
        .trim()
        .parse()
        .map_err(|_| bad("expected ADDR/PREFIX or START-END"))?;
    let range = match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            if n.prefix_len() <= 30 {
                AddrRange::new(Ipv4Addr::from(lo + 1).into(), Ipv4Addr::from(hi - 1).into())
            } else {
                AddrRange::new(Ipv4Addr::from(lo).into(), Ipv4Addr::from(hi).into())
            }
        }
        IpNet::V6(n) => AddrRange::new(n.network().into(), n.broadcast().into()),
    };
    range.ok_or_else(|| bad("empty range"))
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
            (i, resolve(&name, pref).await)
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

/// The reverse-DNS name of `addr`, if it has one (runs the blocking
/// lookup on tokio's blocking pool).
pub async fn reverse(addr: IpAddr) -> Option<String> {
    tokio::task::spawn_blocking(move || crate::sys::rdns::name_of(addr))
        .await
        .ok()
        .flatten()
}

/// Resolve one host name to its first address of the wanted family.
pub async fn resolve(name: &str, pref: FamilyPref) -> Result<IpAddr, PingError> {
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

    fn expand(spec: &str) -> Vec<IpAddr> {
        parse_range(spec).unwrap().collect()
    }

    #[test]
    fn cidr_like_fping() {
        assert_eq!(expand("10.0.0.0/30"), vec![v4("10.0.0.1"), v4("10.0.0.2")]);
        assert_eq!(expand("10.0.0.0/31").len(), 2);
        assert_eq!(expand("10.0.0.7/32"), vec![v4("10.0.0.7")]);
        let big = parse_range("127.0.0.0/16").unwrap();
        assert_eq!(big.len(), 65534);
        assert_eq!(big.first(), Some(v4("127.0.0.1")));
        assert_eq!(big.last_addr(), v4("127.0.255.254"));
        assert_eq!(expand("2001:db8::/126").len(), 4);
    }

    #[test]
    fn huge_ranges_cost_nothing_until_walked() {
        let r = parse_range("::/0").unwrap();
        assert_eq!(r.len(), u128::MAX);
        let r = parse_range("::/104").unwrap();
        assert_eq!(r.len(), 1 << 24);
        let first: Vec<IpAddr> = parse_range("10.0.0.0/8").unwrap().take(2).collect();
        assert_eq!(first, vec![v4("10.0.0.1"), v4("10.0.0.2")]);
        assert_eq!(parse_range("0.0.0.0/0").unwrap().len(), (1u128 << 32) - 2);
        let mut top = AddrRange::new(
            v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
            v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        )
        .unwrap();
        assert_eq!(
            top.next(),
            Some(v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"))
        );
        assert_eq!(
            top.next(),
            Some(v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        );
        assert_eq!(top.next(), None);
        assert!(top.is_empty());
    }

    #[test]
    fn dash_ranges() {
        assert_eq!(expand("10.0.0.250-10.0.1.1").len(), 8);
        assert_eq!(expand("10.0.0.1-3").len(), 3);
        assert_eq!(expand("::1-::3").len(), 3);
        assert_eq!(expand("fe80::1-a").len(), 10);
    }

    #[test]
    fn bad_ranges_name_the_problem() {
        for (spec, why) in [
            ("10.0.0.5-10.0.0.1", "before"),
            ("10.0.0.1-::1", "families"),
            ("10.0.0.0/33", "ADDR/PREFIX"),
            ("x-10.0.0.1", "start"),
            ("10.0.0.1-300", "end"),
        ] {
            let e = parse_range(spec).unwrap_err().to_string();
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
            "no-such-host..invalid".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let r = resolve_all(&names, FamilyPref::V4, 4).await;
        assert_eq!(r[0].as_ref().unwrap(), &v4("127.0.0.1"));
        let e = r[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("no-such-host..invalid"), "{e}");
        assert!(r[2].is_ok());
    }
}
