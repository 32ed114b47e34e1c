//! IPv4 and IPv6 multicast: joining a group on a chosen interface (any
//! source, or source-specific), and the sending options (interface, TTL /
//! hop limit, loopback).
//!
//! The interface is always chosen explicitly when the user names one:
//! `IP_ADD_MEMBERSHIP` with an `ip_mreqn` interface index, `IPV6_JOIN_GROUP`
//! with the index, and `IP_MULTICAST_IF` / `IPV6_MULTICAST_IF` for sending,
//! so no multicast route is needed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::str::FromStr;

use socket2::{InterfaceIndexOrAddress, Socket};

use super::Error;
use crate::iface;

/// An interface named on the command line: by name (`eth0`) or by one of its
/// addresses (`10.0.0.5`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfaceSpec {
    /// The interface's kernel name.
    Name(String),
    /// An address the interface carries.
    Addr(IpAddr),
}

impl FromStr for IfaceSpec {
    type Err = std::convert::Infallible;

    /// An IP address parses as [`IfaceSpec::Addr`], anything else is a name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<IpAddr>() {
            Ok(ip) => Self::Addr(ip),
            Err(_) => Self::Name(s.to_owned()),
        })
    }
}

impl fmt::Display for IfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// An interface looked up on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedIface {
    /// Kernel name.
    pub name: String,
    /// Kernel index.
    pub index: u32,
    /// The IPv4 address to use for it: the one it was named by,
    /// else its first IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
}

/// Find the interface `spec` names.
pub fn resolve_iface(spec: &IfaceSpec) -> Result<ResolvedIface, Error> {
    match spec {
        IfaceSpec::Name(n) => {
            let i = iface::by_name(n)?;
            let ipv4 = i.first_ipv4();
            Ok(ResolvedIface {
                ipv4,
                name: i.name,
                index: i.index,
            })
        }
        IfaceSpec::Addr(ip) => {
            let ip = ip.to_canonical();
            let i = iface::by_address(ip)?.ok_or(Error::NoIfaceWithAddress(ip))?;
            let ipv4 = match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => i.first_ipv4(),
            };
            Ok(ResolvedIface {
                name: i.name,
                index: i.index,
                ipv4,
            })
        }
    }
}

/// `Ok` when `ip` is a multicast group address.
pub fn check_group(ip: IpAddr) -> Result<(), Error> {
    if ip.is_multicast() {
        Ok(())
    } else {
        Err(Error::NotMulticast(ip))
    }
}

/// True for IPv6 groups whose scope needs an interface (interface- and
/// link-local: `ff01::/16`, `ff02::/16` and their flag variants).
pub fn needs_interface(group: IpAddr) -> bool {
    match group {
        IpAddr::V6(g) => matches!(g.segments()[0] & 0xff0f, 0xff01 | 0xff02),
        IpAddr::V4(_) => false,
    }
}

/// A group membership for a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group to join.
    pub group: IpAddr,
    /// The interface to join on; `None` lets the kernel choose by route.
    pub iface: Option<IfaceSpec>,
    /// Accept only datagrams from this source (source-specific multicast).
    pub source: Option<IpAddr>,
}

impl Membership {
    /// Check the addresses without touching the system.
    pub fn validate(&self) -> Result<(), Error> {
        check_group(self.group)?;
        if let Some(src) = self.source
            && src.is_ipv4() != self.group.is_ipv4()
        {
            return Err(Error::SourceFamily {
                src,
                group: self.group,
            });
        }
        Ok(())
    }

    /// Resolve the interface, if one was named.
    pub fn resolve(&self) -> Result<Option<ResolvedIface>, Error> {
        self.iface.as_ref().map(resolve_iface).transpose()
    }

    /// The address a listener binds for this membership on `port`: the group
    /// itself, so the socket sees this group's datagrams and not every
    /// datagram to the port (IPv6 link-scope groups carry the interface as
    /// scope id).
    pub fn bind_addr(&self, port: u16, iface: Option<&ResolvedIface>) -> SocketAddr {
        match self.group {
            IpAddr::V4(g) => SocketAddr::new(IpAddr::V4(g), port),
            IpAddr::V6(g) => {
                let scope = if needs_interface(self.group) {
                    iface.map_or(0, |i| i.index)
                } else {
                    0
                };
                SocketAddr::V6(SocketAddrV6::new(g, port, 0, scope))
            }
        }
    }

    /// Join the group on `sock` (already resolved interface in `iface`).
    pub(crate) fn join(&self, sock: &Socket, iface: Option<&ResolvedIface>) -> Result<(), Error> {
        let join_err = |source| Error::Join {
            group: self.group,
            iface: iface.map(|i| i.name.clone()),
            source,
        };
        match (self.group, self.source) {
            (IpAddr::V4(g), None) => {
                let how = iface.map_or(
                    InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
                    |i| InterfaceIndexOrAddress::Index(i.index),
                );
                sock.join_multicast_v4_n(&g, &how).map_err(join_err)
            }
            (IpAddr::V4(g), Some(IpAddr::V4(s))) => {
                // ip_mreq_source names the interface by address only.
                let local = match iface {
                    None => Ipv4Addr::UNSPECIFIED,
                    Some(i) => i.ipv4.ok_or_else(|| Error::IfaceNoIpv4 {
                        iface: i.name.clone(),
                    })?,
                };
                sock.join_ssm_v4(&s, &g, &local).map_err(join_err)
            }
            (IpAddr::V6(g), None) => sock
                .join_multicast_v6(&g, iface.map_or(0, |i| i.index))
                .map_err(join_err),
            (IpAddr::V6(g), Some(IpAddr::V6(s))) => crate::sys::mcast::join_source_group_v6(
                sock.as_fd(),
                g,
                s,
                iface.map_or(0, |i| i.index),
            )
            .map_err(join_err),
            (group, Some(src)) => Err(Error::SourceFamily { src, group }),
        }
    }
}

/// Options for sending to a multicast group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// IPv4 TTL / IPv6 hop limit; `None` keeps the kernel default (1).
    pub ttl: Option<u32>,
    /// Whether this host's own listeners get a copy; `None` keeps the
    /// kernel default (on).
    pub loopback: Option<bool>,
    /// The interface datagrams leave by; `None` lets the routing table choose.
    pub iface: Option<IfaceSpec>,
}

impl SendOptions {
    /// Apply to a socket of the family of `group`.
    pub(crate) fn apply(&self, sock: &Socket, group: IpAddr) -> Result<(), Error> {
        let opt = |what: &'static str| move |source| Error::SockOpt { what, source };
        let iface = self.iface.as_ref().map(resolve_iface).transpose()?;
        if group.is_ipv4() {
            if let Some(ttl) = self.ttl {
                sock.set_multicast_ttl_v4(ttl)
                    .map_err(opt("IP_MULTICAST_TTL"))?;
            }
            if let Some(l) = self.loopback {
                sock.set_multicast_loop_v4(l)
                    .map_err(opt("IP_MULTICAST_LOOP"))?;
            }
            if let Some(i) = iface {
                let addr = i.ipv4.ok_or(Error::IfaceNoIpv4 { iface: i.name })?;
                sock.set_multicast_if_v4(&addr)
                    .map_err(opt("IP_MULTICAST_IF"))?;
            }
        } else {
            if let Some(ttl) = self.ttl {
                sock.set_multicast_hops_v6(ttl)
                    .map_err(opt("IPV6_MULTICAST_HOPS"))?;
            }
            if let Some(l) = self.loopback {
                sock.set_multicast_loop_v6(l)
                    .map_err(opt("IPV6_MULTICAST_LOOP"))?;
            }
            if let Some(i) = iface {
                sock.set_multicast_if_v6(i.index)
                    .map_err(opt("IPV6_MULTICAST_IF"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Type};

    #[test]
    fn iface_spec_parses_address_or_name() {
        assert_eq!(
            "10.0.0.1".parse::<IfaceSpec>().unwrap(),
            IfaceSpec::Addr("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            "eth0".parse::<IfaceSpec>().unwrap(),
            IfaceSpec::Name("eth0".into())
        );
    }

    #[test]
    fn groups_and_sources_are_validated() {
        assert!(check_group("239.1.2.3".parse().unwrap()).is_ok());
        assert!(check_group("ff02::1".parse().unwrap()).is_ok());
        assert!(matches!(
            check_group("10.0.0.1".parse().unwrap()),
            Err(Error::NotMulticast(_))
        ));
        let m = Membership {
            group: "232.1.1.1".parse().unwrap(),
            iface: None,
            source: Some("fe80::1".parse().unwrap()),
        };
        assert!(matches!(m.validate(), Err(Error::SourceFamily { .. })));
    }

    #[test]
    fn link_scope_groups_bind_with_the_interface() {
        let lo = ResolvedIface {
            name: "lo".into(),
            index: 7,
            ipv4: None,
        };
        let m = Membership {
            group: "ff02::1:3".parse().unwrap(),
            iface: None,
            source: None,
        };
        assert_eq!(
            m.bind_addr(5355, Some(&lo)),
            "[ff02::1:3%7]:5355".parse().unwrap()
        );
        let m = Membership {
            group: "ff05::1:3".parse().unwrap(),
            ..m
        };
        assert_eq!(
            m.bind_addr(5355, Some(&lo)),
            "[ff05::1:3]:5355".parse().unwrap()
        );
        assert!(needs_interface("ff12::1".parse().unwrap()));
        assert!(!needs_interface("ff0e::1".parse().unwrap()));
    }

    #[test]
    fn send_options_read_back() {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        let o = SendOptions {
            ttl: Some(7),
            loopback: Some(false),
            iface: Some(IfaceSpec::Addr("127.0.0.1".parse().unwrap())),
        };
        o.apply(&s, "239.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(s.multicast_ttl_v4().unwrap(), 7);
        assert!(!s.multicast_loop_v4().unwrap());
        assert_eq!(s.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn unknown_interface_is_an_input_error() {
        let e = resolve_iface(&IfaceSpec::Name("sbxnope0".into())).unwrap_err();
        assert!(e.is_input(), "{e}");
        let e = resolve_iface(&IfaceSpec::Addr("192.0.2.77".parse().unwrap())).unwrap_err();
        assert!(e.is_input(), "{e}");
    }
}
