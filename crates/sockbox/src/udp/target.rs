//! Broadcast destinations: every interface's directed broadcast address, and
//! telling a broadcast address from a unicast one.
//!
//! Sending to `255.255.255.255` leaves by one interface only (the one the
//! default route picks); sending to each interface's directed broadcast
//! (`10.0.0.255` on `10.0.0.0/24`) reaches every attached subnet. That is
//! what the PHP notes' "walk through all IPs" workaround was after.

use std::net::Ipv4Addr;

use crate::iface::{self, Interface};

use super::Error;

/// One interface's directed broadcast address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceBroadcast {
    /// The interface name.
    pub iface: String,
    /// Its directed broadcast address.
    pub broadcast: Ipv4Addr,
}

/// The directed broadcast address of every interface in `ifaces` that is up,
/// is not loopback and has `IFF_BROADCAST`, without duplicates.
pub fn broadcasts_of(ifaces: &[Interface]) -> Vec<IfaceBroadcast> {
    let mut out: Vec<IfaceBroadcast> = Vec::new();
    for i in ifaces.iter().filter(|i| i.is_usable_non_loopback()) {
        for (_, b) in i.broadcasts() {
            if out.iter().all(|o| o.broadcast != b) {
                out.push(IfaceBroadcast {
                    iface: i.name.clone(),
                    broadcast: b,
                });
            }
        }
    }
    out
}

/// [`broadcasts_of`] this machine's interfaces; an error when there is none.
pub fn interface_broadcasts() -> Result<Vec<IfaceBroadcast>, Error> {
    let v = broadcasts_of(&iface::list()?);
    if v.is_empty() {
        return Err(Error::NoBroadcastInterface);
    }
    Ok(v)
}

/// The directed broadcast addresses of the interface called `name`, which
/// must exist and be up.
pub fn iface_broadcasts(name: &str) -> Result<Vec<IfaceBroadcast>, Error> {
    let i = iface::by_name(name)?;
    if !i.flags.up {
        return Err(Error::IfaceDown {
            name: name.to_owned(),
        });
    }
    let v = broadcasts_of(std::slice::from_ref(&i));
    if v.is_empty() {
        return Err(Error::NoBroadcastOn {
            name: name.to_owned(),
        });
    }
    Ok(v)
}

/// What kind of IPv4 destination an address is, for broadcast checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `255.255.255.255`.
    Limited,
    /// The broadcast address of a local interface (named).
    Interface(String),
    /// Not a local subnet's broadcast, but its last octet is 255, so it can be
    /// the directed broadcast of a remote /24 or larger subnet.
    MaybeDirected,
    /// A multicast group (224.0.0.0/4).
    Multicast,
    /// Anything else: a host address.
    Unicast,
}

impl Kind {
    /// True for the kinds that need `SO_BROADCAST` to send to.
    pub fn is_broadcast(&self) -> bool {
        matches!(
            self,
            Self::Limited | Self::Interface(_) | Self::MaybeDirected
        )
    }
}

/// Classify `ip` against the interfaces `ifaces`.
pub fn classify(ip: Ipv4Addr, ifaces: &[Interface]) -> Kind {
    if ip.is_broadcast() {
        return Kind::Limited;
    }
    if ip.is_multicast() {
        return Kind::Multicast;
    }
    for i in ifaces {
        if i.ipv4().any(|(_, b)| b == Some(ip)) {
            return Kind::Interface(i.name.clone());
        }
    }
    // A local interface address ending in .255 (possible on a /23) is a host.
    if ip.octets()[3] == 255 && !ifaces.iter().any(|i| i.ipv4().any(|(n, _)| n.addr() == ip)) {
        return Kind::MaybeDirected;
    }
    Kind::Unicast
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::fixture::iface;

    fn sample() -> Vec<Interface> {
        vec![
            iface("lo", 1, true, &[("127.0.0.1/8", None)]),
            iface(
                "eth0",
                2,
                true,
                &[
                    ("10.0.0.5/24", Some("10.0.0.255")),
                    ("fe80::1/64", None),
                    ("10.0.0.6/24", Some("10.0.0.255")),
                ],
            ),
            iface(
                "eth1",
                3,
                true,
                &[("192.168.2.255/23", Some("192.168.3.255"))],
            ),
            iface(
                "down0",
                4,
                false,
                &[("172.16.0.1/16", Some("172.16.255.255"))],
            ),
        ]
    }

    #[test]
    fn every_up_interface_once() {
        let b = broadcasts_of(&sample());
        assert_eq!(
            b,
            vec![
                IfaceBroadcast {
                    iface: "eth0".into(),
                    broadcast: "10.0.0.255".parse().unwrap()
                },
                IfaceBroadcast {
                    iface: "eth1".into(),
                    broadcast: "192.168.3.255".parse().unwrap()
                },
            ]
        );
    }

    #[test]
    fn kinds() {
        let s = sample();
        let k = |a: &str| classify(a.parse().unwrap(), &s);
        assert_eq!(k("255.255.255.255"), Kind::Limited);
        assert_eq!(k("10.0.0.255"), Kind::Interface("eth0".into()));
        assert_eq!(k("172.16.255.255"), Kind::Interface("down0".into()));
        assert_eq!(k("10.9.9.255"), Kind::MaybeDirected);
        // A host address on a /23 that happens to end in .255.
        assert_eq!(k("192.168.2.255"), Kind::Unicast);
        assert_eq!(k("10.0.0.7"), Kind::Unicast);
        assert_eq!(k("239.1.2.3"), Kind::Multicast);
        assert!(k("10.9.9.255").is_broadcast());
        assert!(!k("10.0.0.7").is_broadcast());
    }
}
