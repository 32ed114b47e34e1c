//! The listening side: print what arrives, and optionally answer each
//! datagram (fixed text, echo, or a program's output) — a discovery
//! responder. Also the receiving end of multicast (`membership`).
//!
//! Split in two steps like every server: [`Listener::bind`] opens and binds
//! the socket (and joins the group), [`Listener::run`] serves until shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Error;
use super::exec::{self, ExecConfig};
use super::mcast::{Membership, ResolvedIface};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::net::acl::SharedAcl;
use crate::net::canonical;
use crate::sys::pktinfo::{self, Arrival};

/// How a listener answers each datagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    /// Do not answer.
    #[default]
    None,
    /// Send the datagram back to its sender.
    Echo,
    /// Send these bytes back.
    Text(Vec<u8>),
    /// Run a program with the payload on stdin; its stdout is the answer.
    Exec(ExecConfig),
}

/// How to set up a [`Listener`].
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// Local address; `None` listens on every address, IPv4 and IPv6
    /// (dual-stack `[::]`, or `0.0.0.0` where IPv6 is missing). Ignored when
    /// `membership` is set: the socket binds the group.
    pub addr: Option<IpAddr>,
    /// Interface index for an IPv6 link-local `addr` (`fe80::1%eth0`); 0 for none.
    pub scope_id: u32,
    /// Local port (0: any free port).
    pub port: u16,
    /// Join this multicast group.
    pub membership: Option<Membership>,
    /// How to answer.
    pub reply: ReplyMode,
    /// How many `Exec` programs may run at once; datagrams beyond that are
    /// dropped and counted as refused.
    pub max_children: usize,
    /// Who may send: datagrams from other sources are dropped unanswered
    /// and counted as refused (`--allow`, `--deny`, their files).
    pub acl: SharedAcl,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            addr: None,
            scope_id: 0,
            port: 0,
            membership: None,
            reply: ReplyMode::None,
            max_children: 16,
            acl: SharedAcl::default(),
        }
    }
}

/// Something that happened while serving, for the caller to print or log.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A datagram arrived.
    Datagram {
        /// Its sender (IPv4-mapped addresses shown as IPv4).
        from: SocketAddr,
        /// Its payload.
        payload: &'a [u8],
    },
    /// An answer went out.
    Replied {
        /// To whom.
        to: SocketAddr,
        /// Its length.
        len: usize,
    },
    /// No answer went out for a datagram, and why.
    ReplyFailed {
        /// The sender of the datagram.
        to: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// Too many programs were running: the datagram got no answer.
    Busy {
        /// Its sender.
        from: SocketAddr,
    },
    /// The allow/deny lists refuse the sender: the datagram was dropped
    /// (not reported as a [`Event::Datagram`], not answered).
    Denied {
        /// Its sender.
        from: SocketAddr,
        /// Its length.
        len: usize,
    },
}

/// A bound UDP listener, ready to [`run`](Listener::run).
#[derive(Debug)]
pub struct Listener {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    iface: Option<ResolvedIface>,
    cfg: ListenConfig,
}

fn new_socket(domain: Domain) -> Result<Socket, Error> {
    Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(Error::Socket)
}

fn bind_socket(sock: &Socket, at: SocketAddr) -> Result<(), Error> {
    sock.bind(&at.into()).map_err(|e| Error::Bind(e, at))
}

/// A dual-stack `[::]:port` socket, or `0.0.0.0:port` where IPv6 is absent.
fn bind_any(port: u16) -> Result<Socket, Error> {
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    match Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)) {
        Ok(sock) => {
            if sock.set_only_v6(false).is_ok() {
                bind_socket(&sock, v6)?;
                return Ok(sock);
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
        Err(e) => return Err(Error::Socket(e)),
    }
    let sock = new_socket(Domain::IPV4)?;
    bind_socket(
        &sock,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
    )?;
    Ok(sock)
}

impl Listener {
    /// Open, bind and (for multicast) join. Must be called inside a tokio
    /// runtime.
    pub fn bind(cfg: ListenConfig) -> Result<Self, Error> {
        let mut iface = None;
        let sock = if let Some(m) = &cfg.membership {
            m.validate()?;
            iface = m.resolve()?;
            let at = m.bind_addr(cfg.port, iface.as_ref());
            let sock = new_socket(Domain::for_address(at))?;
            // Several listeners on one host may share a group and port.
            sock.set_reuse_address(true)
                .map_err(|source| Error::SockOpt {
                    what: "SO_REUSEADDR",
                    source,
                })?;
            if at.is_ipv6() {
                sock.set_only_v6(true).map_err(|source| Error::SockOpt {
                    what: "IPV6_V6ONLY",
                    source,
                })?;
                // Only this socket's own memberships, not every group the
                // host joined (best effort: older kernels lack the option).
                let _ = sock.set_multicast_all_v6(false);
            } else {
                let _ = sock.set_multicast_all_v4(false);
            }
            bind_socket(&sock, at)?;
            m.join(&sock, iface.as_ref())?;
            sock
        } else {
            match cfg.addr {
                None => bind_any(cfg.port)?,
                Some(ip) => {
                    let at = match ip {
                        IpAddr::V6(v6) => {
                            SocketAddr::V6(SocketAddrV6::new(v6, cfg.port, 0, cfg.scope_id))
                        }
                        IpAddr::V4(_) => SocketAddr::new(ip, cfg.port),
                    };
                    let sock = new_socket(Domain::for_address(at))?;
                    if ip.is_ipv6() {
                        let _ = sock.set_only_v6(true);
                    }
                    bind_socket(&sock, at)?;
                    sock
                }
            }
        };
        // Answers may go to broadcast senders on the same subnet; harmless
        // otherwise. Best effort.
        let _ = sock.set_broadcast(true);
        // Answers leave from the address each datagram was sent to. Without
        // the option (not Linux?) the kernel picks the source as before.
        let ipv6 = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.is_ipv6());
        if let Err(e) = pktinfo::enable(&sock, ipv6) {
            tracing::debug!(
                "no packet info on the listening socket ({e}): answers leave from the kernel's choice of address"
            );
        }
        sock.set_nonblocking(true).map_err(Error::Socket)?;
        let socket = UdpSocket::from_std(sock.into()).map_err(Error::Socket)?;
        let local = socket.local_addr().map_err(Error::Socket)?;
        Ok(Self {
            socket: Arc::new(socket),
            local,
            iface,
            cfg,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The interface a multicast membership was joined on, when one was named.
    pub fn iface(&self) -> Option<&ResolvedIface> {
        self.iface.as_ref()
    }

    /// Serve until `shutdown` fires, reporting every datagram and answer to
    /// `on_event`. After shutdown, running programs get up to `grace` to
    /// finish (their answers still go out); then they are killed.
    pub async fn run(
        self,
        shutdown: &Shutdown,
        stats: &ServerStats,
        grace: Duration,
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<(), Error> {
        let socket = self.socket;
        let local = self.local;
        let mut buf = vec![0u8; 65_536];
        let (tx, mut rx) = mpsc::channel::<(SocketAddr, Result<usize, String>)>(64);
        let mut arrival: Option<Arrival>;
        let mut tasks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(
            self.cfg.max_children.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let report = |on_event: &mut dyn FnMut(Event<'_>), to, r: Result<usize, String>| match r {
            Ok(len) => on_event(Event::Replied { to, len }),
            Err(reason) => on_event(Event::ReplyFailed { to, reason }),
        };
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                Some((to, r)) = rx.recv() => report(&mut on_event, to, r),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                r = pktinfo::recv_from(&socket, &mut buf) => {
                    let (n, from) = match r {
                        Ok((n, from, arr)) => {
                            arrival = arr;
                            (n, from)
                        }
                        // ICMP errors queued from earlier answers: not ours to stop for.
                        Err(e) if is_transient(&e) => continue,
                        Err(e) => return Err(Error::Recv(e, local)),
                    };
                    let shown = canonical(from);
                    if !self.cfg.acl.permits(from.ip()) {
                        stats.refused();
                        on_event(Event::Denied { from: shown, len: n });
                        continue;
                    }
                    let guard = stats.connection();
                    stats.add_in(n as u64);
                    on_event(Event::Datagram { from: shown, payload: &buf[..n] });
                    let answer: Option<&[u8]> = match &self.cfg.reply {
                        ReplyMode::None => None,
                        ReplyMode::Echo => Some(&buf[..n]),
                        ReplyMode::Text(t) => Some(t),
                        ReplyMode::Exec(cfg) => {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                stats.refused();
                                on_event(Event::Busy { from: shown });
                                continue;
                            };
                            let (cfg, payload, socket, tx, stats) =
                                (cfg.clone(), buf[..n].to_vec(), socket.clone(), tx.clone(), stats.clone());
                            // The program sees the address it was asked on.
                            let here = arrival.map_or(local, |a| SocketAddr::new(a.dst(), local.port()));
                            tasks.spawn(async move {
                                let _permit = permit;
                                let _guard = guard;
                                let r = match exec::run(&cfg, &payload, shown, here).await {
                                    Ok(out) if out.is_empty() => return,
                                    Ok(out) => match pktinfo::send_to(&socket, &out, from, arrival.as_ref()).await {
                                        Ok(len) => {
                                            stats.add_out(len as u64);
                                            Ok(len)
                                        }
                                        Err(e) => Err(Error::Send(e, shown).to_string()),
                                    },
                                    Err(e) => Err(e.to_string()),
                                };
                                let _ = tx.send((shown, r)).await;
                            });
                            None
                        }
                    };
                    if let Some(a) = answer {
                        let r = match pktinfo::send_to(&socket, a, from, arrival.as_ref()).await {
                            Ok(len) => {
                                stats.add_out(len as u64);
                                Ok(len)
                            }
                            Err(e) => Err(Error::Send(e, shown).to_string()),
                        };
                        report(&mut on_event, shown, r);
                    }
                }
            }
        }
        drop(tx);
        // Drain: let running programs finish within the grace period.
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            tokio::select! {
                Some((to, r)) = rx.recv() => report(&mut on_event, to, r),
                joined = tasks.join_next() => if joined.is_none() { break },
                () = tokio::time::sleep_until(deadline) => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        while let Ok((to, r)) = rx.try_recv() {
            report(&mut on_event, to, r);
        }
        Ok(())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EINTR
        )
    )
}

#[cfg(test)]
mod tests;
