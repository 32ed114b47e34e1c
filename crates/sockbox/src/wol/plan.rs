//! Where a magic packet goes: from the options and the interface list to a
//! list of [`Route`]s. Pure (no sockets), so dry runs and tests use it as is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use serde::Serialize;
use sockbox_wire::mac::MacAddr;

use super::Error;
use crate::iface::{self, Interface};

/// `ff02::1`, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An interface a route is tied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IfaceRef {
    /// Kernel name.
    pub name: String,
    /// Kernel index.
    pub index: u32,
}

/// One way a packet leaves this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Route {
    /// A UDP datagram.
    Udp {
        /// Destination (with scope id for link-local IPv6).
        dest: SocketAddr,
        /// Interface the socket is bound to (SO_BINDTODEVICE), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        iface: Option<IfaceRef>,
        /// Source address the socket is bound to, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<IpAddr>,
    },
    /// An Ethernet frame with ethertype 0x0842.
    Raw {
        /// Interface to send on.
        iface: IfaceRef,
        /// Destination hardware address.
        #[serde(serialize_with = "ser_display")]
        dest: MacAddr,
    },
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_display<S: serde::Serializer>(m: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(m)
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp {
                dest,
                iface,
                source,
            } => {
                match dest {
                    // The zone is shown as the interface name below.
                    SocketAddr::V6(d) if iface.is_some() => {
                        write!(f, "udp [{}]:{}", d.ip(), d.port())?;
                    }
                    d => write!(f, "udp {d}")?,
                }
                if let Some(i) = iface {
                    write!(f, " on {}", i.name)?;
                }
                if let Some(s) = source {
                    write!(f, " from {s}")?;
                }
                Ok(())
            }
            Self::Raw { iface, dest } => {
                write!(f, "ethernet 0x0842 to {dest} on {}", iface.name)
            }
        }
    }
}

/// What to send to, before looking at the interfaces.
#[derive(Clone, Debug, Default)]
pub struct SendConfig {
    /// The directed broadcast address of every usable IPv4 interface.
    pub broadcast: bool,
    /// Explicit UDP destinations. `255.255.255.255` is sent on every
    /// broadcast-capable interface (bound to it), not via the default route.
    pub to: Vec<SocketAddr>,
    /// `ff02::1` on every usable interface with IPv6.
    pub ipv6: bool,
    /// Interfaces to send raw 0x0842 frames on.
    pub raw: Vec<String>,
    /// Send raw frames to the target's MAC instead of ff:ff:ff:ff:ff:ff.
    pub raw_unicast: bool,
    /// Restrict broadcast, `ff02::1` and `to` to these interfaces.
    pub ifaces: Vec<String>,
    /// UDP port for broadcast and `ff02::1` (and `to` without a port,
    /// which the caller resolves).
    pub port: u16,
}

/// The routes for one target, and the interfaces passed over with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Where the packet goes.
    pub routes: Vec<Route>,
    /// `(interface, reason)` for usable-looking interfaces left out.
    pub skipped: Vec<(String, String)>,
}

pub(crate) fn iref(i: &Interface) -> IfaceRef {
    IfaceRef {
        name: i.name.clone(),
        index: i.index,
    }
}

/// Look up the named interfaces, which must exist and be up.
pub(crate) fn named<'a>(
    all: &'a [Interface],
    names: &[String],
) -> Result<Vec<&'a Interface>, Error> {
    names
        .iter()
        .map(|n| {
            let i = iface::find(all, n)?;
            if !i.flags.up {
                return Err(Error::InterfaceDown { name: n.clone() });
            }
            Ok(i)
        })
        .collect()
}

fn first_addr(i: &Interface, v6: bool) -> Option<IpAddr> {
    if v6 {
        let all: Vec<IpAddr> = i
            .addresses
            .iter()
            .map(iface::Address::ip)
            .filter(IpAddr::is_ipv6)
            .collect();
        // Link-local first: it is the one ff02::1 is sent from.
        all.iter()
            .copied()
            .find(|a| matches!(a, IpAddr::V6(v) if iface::is_ipv6_link_local(*v)))
            .or_else(|| all.first().copied())
    } else {
        i.first_ipv4().map(IpAddr::V4)
    }
}

/// Work out the routes for one target MAC.
pub fn plan(cfg: &SendConfig, target: MacAddr, all: &[Interface]) -> Result<Plan, Error> {
    let restricted = !cfg.ifaces.is_empty();
    let candidates: Vec<&Interface> = if restricted {
        named(all, &cfg.ifaces)?
    } else {
        all.iter().filter(|i| i.is_usable_non_loopback()).collect()
    };
    let mut plan = Plan::default();
    if cfg.broadcast {
        broadcasts(cfg, &candidates, restricted, &mut plan)?;
    }
    for dest in &cfg.to {
        to_dest(*dest, &candidates, restricted, &mut plan)?;
    }
    if cfg.ipv6 {
        all_nodes(cfg.port, &candidates, &mut plan)?;
    }
    for i in named(all, &cfg.raw)? {
        plan.routes.push(Route::Raw {
            iface: iref(i),
            dest: if cfg.raw_unicast {
                target
            } else {
                MacAddr::BROADCAST
            },
        });
    }
    Ok(plan)
}

/// The directed broadcast of every candidate, bound to its interface.
fn broadcasts(
    cfg: &SendConfig,
    candidates: &[&Interface],
    restricted: bool,
    plan: &mut Plan,
) -> Result<(), Error> {
    let before = plan.routes.len();
    for i in candidates {
        let b: Vec<(Ipv4Addr, Ipv4Addr)> = i.broadcasts().collect();
        if b.is_empty() {
            if restricted {
                return Err(Error::NoBroadcastOn {
                    name: i.name.clone(),
                });
            }
            plan.skipped
                .push((i.name.clone(), "no IPv4 broadcast address".to_owned()));
        }
        for (src, bcast) in b {
            let r = Route::Udp {
                dest: SocketAddr::V4(SocketAddrV4::new(bcast, cfg.port)),
                iface: Some(iref(i)),
                source: Some(IpAddr::V4(src)),
            };
            if !plan.routes.contains(&r) {
                plan.routes.push(r);
            }
        }
    }
    if plan.routes.len() == before {
        if cfg.to.is_empty() && !cfg.ipv6 && cfg.raw.is_empty() {
            return Err(Error::NoBroadcastInterface);
        }
        plan.skipped.push((
            "*".to_owned(),
            "no interface has an IPv4 broadcast address".to_owned(),
        ));
    }
    Ok(())
}

/// One explicit destination: the limited broadcast on every
/// broadcast-capable candidate, another address bound to each named
/// interface, or by route.
fn to_dest(
    dest: SocketAddr,
    candidates: &[&Interface],
    restricted: bool,
    plan: &mut Plan,
) -> Result<(), Error> {
    if dest.ip() == IpAddr::V4(Ipv4Addr::BROADCAST) {
        // The limited broadcast follows the default route unless bound:
        // send it on every broadcast-capable interface instead.
        let mut any = false;
        for i in candidates
            .iter()
            .filter(|i| i.broadcasts().next().is_some())
        {
            any = true;
            plan.routes.push(Route::Udp {
                dest,
                iface: Some(iref(i)),
                source: first_addr(i, false),
            });
        }
        if !any {
            return Err(Error::NoBroadcastInterface);
        }
    } else if restricted {
        for i in candidates {
            plan.routes.push(Route::Udp {
                dest,
                iface: Some(iref(i)),
                source: first_addr(i, dest.is_ipv6()),
            });
        }
    } else {
        plan.routes.push(Route::Udp {
            dest,
            iface: None,
            source: None,
        });
    }
    Ok(())
}

/// `ff02::1` on every multicast-capable candidate with an IPv6 address.
fn all_nodes(port: u16, candidates: &[&Interface], plan: &mut Plan) -> Result<(), Error> {
    let mut any = false;
    for i in candidates {
        let src = first_addr(i, true);
        if !i.flags.multicast || src.is_none() {
            plan.skipped.push((
                i.name.clone(),
                if i.flags.multicast {
                    "no IPv6 address".to_owned()
                } else {
                    "not multicast-capable".to_owned()
                },
            ));
            continue;
        }
        any = true;
        plan.routes.push(Route::Udp {
            dest: SocketAddr::V6(SocketAddrV6::new(ALL_NODES, port, 0, i.index)),
            iface: Some(iref(i)),
            source: src,
        });
    }
    if any {
        Ok(())
    } else {
        Err(Error::NoIpv6Interface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::fixture::iface as ifc;

    fn machine() -> Vec<Interface> {
        vec![
            ifc("lo", 1, true, &[("127.0.0.1/8", None), ("::1/128", None)]),
            ifc(
                "eth0",
                2,
                true,
                &[("10.1.0.5/24", Some("10.1.0.255")), ("fe80::1/64", None)],
            ),
            ifc(
                "eth1",
                3,
                true,
                &[("192.168.7.2/16", Some("192.168.255.255"))],
            ),
            ifc("eth2", 4, false, &[("10.9.0.1/24", Some("10.9.0.255"))]),
            ifc("tun0", 5, true, &[("10.8.0.2/32", None)]),
        ]
    }

    const M: MacAddr = MacAddr([0, 0x11, 0x22, 0x33, 0x44, 0x55]);

    fn cfg() -> SendConfig {
        SendConfig {
            broadcast: true,
            port: 9,
            ..SendConfig::default()
        }
    }

    fn shown(p: &Plan) -> Vec<String> {
        p.routes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn default_is_every_up_non_loopback_broadcast_bound_to_its_interface() {
        let p = plan(&cfg(), M, &machine()).unwrap();
        assert_eq!(
            shown(&p),
            [
                "udp 10.1.0.255:9 on eth0 from 10.1.0.5",
                "udp 192.168.255.255:9 on eth1 from 192.168.7.2"
            ]
        );
        assert_eq!(
            p.skipped,
            [("tun0".to_owned(), "no IPv4 broadcast address".to_owned())]
        );
    }

    #[test]
    fn iface_restricts_and_checks() {
        let mut c = cfg();
        c.ifaces = vec!["eth1".into()];
        assert_eq!(
            shown(&plan(&c, M, &machine()).unwrap()),
            ["udp 192.168.255.255:9 on eth1 from 192.168.7.2"]
        );
        c.ifaces = vec!["eth2".into()];
        assert!(matches!(
            plan(&c, M, &machine()),
            Err(Error::InterfaceDown { .. })
        ));
        c.ifaces = vec!["nope0".into()];
        let e = plan(&c, M, &machine()).unwrap_err();
        assert!(e.to_string().contains("nope0") && e.is_usage(), "{e}");
        c.ifaces = vec!["tun0".into()];
        assert!(matches!(
            plan(&c, M, &machine()),
            Err(Error::NoBroadcastOn { .. })
        ));
    }

    #[test]
    fn no_broadcast_interface_suggests_an_address() {
        let only_lo = vec![machine().remove(0), machine().remove(4)];
        let e = plan(&cfg(), M, &only_lo).unwrap_err();
        assert!(matches!(e, Error::NoBroadcastInterface));
        assert!(
            e.to_string().contains("send to the target's address"),
            "{e}"
        );
        // With an explicit destination it is not an error.
        let mut c = cfg();
        c.broadcast = false;
        c.to = vec!["203.0.113.9:9".parse().unwrap()];
        assert_eq!(
            shown(&plan(&c, M, &only_lo).unwrap()),
            ["udp 203.0.113.9:9"]
        );
    }

    #[test]
    fn to_unicast_limited_broadcast_and_bound() {
        let mut c = cfg();
        c.broadcast = false;
        c.to = vec![
            "203.0.113.9:7".parse().unwrap(),
            "255.255.255.255:9".parse().unwrap(),
        ];
        assert_eq!(
            shown(&plan(&c, M, &machine()).unwrap()),
            [
                "udp 203.0.113.9:7",
                "udp 255.255.255.255:9 on eth0 from 10.1.0.5",
                "udp 255.255.255.255:9 on eth1 from 192.168.7.2"
            ]
        );
        c.ifaces = vec!["eth0".into()];
        c.to.truncate(1);
        assert_eq!(
            shown(&plan(&c, M, &machine()).unwrap()),
            ["udp 203.0.113.9:7 on eth0 from 10.1.0.5"]
        );
    }

    #[test]
    fn ipv6_all_nodes_per_interface_with_scope() {
        let mut c = cfg();
        c.broadcast = false;
        c.ipv6 = true;
        let p = plan(&c, M, &machine()).unwrap();
        assert_eq!(shown(&p), ["udp [ff02::1]:9 on eth0 from fe80::1"]);
        let Route::Udp {
            dest: SocketAddr::V6(d),
            ..
        } = &p.routes[0]
        else {
            panic!()
        };
        assert_eq!(d.scope_id(), 2);
        c.ifaces = vec!["eth1".into()];
        assert!(matches!(
            plan(&c, M, &machine()),
            Err(Error::NoIpv6Interface)
        ));
    }

    #[test]
    fn raw_broadcast_or_unicast() {
        let mut c = cfg();
        c.broadcast = false;
        c.raw = vec!["eth1".into()];
        assert_eq!(
            shown(&plan(&c, M, &machine()).unwrap()),
            ["ethernet 0x0842 to ff:ff:ff:ff:ff:ff on eth1"]
        );
        c.raw_unicast = true;
        assert_eq!(
            shown(&plan(&c, M, &machine()).unwrap()),
            ["ethernet 0x0842 to 00:11:22:33:44:55 on eth1"]
        );
        c.raw = vec!["eth2".into()];
        assert!(matches!(
            plan(&c, M, &machine()),
            Err(Error::InterfaceDown { .. })
        ));
    }

    #[test]
    fn routes_serialize_for_json() {
        let p = plan(&cfg(), M, &machine()).unwrap();
        let j = serde_json::to_string(&p.routes[0]).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"udp","dest":"10.1.0.255:9","iface":{"name":"eth0","index":2},"source":"10.1.0.5"}"#
        );
    }
}
