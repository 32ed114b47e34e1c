//! The sending side: one socket, one or many destinations, and reply
//! collection from any source for a time or a count.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Error, is_icmp_error, max_payload, mcast, target};
use crate::Shutdown;
use crate::net::canonical;

/// How to set up a [`Sender`].
#[derive(Clone, Debug, Default)]
pub struct SendConfig {
    /// Local address to send from; `None` binds the unspecified address of
    /// the destinations' family on an ephemeral port.
    pub bind: Option<SocketAddr>,
    /// Set `SO_BROADCAST`. It is also set on its own when a destination is
    /// `255.255.255.255` or a local interface's broadcast address.
    pub broadcast: bool,
    /// Multicast sending options (interface, TTL, loopback).
    pub multicast: Option<mcast::SendOptions>,
    /// Send out of this interface only: `SO_BINDTODEVICE` plus its address
    /// as the source. It must exist and be up.
    /// `bind`'s port is kept; its address gives way to the interface's.
    pub iface: Option<String>,
    /// For unicast destinations, turn ICMP errors about them (port or host
    /// unreachable) into [`Error::Unreachable`] from [`Sender::recv`] (and
    /// from a later [`Sender::send`]), so a wait for replies ends at once.
    /// Off, such errors are ignored as UDP usually does.
    pub report_unreachable: bool,
}

/// A datagram that came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Who sent it (IPv4-mapped addresses shown as IPv4).
    pub from: SocketAddr,
    /// Time since the last datagram we sent.
    pub elapsed: Duration,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Bounds for reply collection: stop after `wait`, after `max` replies, or
/// on shutdown, whichever comes first. With neither bound, nothing is
/// collected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collect {
    /// How long to wait after the last send.
    pub wait: Option<Duration>,
    /// How many replies to wait for.
    pub max: Option<usize>,
}

/// What one [`Sender::send`] did.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Destinations the datagram went to.
    pub sent: usize,
    /// Destinations it could not go to, with why.
    pub errors: Vec<Error>,
}

/// A UDP socket that sends to fixed destinations and receives replies from
/// anyone (it is never connected, so replies from other hosts than the
/// destination, as broadcast and multicast discovery get, are kept).
#[derive(Debug)]
pub struct Sender {
    socket: UdpSocket,
    local: SocketAddr,
    targets: Vec<SocketAddr>,
    broadcast: bool,
    /// Every destination is unicast and ICMP errors about them are
    /// reported (`IP_RECVERR`): an error means that destination is out.
    icmp_errors: bool,
    last_send: Mutex<Option<Instant>>,
}

fn unspecified(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// True when sending to `ip` needs `SO_BROADCAST`. Looks at the interfaces
/// only for addresses that could be a broadcast (ending in .255 or all ones
/// inside a local subnet).
fn needs_broadcast(ip: Ipv4Addr) -> bool {
    if ip.is_broadcast() {
        return true;
    }
    if ip.is_multicast() || ip.is_loopback() {
        return false;
    }
    crate::iface::list().is_ok_and(|ifs| target::classify(ip, &ifs).is_broadcast())
}

/// The address to send from on `i` towards `dest`: its first IPv4 address,
/// or for IPv6 a link-local one towards link-local and multicast
/// destinations and another one otherwise (either when that is all it has).
fn source_on(i: &crate::iface::Interface, dest: IpAddr) -> Option<IpAddr> {
    match dest {
        IpAddr::V4(_) => i.first_ipv4().map(IpAddr::V4),
        IpAddr::V6(d) => {
            let link = crate::iface::is_ipv6_link_local(d) || d.is_multicast();
            let mut all: Vec<Ipv6Addr> = i.ipv6().map(|n| n.addr()).collect();
            all.sort_by_key(|a| crate::iface::is_ipv6_link_local(*a) != link);
            all.first().copied().map(IpAddr::V6)
        }
    }
}

/// Tie `sock` to interface `name` (SO_BINDTODEVICE and its source address,
/// port `port`) for `dest`; true when the source address was bound.
fn tie_to(sock: &Socket, name: &str, dest: SocketAddr, port: u16) -> Result<bool, Error> {
    use crate::sys::device::{self, Binding, Device};
    let i = crate::iface::by_name(name)?;
    if !i.flags.up {
        return Err(Error::IfaceDown {
            name: name.to_owned(),
        });
    }
    let dev = Device {
        name,
        index: i.index,
    };
    let tied = device::tie(sock, dest, Some(dev), source_on(&i, dest.ip()), port)?;
    if tied.binding == Binding::Routed {
        return Err(Error::IfaceUntied {
            name: name.to_owned(),
            family: if dest.is_ipv4() { "IPv4" } else { "IPv6" },
        });
    }
    Ok(tied.bound)
}

/// Report ICMP errors about sent datagrams on this unconnected socket
/// (`IP_RECVERR` / `IPV6_RECVERR`): the next receive fails with the error.
fn recv_icmp_errors(sock: &Socket, v4: bool) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if v4 {
        setsockopt(sock, sockopt::Ipv4RecvErr, &true)?;
    } else {
        setsockopt(sock, sockopt::Ipv6RecvErr, &true)?;
    }
    Ok(())
}

impl Sender {
    /// Open the socket for `targets` (all of one family). Must be called
    /// inside a tokio runtime (the socket registers with its reactor).
    pub fn bind(targets: Vec<SocketAddr>, cfg: &SendConfig) -> Result<Self, Error> {
        let first = *targets.first().ok_or(Error::NoTargets)?;
        if let Some(other) = targets.iter().find(|t| t.is_ipv4() != first.is_ipv4()) {
            return Err(Error::MixedFamilies(first, *other));
        }
        let v4 = first.is_ipv4();
        let local = cfg
            .bind
            .unwrap_or_else(|| SocketAddr::new(unspecified(v4), 0));
        if local.is_ipv4() != v4 {
            return Err(Error::MixedFamilies(local, first));
        }
        let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
        let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(Error::Socket)?;
        let broadcast = cfg.broadcast
            || targets.iter().any(|t| match t.ip() {
                IpAddr::V4(ip) => needs_broadcast(ip),
                IpAddr::V6(_) => false,
            });
        if broadcast {
            sock.set_broadcast(true).map_err(|source| Error::SockOpt {
                what: "SO_BROADCAST",
                source,
            })?;
        }
        if let Some(m) = &cfg.multicast {
            m.apply(&sock, first.ip())?;
        }
        // Unicast destinations only: a port or host unreachable then ends the
        // wait for replies at once. (Broadcast and multicast get no ICMP
        // errors, and one host's would not speak for the others.)
        let unicast = !broadcast && targets.iter().all(|t| !t.ip().is_multicast());
        let icmp_errors = cfg.report_unreachable && unicast && recv_icmp_errors(&sock, v4).is_ok();
        let bound = match &cfg.iface {
            Some(name) => tie_to(&sock, name, first, local.port())?,
            None => false,
        };
        sock.set_nonblocking(true).map_err(Error::Socket)?;
        if !bound {
            sock.bind(&local.into()).map_err(|source| {
                Error::Bind(crate::net::BindError {
                    addr: local,
                    step: "bind".to_owned(),
                    source,
                })
            })?;
        }
        let socket = UdpSocket::from_std(sock.into()).map_err(Error::Socket)?;
        let local = socket.local_addr().map_err(Error::Socket)?;
        Ok(Self {
            socket,
            local,
            targets,
            broadcast,
            icmp_errors,
            last_send: Mutex::new(None),
        })
    }

    /// The local address replies come to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The destinations.
    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// True when `SO_BROADCAST` is set (asked for, or needed by a destination).
    pub fn broadcast(&self) -> bool {
        self.broadcast
    }

    /// The largest payload every destination accepts.
    pub fn max_payload(&self) -> usize {
        self.targets
            .iter()
            .map(|t| max_payload(t.ip()))
            .min()
            .unwrap_or(super::MAX_PAYLOAD_V4)
    }

    /// Send `payload` to every destination. A payload over the datagram limit
    /// fails before anything is sent; a destination that refuses is reported
    /// in the result and the others are still tried.
    pub async fn send(&self, payload: &[u8]) -> Result<SendReport, Error> {
        if let Some(t) = self
            .targets
            .iter()
            .find(|t| payload.len() > max_payload(t.ip()))
        {
            return Err(Error::TooLarge {
                len: payload.len(),
                max: max_payload(t.ip()),
                to: *t,
            });
        }
        let mut report = SendReport::default();
        if let Ok(mut g) = self.last_send.lock() {
            *g = Some(Instant::now());
        }
        for &t in &self.targets {
            match self.socket.send_to(payload, t).await {
                Ok(_) => report.sent += 1,
                // An ICMP port unreachable for an earlier datagram, reported now.
                Err(e) if self.icmp_errors && e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    return Err(self.unreachable(e));
                }
                Err(e) => report.errors.push(Error::Send(e, t)),
            }
        }
        Ok(report)
    }

    /// The [`Error::Unreachable`] for an ICMP error `e`, naming the
    /// destination it was about (read from the socket's error queue).
    fn unreachable(&self, e: std::io::Error) -> Error {
        let mut about = None;
        let mut scratch = [0u8; 64];
        crate::sys::ping_io::recv_errqueue(self.socket.as_raw_fd(), &mut scratch, |q| {
            about = about.or(q.dst);
        });
        let to = about
            .and_then(|ip| {
                self.targets
                    .iter()
                    .find(|t| canonical(**t).ip() == canonical(SocketAddr::new(ip, 0)).ip())
            })
            .or(self.targets.first())
            .copied()
            .unwrap_or(self.local);
        Error::Unreachable { to, cause: e }
    }

    /// Empty the socket's error queue; how many ICMP errors it held.
    fn drain_icmp_errors(&self) -> usize {
        let mut icmp = 0;
        let mut scratch = [0u8; 64];
        crate::sys::ping_io::recv_errqueue(self.socket.as_raw_fd(), &mut scratch, |_| icmp += 1);
        icmp
    }

    /// Receive one datagram from anyone. `buf` should hold 65536 bytes; a
    /// longer datagram is cut to `buf`'s size. For unicast destinations an
    /// ICMP error (port or host unreachable) is [`Error::Unreachable`].
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Reply, Error> {
        let (n, from) = loop {
            match self.socket.recv_from(buf).await {
                Ok(v) => break v,
                Err(e) if self.icmp_errors && is_icmp_error(&e) => {
                    return Err(self.unreachable(e));
                }
                // IP_RECVERR reports every ICMP error, not only the
                // unreachables: fragmentation needed / packet too big
                // (EMSGSIZE, path MTU discovery, already handled by the
                // kernel), parameter problem (EPROTO). None of them says the
                // destination is gone, and without IP_RECVERR they were never
                // seen: keep waiting.
                Err(e) if self.icmp_errors && self.drain_icmp_errors() > 0 => {
                    tracing::debug!("udp send: ICMP error ignored while waiting for replies: {e}");
                }
                Err(e) => return Err(Error::Recv(e, self.local)),
            }
        };
        let sent = self.last_send.lock().ok().and_then(|g| *g);
        Ok(Reply {
            from: canonical(from),
            elapsed: sent.map(|s| s.elapsed()).unwrap_or_default(),
            payload: buf[..n].to_vec(),
        })
    }

    /// Receive one datagram, or `None` when `deadline` passes or `shutdown`
    /// fires first. No deadline waits for as long as it takes.
    pub async fn recv_until(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        shutdown: &Shutdown,
    ) -> Result<Option<Reply>, Error> {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.recv(buf) => r.map(Some),
            () = sleep => Ok(None),
            () = shutdown.wait() => Ok(None),
        }
    }

    /// Collect replies within the bounds of `c`, calling `on_reply` for each
    /// as it arrives, and return how many came. With no bound at all nothing
    /// is collected.
    pub async fn collect(
        &self,
        c: Collect,
        shutdown: &Shutdown,
        mut on_reply: impl FnMut(Reply),
    ) -> Result<usize, Error> {
        if c.wait.is_none() && c.max.is_none() {
            return Ok(0);
        }
        let deadline = c.wait.map(|w| Instant::now() + w);
        let mut buf = vec![0u8; 65_536];
        let mut got = 0;
        while c.max.is_none_or(|m| got < m) {
            match self.recv_until(&mut buf, deadline, shutdown).await? {
                Some(r) => {
                    got += 1;
                    on_reply(r);
                }
                None => break,
            }
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests;
