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

mod tcp;
#[cfg(test)]
mod tests;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

use crate::Shutdown;
use crate::daemon::ServerStats;
use tcp::accept_loop;
use udp::udp_loop;

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
