//! The client side: connect over every resolved address with a timeout
//! per attempt, from a chosen source address and port if asked, through a
//! SOCKS or HTTP proxy if asked ([`super::proxy`]), optionally wrap the
//! stream in TLS, and reconnect with back-off when the server goes away.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::net::ConnectError> {
//! use std::time::Duration;
//! use sockbox::net::{Connector, Reconnect};
//! let connector = Connector::new().timeout(Duration::from_secs(3));
//! let stream = connector.connect("localhost", 7000).await?;
//! // or: keep trying (1 s, 2 s, 4 s… up to 30 s apart) until it answers
//! let mut again = Reconnect::new(connector, "localhost", 7000);
//! let stream = again.connect(&sockbox::Shutdown::new()).await?;
//! # drop(stream); Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::addr::{AddrError, Family, resolve_async};
use super::backoff::Backoff;
use super::proxy::{Proxy, ProxyError};

mod blocking;

use crate::Shutdown;
use crate::tls::{ClientTlsStream, TlsConnector, TlsError};
use blocking::source_error;
pub(crate) use blocking::source_for;
pub use blocking::{connect_blocking, connect_blocking_from};

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host gave no address.
    #[error(transparent)]
    Addr(#[from] AddrError),
    /// Every address refused or failed; this is the last one's error.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried (the last when there were several).
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The attempt took longer than the timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The TLS handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The proxy did not open the tunnel.
    #[error("proxy {proxy}: {source}")]
    Proxy {
        /// The proxy (`host:port`).
        proxy: String,
        /// What went wrong.
        #[source]
        source: ProxyError,
    },
    /// The proxy handshake took longer than the timeout.
    #[error("the handshake with proxy {proxy} timed out after {timeout:?}")]
    ProxyTimeout {
        /// The proxy (`host:port`).
        proxy: String,
        /// The limit.
        timeout: Duration,
    },
    /// The TLS handshake took longer than the timeout.
    #[error("TLS handshake with {addr} timed out after {timeout:?}")]
    TlsTimeout {
        /// The server.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// Shutdown fired before a connection was made.
    #[error("stopped before a connection was made")]
    Stopped,
    /// [`Reconnect`] ran out of attempts.
    #[error("gave up after {attempts} attempts; the last: {last}")]
    GaveUp {
        /// How many were made.
        attempts: u32,
        /// The last error.
        last: Box<ConnectError>,
    },
}

/// A connected stream, plain or TLS.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tcp(s) => s,
            Self::Tls(s) => s.get_ref().0,
        }
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How to connect: timeout per attempt, family, source address, proxy, TLS.
#[derive(Clone, Default)]
pub struct Connector {
    timeout: Option<Duration>,
    family: Family,
    tls: Option<TlsConnector>,
    server_name: Option<String>,
    source: Option<SocketAddr>,
    proxy: Option<Proxy>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .field("family", &self.family)
            .field("tls", &self.tls.is_some())
            .field("source", &self.source)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Plain TCP, either family, the system's connect timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Give up on one address after `timeout` (the TLS handshake gets as long).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Only addresses of `family`.
    #[must_use]
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Connect from this local address and port. An unspecified address
    /// (`0.0.0.0:5000`, `[::]:5000`) fixes only the port, for either family;
    /// port 0 lets the system choose. A given port is bound with
    /// `SO_REUSEADDR`, so a quick second run is not refused.
    #[must_use]
    pub fn source(mut self, source: SocketAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Connect through `proxy`: [`Connector::connect`] connects to the
    /// proxy (its name resolved here) and asks it for the host, whose name
    /// the proxy resolves (SOCKS4: see [`super::proxy`]). The timeout
    /// bounds the connection to the proxy and, again, its handshake.
    #[must_use]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Speak TLS over the connection; the certificate must match the host
    /// name given to [`Connector::connect`] (or [`Connector::server_name`]).
    #[must_use]
    pub fn tls(mut self, connector: TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// The name the server certificate must match, when it is not the
    /// host connected to.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Resolve `host` and connect to its addresses in turn until one
    /// answers; then the TLS handshake, if any.
    pub async fn connect(&self, host: &str, port: u16) -> Result<ClientStream, ConnectError> {
        if let Some(proxy) = &self.proxy {
            let (tcp, addr) = self.through(proxy, host, port).await?;
            return self.secure(tcp, addr, host).await;
        }
        let addrs = resolve_async(host, port, self.family).await?;
        self.connect_addrs(&addrs, host).await
    }

    /// Connect to `addrs` in turn; `name` is the TLS server name. Through
    /// a proxy, the proxy is asked for the first of `addrs`.
    pub async fn connect_addrs(
        &self,
        addrs: &[SocketAddr],
        name: &str,
    ) -> Result<ClientStream, ConnectError> {
        if let Some(proxy) = &self.proxy {
            let Some(first) = addrs.first() else {
                return Err(no_address(addrs, self.family));
            };
            let ip = first.ip().to_string();
            let (tcp, addr) = self.through(proxy, &ip, first.port()).await?;
            return self.secure(tcp, addr, name).await;
        }
        let (tcp, addr) = self.first_answer(addrs).await?;
        self.secure(tcp, addr, name).await
    }

    /// Connect to `proxy` and have it open a tunnel to `host`:`port`.
    async fn through(
        &self,
        proxy: &Proxy,
        host: &str,
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let addrs = resolve_async(&proxy.host, proxy.port, self.family).await?;
        let (mut tcp, addr) = self.first_answer(&addrs).await?;
        let done = self
            .timed_handshake(addr, proxy.handshake(&mut tcp, host, port))
            .await;
        let Err(ConnectError::Proxy {
            source: ProxyError::Reconnect(retry),
            ..
        }) = done
        else {
            return done.map(|()| (tcp, addr));
        };
        // An HTTP proxy that asked for credentials: answer on a new
        // connection to the same proxy address.
        drop(tcp);
        let (mut tcp, addr) = self.first_answer(&[addr]).await?;
        self.timed_handshake(addr, proxy.answer(&mut tcp, host, port, &retry))
            .await?;
        Ok((tcp, addr))
    }

    /// A proxy handshake with `proxy` (its address), within the timeout.
    async fn timed_handshake(
        &self,
        proxy: SocketAddr,
        handshake: impl Future<Output = Result<(), ProxyError>>,
    ) -> Result<(), ConnectError> {
        let done = match self.timeout {
            Some(timeout) => tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| ConnectError::ProxyTimeout {
                    proxy: proxy.to_string(),
                    timeout,
                })?,
            None => handshake.await,
        };
        done.map_err(|source| ConnectError::Proxy {
            proxy: proxy.to_string(),
            source,
        })
    }

    /// `TCP_NODELAY`, then the TLS handshake if asked for.
    async fn secure(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        name: &str,
    ) -> Result<ClientStream, ConnectError> {
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(ClientStream::Tcp(tcp));
        };
        let name = self.server_name.as_deref().unwrap_or(name);
        let handshake = crate::tls::connect(tls, name, tcp);
        let stream = match self.timeout {
            Some(timeout) => tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| ConnectError::TlsTimeout { addr, timeout })??,
            None => handshake.await?,
        };
        Ok(ClientStream::Tls(Box::new(stream)))
    }

    async fn first_answer(
        &self,
        addrs: &[SocketAddr],
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let mut last = None;
        for &addr in addrs.iter().filter(|a| self.family.admits(a)) {
            let Some(from) = source_for(self.source, addr) else {
                continue;
            };
            let attempt = async move {
                let sock = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                if let Some(from) = from {
                    if from.port() != 0 {
                        sock.set_reuseaddr(true)?;
                    }
                    sock.bind(from).map_err(|e| source_error(from, &e))?;
                }
                sock.connect(addr).await
            };
            let result = match self.timeout {
                Some(timeout) => match tokio::time::timeout(timeout, attempt).await {
                    Ok(r) => r.map_err(|source| ConnectError::Connect { addr, source }),
                    Err(_) => Err(ConnectError::Timeout { addr, timeout }),
                },
                None => attempt
                    .await
                    .map_err(|source| ConnectError::Connect { addr, source }),
            };
            match result {
                Ok(s) => return Ok((s, addr)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| no_address(addrs, self.family)))
    }
}

/// Connects, and connects again after the server went away, with
/// exponential back-off between failed attempts.
#[derive(Debug)]
pub struct Reconnect {
    connector: Connector,
    host: String,
    port: u16,
    backoff: Backoff,
    max_attempts: Option<u32>,
}

impl Reconnect {
    /// Retry `host`:`port` forever, 1 s doubling to 30 s apart, with jitter.
    pub fn new(connector: Connector, host: impl Into<String>, port: u16) -> Self {
        Self {
            connector,
            host: host.into(),
            port,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(),
            max_attempts: None,
        }
    }

    /// Use these delays between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Give up after `n` failed attempts in a row (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// Connect, retrying until it works, `shutdown` fires, or the
    /// attempts run out. A name is resolved again at every attempt, so a
    /// server that moved is found. Usage errors (an empty or malformed
    /// host) are returned at once: retrying cannot fix them.
    pub async fn connect(&mut self, shutdown: &Shutdown) -> Result<ClientStream, ConnectError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = tokio::select! {
                r = self.connector.connect(&self.host, self.port) => r,
                () = shutdown.wait() => return Err(ConnectError::Stopped),
            };
            let err = match attempt {
                Ok(s) => {
                    self.backoff.reset();
                    return Ok(s);
                }
                Err(ConnectError::Addr(e)) if e.is_usage() => return Err(ConnectError::Addr(e)),
                Err(e) => e,
            };
            if self.max_attempts.is_some_and(|max| attempts >= max) {
                return Err(ConnectError::GaveUp {
                    attempts,
                    last: Box::new(err),
                });
            }
            let wait = self.backoff.next_delay();
            tracing::debug!(host = %self.host, port = self.port, "connect failed ({err}); again in {wait:?}");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => return Err(ConnectError::Stopped),
            }
        }
    }
}

fn no_address(addrs: &[SocketAddr], family: Family) -> ConnectError {
    let host = addrs
        .first()
        .map_or_else(|| "(no addresses)".to_owned(), |a| a.ip().to_string());
    ConnectError::Addr(AddrError::NoAddress { host, family })
}

#[cfg(test)]
mod tests;
