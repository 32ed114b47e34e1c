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
//! Both sides run on the [`net`](crate::net) skeletons: the TCP side is a
//! [`Handler`](crate::net::Handler) of a [`TcpServer`], the UDP side a
//! [`DatagramHandler`](crate::net::DatagramHandler) of a [`UdpServer`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::echo::EchoError> {
//! use sockbox::echo::{EchoConfig, EchoServer};
//! let server = EchoServer::bind(EchoConfig::new("127.0.0.1:7007".parse().unwrap()))?;
//! let shutdown = sockbox::Shutdown::new();
//! let report = server.run(shutdown).await?;
//! # Ok(()) }
//! ```

mod tcp;
#[cfg(test)]
mod tests;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::Shutdown;
use crate::net::{Bind, BindError, ServerOptions, TcpServer, UdpServer};
use tcp::EchoTcp;
use udp::EchoUdp;

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
    /// Bytes of the per-session echo buffer.
    pub buffer_size: usize,
    /// End a TCP session that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Admission, grace, statistics and events (shared by both sides;
    /// `max_conns` caps TCP sessions).
    pub server: ServerOptions,
}

impl EchoConfig {
    /// TCP and UDP on `addr`, 100 sessions, 16 KiB buffers, no idle timeout,
    /// 10 s grace.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            tcp: true,
            udp: true,
            buffer_size: 16 * 1024,
            idle_timeout: None,
            server: ServerOptions {
                max_conns: 100,
                ..ServerOptions::default()
            },
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
    #[error("TCP: {0}")]
    BindTcp(#[source] BindError),
    /// The UDP port could not be bound.
    #[error("UDP: {0}")]
    BindUdp(#[source] BindError),
    /// Receiving datagrams failed for good.
    #[error("receiving UDP datagrams on {1}: {0}")]
    Recv(#[source] io::Error, SocketAddr),
}

impl EchoError {
    /// The system error of a failed bind.
    pub fn bind_error(&self) -> Option<&BindError> {
        match self {
            Self::BindTcp(e) | Self::BindUdp(e) => Some(e),
            _ => None,
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoReport {
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
    tcp: Option<TcpServer<EchoTcp>>,
    udp: Option<UdpServer<EchoUdp>>,
}

impl EchoServer {
    /// Bind the sockets (TCP first, so port 0 can pick a port UDP then
    /// shares). Must run inside a tokio runtime.
    pub fn bind(cfg: EchoConfig) -> Result<Self, EchoError> {
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
                let b = Bind::new(cfg.addr).only_v6(false);
                Some(b.tcp().map_err(EchoError::BindTcp)?)
            } else {
                None
            };
            let mut udp_addr = cfg.addr;
            if let Some(port) = tcp
                .as_ref()
                .and_then(|l| l.local_addr().ok())
                .map(|a| a.port())
            {
                udp_addr.set_port(port);
            }
            let udp = if cfg.udp {
                match Bind::new(udp_addr).only_v6(false).broadcast(true).udp() {
                    Ok(s) => Some(s),
                    Err(e) => {
                        last = Some(EchoError::BindUdp(e));
                        continue;
                    }
                }
            } else {
                None
            };
            return Self::from_sockets(tcp, udp, cfg);
        }
        Err(last.unwrap_or(EchoError::NothingToServe))
    }

    /// Serve on sockets bound elsewhere (either may be absent).
    pub fn from_sockets(
        tcp: Option<tokio::net::TcpListener>,
        udp: Option<tokio::net::UdpSocket>,
        cfg: EchoConfig,
    ) -> Result<Self, EchoError> {
        let setup = |e: io::Error| BindError {
            addr: cfg.addr,
            step: "set up".into(),
            source: e,
        };
        let tcp = match tcp {
            Some(l) => Some(
                TcpServer::from_listener(l, EchoTcp::new(&cfg), cfg.server.clone())
                    .map_err(|e| EchoError::BindTcp(setup(e)))?,
            ),
            None => None,
        };
        let udp = match udp {
            Some(s) => Some(
                UdpServer::from_socket(s, EchoUdp, cfg.server)
                    .map_err(|e| EchoError::BindUdp(setup(e)))?,
            ),
            None => None,
        };
        Ok(Self { tcp, udp })
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(TcpServer::local_addr)
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(UdpServer::local_addr)
    }

    /// Serve until `shutdown` fires, then drain for up to the grace period.
    pub async fn run(self, shutdown: Shutdown) -> Result<EchoReport, EchoError> {
        let udp_addr = self.udp_addr();
        let udp = self.udp.map(|s| tokio::spawn(s.run(shutdown.clone())));
        let tcp = if let Some(s) = self.tcp {
            s.run(shutdown).await
        } else {
            shutdown.wait().await;
            crate::net::ServerReport::default()
        };
        let datagrams = match (udp, udp_addr) {
            (Some(task), Some(addr)) => match task.await {
                Ok(Ok(r)) => r.accepted,
                Ok(Err(e)) => return Err(EchoError::Recv(e, addr)),
                Err(e) => return Err(EchoError::Recv(io::Error::other(e), addr)),
            },
            _ => 0,
        };
        Ok(EchoReport {
            sessions: tcp.accepted,
            datagrams,
            cut_at_grace: tcp.cut_at_grace,
        })
    }
}
