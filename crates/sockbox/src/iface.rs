//! Network interfaces from `getifaddrs(3)`: name, index, flags, MTU, MAC and
//! every address with its prefix and broadcast address. Never scrapes the
//! output of another command.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nix::net::if_::InterfaceFlags;
use serde::Serialize;

/// Errors from listing interfaces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `getifaddrs(3)` failed.
    #[error("cannot list network interfaces (getifaddrs failed): {0}")]
    GetIfAddrs(#[source] nix::Error),
    /// No interface has the requested name.
    #[error(
        "no network interface named {name:?}; `sockbox ifaces` lists the ones this machine has"
    )]
    NotFound {
        /// The name that was asked for.
        name: String,
    },
}

/// The flags sockbox cares about, decoded from `IFF_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Flags {
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: the link is up (carrier).
    pub running: bool,
    /// `IFF_BROADCAST`: the interface has a broadcast address.
    pub broadcast: bool,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
    /// `IFF_POINTOPOINT`.
    pub point_to_point: bool,
    /// `IFF_MULTICAST`.
    pub multicast: bool,
}

impl Flags {
    fn from_nix(f: InterfaceFlags) -> Self {
        Self {
            up: f.contains(InterfaceFlags::IFF_UP),
            running: f.contains(InterfaceFlags::IFF_RUNNING),
            broadcast: f.contains(InterfaceFlags::IFF_BROADCAST),
            loopback: f.contains(InterfaceFlags::IFF_LOOPBACK),
            point_to_point: f.contains(InterfaceFlags::IFF_POINTOPOINT),
            multicast: f.contains(InterfaceFlags::IFF_MULTICAST),
        }
    }

    /// The set flags as short upper-case names, like `ip link` shows them.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (set, name) in [
            (self.up, "UP"),
            (self.running, "RUNNING"),
            (self.broadcast, "BROADCAST"),
            (self.loopback, "LOOPBACK"),
            (self.point_to_point, "POINTOPOINT"),
            (self.multicast, "MULTICAST"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

/// One address of an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The address with its prefix length, e.g. `192.168.1.10/24`.
    pub net: IpNet,
    /// The broadcast address (IPv4 with `IFF_BROADCAST` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Ipv4Addr>,
    /// The peer address of a point-to-point link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
}

impl Address {
    /// The address without its prefix.
    pub fn ip(&self) -> IpAddr {
        self.net.addr()
    }
}

/// A network interface and all its addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Kernel index (`if_nametoindex`), 0 when unknown.
    pub index: u32,
    /// Decoded flags.
    pub flags: Flags,
    /// MTU in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Hardware address, when the interface has one (loopback reports all zeros).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_mac")]
    pub mac: Option<[u8; 6]>,
    /// IPv4 and IPv6 addresses in the order the kernel reports them.
    pub addresses: Vec<Address>,
}

#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn ser_mac<S: serde::Serializer>(mac: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match mac {
        Some(m) => s.serialize_str(&format_mac(m)),
        None => s.serialize_none(),
    }
}

/// `aa:bb:cc:dd:ee:ff`, lower case.
pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl Interface {
    /// IPv4 addresses with their broadcast addresses.
    pub fn ipv4(&self) -> impl Iterator<Item = (Ipv4Net, Option<Ipv4Addr>)> + '_ {
        self.addresses.iter().filter_map(|a| match a.net {
            IpNet::V4(n) => Some((n, a.broadcast)),
            IpNet::V6(_) => None,
        })
    }

    /// IPv6 addresses.
    pub fn ipv6(&self) -> impl Iterator<Item = Ipv6Net> + '_ {
        self.addresses.iter().filter_map(|a| match a.net {
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => None,
        })
    }

    /// Its first IPv4 address, if any.
    pub fn first_ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4().next().map(|(n, _)| n.addr())
    }

    /// `(local address, directed broadcast address)` of each IPv4 address,
    /// when the interface has `IFF_BROADCAST`.
    pub fn broadcasts(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.ipv4()
            .filter(|_| self.flags.broadcast)
            .filter_map(|(net, b)| b.map(|b| (net.addr(), b)))
    }

    /// True when the interface is up and is not loopback.
    pub fn is_usable_non_loopback(&self) -> bool {
        self.flags.up && !self.flags.loopback
    }
}

fn prefix_len(mask: IpAddr) -> u8 {
    match mask {
        IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
        IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
    }
}

fn storage_ip(s: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Every interface on this machine, sorted by index then name.
pub fn list() -> Result<Vec<Interface>, Error> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(Error::GetIfAddrs)? {
        let entry = by_name
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| Interface {
                index: nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0),
                mtu: crate::sys::linux::iface_mtu(&ifa.interface_name),
                name: ifa.interface_name.clone(),
                flags: Flags::from_nix(ifa.flags),
                mac: None,
                addresses: Vec::new(),
            });
        let Some(addr) = ifa.address.as_ref() else {
            continue;
        };
        if let Some(link) = addr.as_link_addr() {
            if let Some(mac) = link.addr() {
                entry.mac = Some(mac);
            }
            continue;
        }
        let Some(ip) = storage_ip(addr) else { continue };
        let prefix = ifa
            .netmask
            .as_ref()
            .and_then(storage_ip)
            .map_or(if ip.is_ipv4() { 32 } else { 128 }, prefix_len);
        let net = match ip {
            IpAddr::V4(a) => Ipv4Net::new(a, prefix.min(32)).map(IpNet::V4),
            IpAddr::V6(a) => Ipv6Net::new(a, prefix.min(128)).map(IpNet::V6),
        };
        let Ok(net) = net else { continue };
        let flags = entry.flags;
        let mut broadcast = None;
        let mut peer = None;
        if flags.broadcast {
            // Without an explicit `brd`, glibc reports the local address (or
            // 0.0.0.0) here while the kernel still routes the subnet's
            // directed broadcast: fall back to computing it from the prefix.
            broadcast = match ifa.broadcast.as_ref().and_then(storage_ip) {
                Some(IpAddr::V4(b)) if !b.is_unspecified() && IpAddr::V4(b) != ip => Some(b),
                _ => match net {
                    IpNet::V4(n) if n.prefix_len() < 31 => Some(n.broadcast()),
                    _ => None,
                },
            };
        } else if flags.point_to_point {
            peer = ifa.destination.as_ref().and_then(storage_ip);
        }
        if net.addr().is_ipv6() {
            broadcast = None;
        }
        entry.addresses.push(Address {
            net,
            broadcast,
            peer,
        });
    }
    let mut v: Vec<Interface> = by_name.into_values().collect();
    v.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.name.cmp(&b.name)));
    Ok(v)
}

/// The interface called `name` in `all` (a [`list`] already taken).
pub fn find<'a>(all: &'a [Interface], name: &str) -> Result<&'a Interface, Error> {
    all.iter()
        .find(|i| i.name == name)
        .ok_or_else(|| Error::NotFound {
            name: name.to_owned(),
        })
}

/// The interface called `name`.
pub fn by_name(name: &str) -> Result<Interface, Error> {
    find(&list()?, name).cloned()
}

/// The first interface that carries address `ip`, if any.
pub fn by_address(ip: IpAddr) -> Result<Option<Interface>, Error> {
    Ok(list()?
        .into_iter()
        .find(|i| i.addresses.iter().any(|a| a.ip() == ip)))
}

/// True for IPv6 link-local unicast (`fe80::/10`).
pub fn is_ipv6_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Interfaces made up for the unit tests of the modules that pick among
/// them (`wol::plan`, `udp::target`).
#[cfg(test)]
pub(crate) mod fixture {
    use super::{Address, Flags, Interface};

    /// An interface called `name`: `lo…` is loopback and `tun…`
    /// point-to-point (neither has `IFF_BROADCAST` or `IFF_MULTICAST`), any
    /// other name an Ethernet with MAC `02:00:00:00:00:INDEX`. Addresses as
    /// `("10.0.0.5/24", Some("10.0.0.255"))`.
    pub(crate) fn iface(
        name: &str,
        index: u32,
        up: bool,
        addrs: &[(&str, Option<&str>)],
    ) -> Interface {
        let lo = name.starts_with("lo");
        let tun = name.starts_with("tun");
        Interface {
            name: name.into(),
            index,
            flags: Flags {
                up,
                running: up,
                broadcast: !lo && !tun,
                loopback: lo,
                point_to_point: tun,
                multicast: !lo,
            },
            mtu: Some(1500),
            mac: Some([2, 0, 0, 0, 0, index as u8]),
            addresses: addrs
                .iter()
                .map(|(n, b)| Address {
                    net: n.parse().unwrap(),
                    broadcast: b.map(|b| b.parse().unwrap()),
                    peer: None,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_from_masks() {
        assert_eq!(prefix_len(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0))), 24);
        assert_eq!(prefix_len(IpAddr::V4(Ipv4Addr::BROADCAST)), 32);
        assert_eq!(prefix_len(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 0);
        assert_eq!(
            prefix_len(IpAddr::V6("ffff:ffff:ffff:ffff::".parse().unwrap())),
            64
        );
    }

    #[test]
    fn loopback_is_listed_with_its_address() {
        let all = list().unwrap();
        let lo = all
            .iter()
            .find(|i| i.flags.loopback)
            .expect("a loopback interface");
        assert!(lo.flags.up);
        assert!(lo.index > 0);
        assert!(
            lo.addresses
                .iter()
                .any(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{lo:?}"
        );
    }

    #[test]
    fn unknown_name_is_a_clear_error() {
        let e = by_name("sockbox-nope0").unwrap_err();
        assert!(e.to_string().contains("sockbox-nope0"));
    }

    #[test]
    fn queries_on_an_interface() {
        let eth = fixture::iface(
            "eth0",
            2,
            true,
            &[
                ("fe80::1/64", None),
                ("10.0.0.5/24", Some("10.0.0.255")),
                ("10.0.1.5/31", None),
            ],
        );
        assert_eq!(eth.first_ipv4(), Some(Ipv4Addr::new(10, 0, 0, 5)));
        let b: Vec<_> = eth.broadcasts().collect();
        assert_eq!(
            b,
            [(Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 255))]
        );
        let tun = fixture::iface("tun0", 3, true, &[("10.8.0.2/24", Some("10.8.0.255"))]);
        assert_eq!(tun.broadcasts().count(), 0, "no IFF_BROADCAST");
        let all = [eth, tun];
        assert_eq!(find(&all, "tun0").unwrap().index, 3);
        assert!(matches!(find(&all, "eth9"), Err(Error::NotFound { .. })));
    }

    #[test]
    fn mac_format() {
        assert_eq!(
            format_mac(&[0, 0x11, 0xaa, 0xbb, 0xcc, 0xff]),
            "00:11:aa:bb:cc:ff"
        );
    }
}
