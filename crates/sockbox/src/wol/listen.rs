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
use sockbox_wire::magic::{Found, find};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Error;
use super::plan::{IfaceRef, iref, named};
use super::send::open_raw;
use crate::Shutdown;
use crate::net::canonical;
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

/// The fix for a failed bind: the UDP module's hints, except that for a
/// low port the way out is a high port on both ends.
fn bind_hint(e: &io::Error, addr: SocketAddr) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) if addr.port() < 1024 => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, \
             `sudo setcap cap_net_bind_service+ep $(command -v sockbox)`, or listen on a high \
             port (--port 40009) and send with -p 40009"
                .to_owned()
        }
        _ => crate::udp::bind_hint(e, &addr),
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
                hint: bind_hint(&source, addr),
                source,
                addr,
            })?)
        }
    };
    let all = crate::iface::list()?;
    let mut raw = Vec::new();
    for i in named(&all, &cfg.raw)? {
        let iface = iref(i);
        let sock = open_raw(&iface)?;
        raw.push((iface, sock));
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
        let sockets = self
            .udp
            .into_iter()
            .map(Inbound::Udp)
            .chain(self.raw.into_iter().map(|(i, s)| Inbound::Raw(i, s)));
        for sock in sockets {
            tasks.spawn(sock.receive(shutdown.clone(), events.clone()));
        }
        drop(events);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// One socket the listener receives on.
enum Inbound {
    Udp(UdpSocket),
    Raw(IfaceRef, PacketSocket),
}

impl Inbound {
    /// The next datagram or frame: its length and source, or `None` for a
    /// frame this host sent itself (a raw socket sees those too).
    async fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Source)>> {
        match self {
            Self::Udp(u) => {
                let (n, from) = u.recv_from(buf).await?;
                Ok(Some((n, Source::Udp(canonical(from)))))
            }
            Self::Raw(iface, s) => {
                let (n, src) = s.recv_from(buf).await?;
                Ok((!src.outgoing).then(|| {
                    let mac = MacAddr(src.mac);
                    let iface = iface.name.clone();
                    (n, Source::Raw { iface, mac })
                }))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Udp(_) => "UDP".to_owned(),
            Self::Raw(iface, _) => format!("raw on {}", iface.name),
        }
    }

    /// Receive until `shutdown` fires or nobody takes the events any more,
    /// decoding each payload; errors are logged and retried after a pause.
    async fn receive(self, shutdown: Shutdown, events: mpsc::Sender<Received>) {
        let mut buf = vec![0u8; BUF_LEN];
        loop {
            let r = tokio::select! {
                () = shutdown.wait() => return,
                r = self.recv(&mut buf) => r,
            };
            match r {
                Ok(None) => {}
                Ok(Some((n, source))) => {
                    let ev = Received {
                        time: SystemTime::now(),
                        source,
                        len: n,
                        found: find(&buf[..n]),
                    };
                    if events.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("{} receive failed: {e}", self.describe());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
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
