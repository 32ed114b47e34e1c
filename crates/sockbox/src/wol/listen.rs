//! A Wake-on-LAN listener: receives UDP datagrams (and optionally raw
//! 0x0842 Ethernet frames on chosen interfaces), looks for a magic packet
//! anywhere in each payload as a NIC would, and reports every datagram as a
//! [`Received`] event (with `found: None` for the ones that are not magic).
//!
//! ```text
//! let listener = listen::bind(&ListenConfig::new(9)).await?;  // as root for port 9 / raw
//! // drop privileges here
//! listener.run(shutdown, events_tx).await?;
//! ```

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use sockbox_wire::mac::MacAddr;
use sockbox_wire::magic::{ETHERTYPE, Found, find};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Error;
use super::plan::IfaceRef;
use crate::Shutdown;
use crate::sys::packet::PacketSocket;

/// Largest datagram read.
const BUF_LEN: usize = 65_536;

/// What to listen on.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// UDP address; `None` listens on raw interfaces only. `[::]` listens on
    /// IPv4 and IPv6 (falling back to `0.0.0.0` without IPv6).
    pub udp: Option<SocketAddr>,
    /// Interfaces to receive raw 0x0842 frames on.
    pub raw: Vec<String>,
}

impl ListenConfig {
    /// UDP on every address (IPv4 and IPv6) at `port`, no raw interfaces.
    pub fn new(port: u16) -> Self {
        Self {
            udp: Some(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)),
            raw: Vec::new(),
        }
    }
}

/// Where a datagram came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A UDP datagram from this address.
    Udp(SocketAddr),
    /// A raw 0x0842 frame from this hardware address on this interface.
    Raw {
        /// The interface it arrived on.
        iface: String,
        /// The sender's MAC.
        mac: MacAddr,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Udp(a) => write!(f, "{}", canonical(*a)),
            Self::Raw { iface, mac } => write!(f, "{mac} on {iface}"),
        }
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) shown as IPv4.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// One datagram or frame received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// When it arrived.
    pub time: SystemTime,
    /// Who sent it.
    pub source: Source,
    /// Payload length.
    pub len: usize,
    /// The magic packet in it, if any.
    pub found: Option<Found>,
}

/// Bound sockets, ready to [`Listener::run`].
#[derive(Debug)]
pub struct Listener {
    udp: Option<UdpSocket>,
    raw: Vec<(IfaceRef, PacketSocket)>,
}

fn bind_hint(e: &io::Error, port: u16) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) if port < 1024 => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, \
             `sudo setcap cap_net_bind_service+ep $(command -v sockbox)`, or listen on a high \
             port (--port 40009) and send with -p 40009"
        }
        Some(libc::EADDRINUSE) => "; another program has this port (see `ss -ulpn`)",
        _ => "",
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let SocketAddr::V6(v6) = addr
        && v6.ip().is_unspecified()
    {
        sock.set_only_v6(false)?;
    }
    sock.set_broadcast(addr.is_ipv4())?;
    sock.bind(&SockAddr::from(addr))?;
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Open and bind every socket in `cfg` (do this before dropping privileges).
/// Async because the sockets register with the running tokio runtime.
#[allow(clippy::unused_async)]
pub async fn bind(cfg: &ListenConfig) -> Result<Listener, Error> {
    let udp = match cfg.udp {
        None => None,
        Some(addr) => {
            let r = bind_udp(addr);
            let r = match r {
                // No IPv6 on this host: fall back to IPv4 only.
                Err(e)
                    if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                        && addr.ip() == Ipv6Addr::UNSPECIFIED =>
                {
                    bind_udp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port()))
                }
                r => r,
            };
            Some(r.map_err(|source| Error::Bind {
                hint: bind_hint(&source, addr.port()),
                source,
                addr,
            })?)
        }
    };
    let all = crate::iface::list()?;
    let mut raw = Vec::new();
    for name in &cfg.raw {
        let i = all
            .iter()
            .find(|i| &i.name == name)
            .ok_or_else(|| crate::iface::Error::NotFound { name: name.clone() })?;
        if !i.flags.up {
            return Err(Error::InterfaceDown { name: name.clone() });
        }
        let sock = PacketSocket::open(i.index, ETHERTYPE).map_err(|source| {
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                Error::RawPermission {
                    iface: name.clone(),
                    source,
                }
            } else {
                Error::Socket {
                    what: format!("cannot open a raw 0x0842 socket on {name}"),
                    source,
                }
            }
        })?;
        raw.push((
            IfaceRef {
                name: name.clone(),
                index: i.index,
            },
            sock,
        ));
    }
    Ok(Listener { udp, raw })
}

impl Listener {
    /// The bound UDP address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local_addr().ok())
    }

    /// Receive until `shutdown` fires (or `events` is closed), sending one
    /// [`Received`] per datagram or frame.
    pub async fn run(
        self,
        shutdown: Shutdown,
        events: mpsc::Sender<Received>,
    ) -> Result<(), Error> {
        let mut tasks = JoinSet::new();
        if let Some(udp) = self.udp {
            let (sd, tx) = (shutdown.clone(), events.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; BUF_LEN];
                loop {
                    let r = tokio::select! {
                        () = sd.wait() => return,
                        r = udp.recv_from(&mut buf) => r,
                    };
                    match r {
                        Ok((n, from)) => {
                            let ev = Received {
                                time: SystemTime::now(),
                                source: Source::Udp(canonical(from)),
                                len: n,
                                found: find(&buf[..n]),
                            };
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("UDP receive failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        for (iface, sock) in self.raw {
            let (sd, tx) = (shutdown.clone(), events.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; BUF_LEN];
                loop {
                    let r = tokio::select! {
                        () = sd.wait() => return,
                        r = sock.recv_from(&mut buf) => r,
                    };
                    match r {
                        Ok((_, src)) if src.outgoing => {}
                        Ok((n, src)) => {
                            let ev = Received {
                                time: SystemTime::now(),
                                source: Source::Raw {
                                    iface: iface.name.clone(),
                                    mac: MacAddr(src.mac),
                                },
                                len: n,
                                found: find(&buf[..n]),
                            };
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("raw receive on {} failed: {e}", iface.name);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        drop(events);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockbox_wire::magic::{Password, Repr};

    #[tokio::test]
    async fn decodes_magic_and_reports_other_datagrams() {
        let cfg = ListenConfig {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            raw: Vec::new(),
        };
        let l = bind(&cfg).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let sd = Shutdown::new();
        let server = tokio::spawn(l.run(sd.clone(), tx));

        let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        out.send_to(b"not magic", addr).unwrap();
        let r = Repr {
            mac: MacAddr([0xaa, 0xbb, 0xcc, 0, 0, 1]),
            password: Some(Password::Four([1, 2, 3, 4])),
        };
        let mut junk_then_magic = b"junk".to_vec();
        junk_then_magic.extend_from_slice(&r.to_bytes());
        out.send_to(&junk_then_magic, addr).unwrap();

        let t = Duration::from_secs(5);
        let first = tokio::time::timeout(t, rx.recv()).await.unwrap().unwrap();
        assert_eq!((first.len, first.found), (9, None));
        assert_eq!(first.source, Source::Udp(out.local_addr().unwrap()));
        let second = tokio::time::timeout(t, rx.recv()).await.unwrap().unwrap();
        let f = second.found.unwrap();
        assert_eq!((f.offset, f.repr), (4, r));
        sd.trigger();
        tokio::time::timeout(t, server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn dual_stack_default_sees_ipv4_as_ipv4() {
        let l = bind(&ListenConfig::new(0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, mut rx) = mpsc::channel(8);
        let sd = Shutdown::new();
        let server = tokio::spawn(l.run(sd.clone(), tx));
        let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        out.send_to(b"x", ("127.0.0.1", port)).unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.source.to_string(), out.local_addr().unwrap().to_string());
        sd.trigger();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn unknown_raw_interface_is_named() {
        let cfg = ListenConfig {
            udp: None,
            raw: vec!["sbxnope0".into()],
        };
        let e = bind(&cfg).await.unwrap_err();
        assert!(e.to_string().contains("sbxnope0") && e.is_usage(), "{e}");
    }
}
