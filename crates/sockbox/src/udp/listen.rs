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

use super::exec::{self, ExecConfig};
use super::mcast::{Membership, ResolvedIface};
use super::{Error, canonical};
use crate::Shutdown;
use crate::daemon::ServerStats;

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
#[derive(Clone, Debug, PartialEq, Eq)]
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
        let mut tasks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(self.cfg.max_children.max(1)));
        let report = |on_event: &mut dyn FnMut(Event<'_>), to, r: Result<usize, String>| match r {
            Ok(len) => on_event(Event::Replied { to, len }),
            Err(reason) => on_event(Event::ReplyFailed { to, reason }),
        };
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                Some((to, r)) = rx.recv() => report(&mut on_event, to, r),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                r = socket.recv_from(&mut buf) => {
                    let (n, from) = match r {
                        Ok(v) => v,
                        // ICMP errors queued from earlier answers: not ours to stop for.
                        Err(e) if is_transient(&e) => continue,
                        Err(e) => return Err(Error::Recv(e, local)),
                    };
                    let shown = canonical(from);
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
                            tasks.spawn(async move {
                                let _permit = permit;
                                let _guard = guard;
                                let r = match exec::run(&cfg, &payload, shown, local).await {
                                    Ok(out) if out.is_empty() => return,
                                    Ok(out) => match socket.send_to(&out, from).await {
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
                        let r = match socket.send_to(a, from).await {
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
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Running {
        shutdown: Shutdown,
        addr: SocketAddr,
        events: Arc<Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<Result<(), Error>>,
    }

    fn start(cfg: ListenConfig) -> Running {
        let l = Listener::bind(cfg).unwrap();
        let addr = l.local_addr();
        let shutdown = Shutdown::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (sd, ev) = (shutdown.clone(), events.clone());
        let task = tokio::spawn(async move {
            l.run(&sd, &ServerStats::new(), Duration::from_secs(2), |e| {
                ev.lock().unwrap().push(format!("{e:?}"));
            })
            .await
        });
        Running {
            shutdown,
            addr,
            events,
            task,
        }
    }

    async fn ask(to: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(msg, to).await.unwrap();
        let mut buf = [0u8; 2048];
        let r = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf)).await;
        r.ok().map(|r| buf[..r.unwrap().0].to_vec())
    }

    fn local(cfg: ListenConfig) -> ListenConfig {
        ListenConfig {
            addr: Some("127.0.0.1".parse().unwrap()),
            ..cfg
        }
    }

    #[tokio::test]
    async fn text_echo_and_exec_answers() {
        let text = start(local(ListenConfig {
            reply: ReplyMode::Text(b"I am here".to_vec()),
            ..ListenConfig::default()
        }));
        assert_eq!(ask(text.addr, b"who?").await.unwrap(), b"I am here");
        let echo = start(local(ListenConfig {
            reply: ReplyMode::Echo,
            ..ListenConfig::default()
        }));
        assert_eq!(ask(echo.addr, b"abc").await.unwrap(), b"abc");
        let prog = start(local(ListenConfig {
            reply: ReplyMode::Exec(ExecConfig {
                command: "tr a-z A-Z".into(),
                timeout: Duration::from_secs(5),
                max_output: 1000,
            }),
            ..ListenConfig::default()
        }));
        assert_eq!(ask(prog.addr, b"shout").await.unwrap(), b"SHOUT");
        for r in [text, echo, prog] {
            r.shutdown.trigger();
            r.task.await.unwrap().unwrap();
            let ev = r.events.lock().unwrap();
            assert!(ev[0].starts_with("Datagram"), "{ev:?}");
            assert!(ev.iter().any(|e| e.starts_with("Replied")), "{ev:?}");
        }
    }

    #[tokio::test]
    async fn shutdown_kills_programs_after_grace() {
        let l = Listener::bind(local(ListenConfig {
            reply: ReplyMode::Exec(ExecConfig {
                command: "sleep 30".into(),
                timeout: Duration::from_secs(60),
                max_output: 10,
            }),
            ..ListenConfig::default()
        }))
        .unwrap();
        let addr = l.local_addr();
        let sd = Shutdown::new();
        let sd2 = sd.clone();
        let task = tokio::spawn(async move {
            l.run(
                &sd2,
                &ServerStats::new(),
                Duration::from_millis(100),
                |_| {},
            )
            .await
        });
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"x", addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = std::time::Instant::now();
        sd.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn busy_when_all_program_slots_are_taken() {
        let r = start(local(ListenConfig {
            reply: ReplyMode::Exec(ExecConfig {
                command: "sleep 1; echo done".into(),
                timeout: Duration::from_secs(5),
                max_output: 100,
            }),
            max_children: 1,
            ..ListenConfig::default()
        }));
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"1", r.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.send_to(b"2", r.addr).await.unwrap();
        let mut buf = [0u8; 100];
        let got = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..got.0], b"done\n");
        r.shutdown.trigger();
        r.task.await.unwrap().unwrap();
        let ev = r.events.lock().unwrap();
        assert!(ev.iter().any(|e| e.starts_with("Busy")), "{ev:?}");
    }

    #[tokio::test]
    async fn not_multicast_is_refused_before_binding() {
        let e = Listener::bind(ListenConfig {
            membership: Some(Membership {
                group: "10.0.0.1".parse().unwrap(),
                iface: None,
                source: None,
            }),
            ..ListenConfig::default()
        })
        .unwrap_err();
        assert!(matches!(e, Error::NotMulticast(_)), "{e}");
    }
}
