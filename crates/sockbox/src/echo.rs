//! TCP and UDP echo server on one port: every byte a TCP client sends and
//! every datagram a UDP client sends comes straight back.
//!
//! Built for testing other tools, so it is strict about resources: each TCP
//! session echoes through one fixed buffer (it reads no more until the last
//! read was written back, so a client that sends without reading is slowed
//! by TCP flow control, never buffered in memory), connections beyond
//! `max_conns` are closed at once and counted as refused, an optional idle
//! timeout ends silent sessions, and `accept` errors such as `EMFILE` back
//! off instead of spinning.
//!
//! A client that closes its side ends its session. On shutdown the server
//! stops accepting, each session writes back what it already read and
//! closes, and sessions still stuck after `grace` (a client that does not
//! read) are cut.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::echo::EchoError> {
//! use sockbox::echo::{EchoConfig, EchoServer};
//! let server = EchoServer::bind(EchoConfig::new("127.0.0.1:7007".parse().unwrap())).await?;
//! let shutdown = sockbox::Shutdown::new();
//! server.run(shutdown, sockbox::daemon::ServerStats::new()).await?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Shutdown;
use crate::daemon::ServerStats;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// How the echo server runs.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Address to bind; port 0 picks a free port (the same for TCP and UDP).
    /// The unspecified IPv6 address `[::]` accepts IPv4 too.
    pub addr: SocketAddr,
    /// Serve TCP.
    pub tcp: bool,
    /// Serve UDP.
    pub udp: bool,
    /// Most TCP sessions at once; more are closed at once and counted refused.
    pub max_conns: usize,
    /// Bytes of the per-session echo buffer.
    pub buffer_size: usize,
    /// End a TCP session that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// After shutdown, how long sessions may take to finish.
    pub grace: Duration,
}

impl EchoConfig {
    /// TCP and UDP on `addr`, 100 sessions, 16 KiB buffers, no idle timeout,
    /// 10 s grace.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            tcp: true,
            udp: true,
            max_conns: 100,
            buffer_size: 16 * 1024,
            idle_timeout: None,
            grace: Duration::from_secs(10),
        }
    }
}

/// Why the echo server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// Both protocols were turned off.
    #[error("nothing to serve: both TCP and UDP are turned off")]
    NothingToServe,
    /// The TCP port could not be bound.
    #[error("bind TCP {1}: {0} (another program may use the port: pick another one or stop it)")]
    BindTcp(#[source] io::Error, SocketAddr),
    /// The UDP port could not be bound.
    #[error(
        "bind UDP {1}: {0} (another program may use the port: pick another one, or serve TCP only with --tcp-only)"
    )]
    BindUdp(#[source] io::Error, SocketAddr),
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoSummary {
    /// TCP sessions served.
    pub sessions: u64,
    /// UDP datagrams echoed.
    pub datagrams: u64,
    /// Sessions cut because they outlived the grace period.
    pub cut_at_grace: usize,
}

/// A bound echo server, not yet serving.
#[derive(Debug)]
pub struct EchoServer {
    tcp: Option<TcpListener>,
    udp: Option<UdpSocket>,
    cfg: EchoConfig,
}

impl EchoServer {
    /// Bind the sockets (TCP first, so port 0 can pick a port UDP then shares).
    /// Must run inside a tokio runtime (the sockets register with its reactor).
    #[allow(clippy::unused_async)] // async like every server's bind, for callers' uniformity
    pub async fn bind(cfg: EchoConfig) -> Result<Self, EchoError> {
        if !cfg.tcp && !cfg.udp {
            return Err(EchoError::NothingToServe);
        }
        // With port 0, the port TCP got may be taken for UDP: try a few.
        let tries = if cfg.addr.port() == 0 && cfg.tcp && cfg.udp {
            8
        } else {
            1
        };
        let mut last = None;
        for _ in 0..tries {
            let tcp = if cfg.tcp {
                Some(bind_tcp(cfg.addr).map_err(|e| EchoError::BindTcp(e, cfg.addr))?)
            } else {
                None
            };
            let mut udp_addr = cfg.addr;
            if let Some(l) = &tcp {
                udp_addr.set_port(
                    l.local_addr()
                        .map_err(|e| EchoError::BindTcp(e, cfg.addr))?
                        .port(),
                );
            }
            if !cfg.udp {
                return Ok(Self {
                    tcp,
                    udp: None,
                    cfg,
                });
            }
            match bind_udp(udp_addr) {
                Ok(udp) => {
                    return Ok(Self {
                        tcp,
                        udp: Some(udp),
                        cfg,
                    });
                }
                Err(e) => last = Some(EchoError::BindUdp(e, udp_addr)),
            }
        }
        Err(last.unwrap_or(EchoError::NothingToServe))
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Serve until `shutdown` fires, then drain for up to the grace period.
    pub async fn run(
        self,
        shutdown: Shutdown,
        stats: ServerStats,
    ) -> Result<EchoSummary, EchoError> {
        let cfg = Arc::new(self.cfg);
        let udp_task = self
            .udp
            .map(|sock| tokio::spawn(udp_loop(sock, shutdown.clone(), stats.clone())));
        let mut sessions = JoinSet::new();
        let mut served = 0;
        if let Some(listener) = self.tcp {
            served = accept_loop(listener, &cfg, &shutdown, &stats, &mut sessions).await;
        } else {
            shutdown.wait().await;
        }
        let drained = tokio::time::timeout(cfg.grace, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        let cut_at_grace = if drained.is_err() {
            let n = sessions.len();
            tracing::warn!(sessions = n, grace = ?cfg.grace, "grace period over: closing sessions still open");
            sessions.shutdown().await;
            n
        } else {
            0
        };
        let datagrams = match udp_task {
            Some(t) => t.await.unwrap_or(0),
            None => 0,
        };
        Ok(EchoSummary {
            sessions: served,
            datagrams,
            cut_at_grace,
        })
    }
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // `[::]` serves IPv4 as well, whatever the sysctl default says.
        sock.set_only_v6(false)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(false)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Accept until shutdown; returns how many sessions were started.
async fn accept_loop(
    listener: TcpListener,
    cfg: &Arc<EchoConfig>,
    shutdown: &Shutdown,
    stats: &ServerStats,
    sessions: &mut JoinSet<()>,
) -> u64 {
    let slots = Arc::new(Semaphore::new(cfg.max_conns.max(1)));
    let mut backoff = Duration::from_millis(10);
    let mut served = 0;
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: wait for sessions to end instead
                // of spinning on an accept that keeps failing.
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.refused();
            tracing::info!(%peer, max = cfg.max_conns, "refused: too many connections");
            drop(stream);
            continue;
        };
        served += 1;
        let guard = stats.connection();
        let (cfg, stats, stop) = (cfg.clone(), stats.clone(), shutdown.clone());
        sessions.spawn(async move {
            let _permit = permit;
            let _guard = guard;
            tracing::info!(%peer, "tcp session opened");
            match session(stream, &cfg, &stats, &stop).await {
                Ok(n) => tracing::info!(%peer, bytes = n, "tcp session closed"),
                Err(e) => tracing::info!(%peer, error = %e, "tcp session ended with an error"),
            }
        });
    }
    served
}

/// Echo one TCP session; returns the bytes echoed.
async fn session(
    mut stream: TcpStream,
    cfg: &EchoConfig,
    stats: &ServerStats,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let _ = SockRef::from(&stream).set_tcp_nodelay(true);
    let mut buf = vec![0u8; cfg.buffer_size.clamp(1, 16 << 20)];
    let mut total = 0u64;
    loop {
        let read = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = read_with_timeout(&mut stream, &mut buf, cfg.idle_timeout) => r,
        };
        let n = match read {
            Some(Ok(0)) => break, // the client left
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => {
                tracing::info!(idle = ?cfg.idle_timeout, "closing idle tcp session");
                break;
            }
        };
        stats.add_in(n as u64);
        stream.write_all(&buf[..n]).await?;
        stats.add_out(n as u64);
        total += n as u64;
    }
    let _ = stream.shutdown().await;
    Ok(total)
}

/// `None` when the idle timeout passed first.
async fn read_with_timeout(
    stream: &mut TcpStream,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Option<io::Result<usize>> {
    match idle {
        Some(t) => tokio::time::timeout(t, stream.read(buf)).await.ok(),
        None => Some(stream.read(buf).await),
    }
}

/// Echo datagrams until shutdown; returns how many were echoed.
async fn udp_loop(sock: UdpSocket, shutdown: Shutdown, stats: ServerStats) -> u64 {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut echoed = 0;
    loop {
        let got = tokio::select! {
            () = shutdown.wait() => break,
            r = sock.recv_from(&mut buf) => r,
        };
        match got {
            Ok((n, peer)) => {
                stats.add_in(n as u64);
                match sock.send_to(&buf[..n], peer).await {
                    Ok(m) => {
                        stats.add_out(m as u64);
                        echoed += 1;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "udp echo not sent"),
                }
            }
            // ICMP errors for earlier replies surface here (ECONNREFUSED):
            // they concern one peer, not the server.
            Err(e) => {
                tracing::debug!(error = %e, "udp receive error");
                tokio::task::yield_now().await;
            }
        }
    }
    echoed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> EchoConfig {
        let mut c = EchoConfig::new("127.0.0.1:0".parse().unwrap());
        c.grace = Duration::from_secs(2);
        c
    }

    async fn start(
        cfg: EchoConfig,
    ) -> (
        SocketAddr,
        Shutdown,
        ServerStats,
        tokio::task::JoinHandle<Result<EchoSummary, EchoError>>,
    ) {
        let server = EchoServer::bind(cfg).await.unwrap();
        let addr = server.tcp_addr().or(server.udp_addr()).unwrap();
        if let (Some(t), Some(u)) = (server.tcp_addr(), server.udp_addr()) {
            assert_eq!(t.port(), u.port(), "TCP and UDP share the port");
        }
        let (sd, stats) = (Shutdown::new(), ServerStats::new());
        let h = tokio::spawn(server.run(sd.clone(), stats.clone()));
        (addr, sd, stats, h)
    }

    #[tokio::test]
    async fn tcp_and_udp_echo_on_one_port() {
        let (addr, sd, stats, h) = start(local()).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (mut rd, mut wr) = c.split();
        let send = async {
            wr.write_all(&data).await.unwrap();
            wr.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let recv = rd.read_to_end(&mut back);
        let ((), got) = tokio::join!(send, recv);
        got.unwrap();
        assert_eq!(back, data, "echoed byte for byte, and closed after our EOF");

        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        u.send_to(b"ping", addr).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), u.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], addr));

        sd.trigger();
        let sum = h.await.unwrap().unwrap();
        assert_eq!((sum.sessions, sum.datagrams, sum.cut_at_grace), (1, 1, 0));
        let snap = stats.snapshot();
        assert_eq!(snap.bytes_in, 100_004);
        assert_eq!(snap.bytes_out, 100_004);
        assert_eq!(snap.active, 0);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_refused() {
        let mut cfg = local();
        cfg.max_conns = 1;
        cfg.udp = false;
        let (addr, sd, stats, h) = start(cfg).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        first.read_exact(&mut b).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut b))
            .await
            .unwrap();
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "the second connection is closed"
        );
        assert_eq!(stats.snapshot().refused, 1);
        sd.trigger();
        h.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn idle_sessions_are_closed() {
        let mut cfg = local();
        cfg.idle_timeout = Some(Duration::from_millis(100));
        let (addr, sd, _stats, h) = start(cfg).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
        sd.trigger();
        h.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_closes_sessions_and_cuts_stuck_ones_at_grace() {
        let mut cfg = local();
        cfg.grace = Duration::from_millis(300);
        cfg.buffer_size = 64 * 1024;
        let (addr, sd, _stats, h) = start(cfg).await;
        // A polite client: its session ends on shutdown with EOF.
        let mut polite = TcpStream::connect(addr).await.unwrap();
        // A client that writes without reading until the server blocks.
        let mut stuck = TcpStream::connect(addr).await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let filled = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                stuck.write_all(&chunk).await.unwrap();
            }
        })
        .await;
        assert!(filled.is_err(), "writes eventually block");
        sd.trigger();
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), polite.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "polite session closed on shutdown");
        let sum = tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(sum.cut_at_grace, 1);
    }

    #[tokio::test]
    async fn a_taken_port_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = EchoServer::bind(EchoConfig::new(taken.local_addr().unwrap()))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(&taken.local_addr().unwrap().to_string()),
            "{e}"
        );
        let mut off = local();
        (off.tcp, off.udp) = (false, false);
        assert!(matches!(
            EchoServer::bind(off).await,
            Err(EchoError::NothingToServe)
        ));
    }
}
