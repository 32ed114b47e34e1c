//! Blocking connects (for callers that move bytes on their own threads)
//! and the source address both kinds of connect bind first.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{ConnectError, no_address};
use crate::net::addr::Family;

/// The local address to bind before connecting to `to`: `None` to let the
/// system choose (`Some(None)`), the source adapted to `to`'s family
/// (`Some(Some(..))`), or `None` when the source's family cannot reach it.
#[expect(
    clippy::option_option,
    reason = "skip / system's choice / this address"
)]
pub(crate) fn source_for(source: Option<SocketAddr>, to: SocketAddr) -> Option<Option<SocketAddr>> {
    let Some(src) = source else {
        return Some(None);
    };
    if src.ip().is_unspecified() {
        let ip: std::net::IpAddr = if to.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        return Some(Some(SocketAddr::new(ip, src.port())));
    }
    (src.is_ipv4() == to.is_ipv4()).then_some(Some(src))
}

/// A bind failure of the source address, saying which address.
pub(super) fn source_error(from: SocketAddr, e: &io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => ": no interface of this host has that address",
        Some(libc::EADDRINUSE) => ": another socket uses that port",
        Some(libc::EACCES) => ": ports below 1024 need root or CAP_NET_BIND_SERVICE",
        _ => "",
    };
    io::Error::new(
        e.kind(),
        format!("binding the source address {from}: {e}{hint}"),
    )
}

/// Blocking connect over `addrs` in turn, each attempt bounded by
/// `timeout`, for callers that move bytes on their own threads. The stream
/// is blocking, with `TCP_NODELAY`.
pub fn connect_blocking(
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
) -> Result<std::net::TcpStream, ConnectError> {
    connect_blocking_from(addrs, timeout, None)
}

/// [`connect_blocking`] from a source address and port (see
/// [`Connector::source`](super::Connector::source)); addresses of the other family than the source
/// are skipped.
pub fn connect_blocking_from(
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> Result<std::net::TcpStream, ConnectError> {
    let mut last = None;
    for &addr in addrs {
        let Some(from) = source_for(source, addr) else {
            continue;
        };
        let attempt = || {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            if let Some(from) = from {
                if from.port() != 0 {
                    sock.set_reuse_address(true)?;
                }
                sock.bind(&SockAddr::from(from))
                    .map_err(|e| source_error(from, &e))?;
            }
            let sa = SockAddr::from(addr);
            match timeout {
                Some(t) => sock.connect_timeout(&sa, t)?,
                None => sock.connect(&sa)?,
            }
            Ok::<_, io::Error>(sock)
        };
        match attempt() {
            Ok(sock) => {
                let _ = sock.set_tcp_nodelay(true);
                return Ok(sock.into());
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && timeout.is_some() => {
                let timeout = timeout.unwrap_or_default();
                last = Some(ConnectError::Timeout { addr, timeout });
            }
            Err(source) => last = Some(ConnectError::Connect { addr, source }),
        }
    }
    let family = match source {
        Some(s) if !s.ip().is_unspecified() && s.is_ipv4() => Family::V4,
        Some(s) if !s.ip().is_unspecified() => Family::V6,
        _ => Family::Any,
    };
    Err(last.unwrap_or_else(|| no_address(addrs, family)))
}
