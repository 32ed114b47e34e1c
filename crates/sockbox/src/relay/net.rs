//! Name resolution, connecting with a timeout, and binding listening
//! sockets (dual-stack by default) for the relay.

use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket,
};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::RelayError;

/// Address family restriction (`-4`, `-6`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// Either.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    fn admits(self, a: &SocketAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => a.is_ipv4(),
            Self::V6 => a.is_ipv6(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::V6 => "IPv6",
            _ => "IPv4",
        }
    }
}

/// Resolve `host` (a name or an address literal, brackets allowed around
/// IPv6) and keep the addresses of `family`, in resolver order.
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, RelayError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        (bare, port)
            .to_socket_addrs()
            .map_err(|source| RelayError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .collect()
    };
    let kept: Vec<SocketAddr> = found.into_iter().filter(|a| family.admits(a)).collect();
    if kept.is_empty() {
        return Err(RelayError::NoAddress {
            host: host.to_owned(),
            family: family.name(),
        });
    }
    Ok(kept)
}

/// Connect over TCP to the first address that answers, each attempt bounded
/// by `timeout`. The stream is blocking with `TCP_NODELAY` set.
pub fn connect_tcp(
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
) -> Result<TcpStream, RelayError> {
    let mut last = None;
    for &addr in addrs {
        let result = (|| {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            let sa = SockAddr::from(addr);
            match timeout {
                Some(t) => sock.connect_timeout(&sa, t)?,
                None => sock.connect(&sa)?,
            }
            Ok::<_, std::io::Error>(sock)
        })();
        match result {
            Ok(sock) => {
                let _ = sock.set_tcp_nodelay(true);
                return Ok(sock.into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = Some(match timeout {
                    Some(timeout) => RelayError::ConnectTimeout { addr, timeout },
                    None => RelayError::Connect { addr, source: e },
                });
            }
            Err(source) => last = Some(RelayError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or(RelayError::NoAddress {
        host: "(no addresses)".into(),
        family: "IPv4",
    }))
}

/// A UDP socket connected to the first address (UDP connect cannot fail on
/// the wire; it only fixes the peer).
pub fn connect_udp(addrs: &[SocketAddr]) -> Result<UdpSocket, RelayError> {
    let mut last = None;
    for &addr in addrs {
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let r = UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s));
        match r {
            Ok(s) => return Ok(s),
            Err(source) => last = Some(RelayError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or(RelayError::NoAddress {
        host: "(no addresses)".into(),
        family: "IPv4",
    }))
}

/// The addresses to listen on: `host` resolved, or the wildcard of the
/// family (`[::]` dual-stack for [`Family::Any`]).
pub fn listen_addrs(
    host: Option<&str>,
    port: u16,
    family: Family,
) -> Result<Vec<SocketAddr>, RelayError> {
    match host {
        Some(h) => resolve(h, port, family).map(|mut v| {
            v.truncate(1);
            v
        }),
        None => Ok(vec![match family {
            Family::V4 => (Ipv4Addr::UNSPECIFIED, port).into(),
            Family::V6 | Family::Any => (Ipv6Addr::UNSPECIFIED, port).into(),
        }]),
    }
}

fn new_bound(addr: SocketAddr, ty: Type, only_v6: bool) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(only_v6)?;
    }
    if ty == Type::STREAM {
        sock.set_reuse_address(true)?;
    }
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock)
}

/// Bind with a fallback: the dual-stack wildcard falls back to `0.0.0.0`
/// on hosts without IPv6.
fn bind_with_fallback(addr: SocketAddr, ty: Type, family: Family) -> Result<Socket, RelayError> {
    let only_v6 = family == Family::V6;
    match new_bound(addr, ty, only_v6) {
        Ok(s) => Ok(s),
        Err(e)
            if family == Family::Any
                && addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4: SocketAddr = (Ipv4Addr::UNSPECIFIED, addr.port()).into();
            new_bound(v4, ty, false).map_err(|source| RelayError::Bind { addr: v4, source })
        }
        Err(source) => Err(RelayError::Bind { addr, source }),
    }
}

/// A listening TCP socket (`SO_REUSEADDR`, backlog 1024), non-blocking.
pub fn bind_tcp(addr: SocketAddr, family: Family) -> Result<TcpListener, RelayError> {
    let sock = bind_with_fallback(addr, Type::STREAM, family)?;
    sock.listen(1024)
        .map_err(|source| RelayError::Bind { addr, source })?;
    sock.set_nonblocking(true).map_err(RelayError::Setup)?;
    Ok(sock.into())
}

/// A bound UDP socket, non-blocking.
pub fn bind_udp(addr: SocketAddr, family: Family) -> Result<UdpSocket, RelayError> {
    let sock = bind_with_fallback(addr, Type::DGRAM, family)?;
    sock.set_nonblocking(true).map_err(RelayError::Setup)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_families() {
        let v = resolve("[::1]", 7, Family::Any).unwrap();
        assert_eq!(v, vec!["[::1]:7".parse().unwrap()]);
        assert!(matches!(
            resolve("127.0.0.1", 7, Family::V6),
            Err(RelayError::NoAddress { family: "IPv6", .. })
        ));
        let w = listen_addrs(None, 9, Family::V4).unwrap();
        assert_eq!(w, vec!["0.0.0.0:9".parse().unwrap()]);
    }

    #[test]
    fn connect_refused_names_the_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let err = connect_tcp(&[addr], Some(Duration::from_secs(2))).unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
