//! The listener builder every server binds with: IPv4 or IPv6 (the IPv6
//! wildcard serves IPv4 too unless asked not to), address and port reuse,
//! backlog, and binding to one network device.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {addr}: {source}{}", hint(source))]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// What was being done ("bind", "listen on", "bind to device eth0 for").
    pub step: String,
    /// The system error.
    #[source]
    pub source: io::Error,
}

impl BindError {
    /// True when another socket holds the address.
    pub fn in_use(&self) -> bool {
        self.source.kind() == io::ErrorKind::AddrInUse
    }

    /// True when the address does not belong to this host.
    pub fn not_local(&self) -> bool {
        self.source.raw_os_error() == Some(libc::EADDRNOTAVAIL)
    }
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => " (another program uses it: stop it or pick another port)",
        Some(libc::EACCES | libc::EPERM) => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; device binding needs CAP_NET_RAW)"
        }
        Some(libc::EADDRNOTAVAIL) => " (no interface of this host has that address)",
        Some(libc::ENODEV) => " (no such network interface)",
        _ => "",
    }
}

/// How to open a listening (TCP) or bound (UDP) socket.
///
/// ```no_run
/// # fn demo() -> Result<(), sockbox::net::BindError> {
/// use sockbox::net::Bind;
/// let listener = Bind::new("[::]:7000".parse().unwrap()).backlog(4096).tcp_std()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Bind {
    addr: SocketAddr,
    only_v6: Option<bool>,
    reuse_address: Option<bool>,
    reuse_port: bool,
    backlog: i32,
    device: Option<String>,
    v4_fallback: bool,
    broadcast: bool,
}

impl Bind {
    /// Bind `addr`. Defaults: the IPv6 wildcard also serves IPv4 (other
    /// IPv6 addresses are IPv6 only), `SO_REUSEADDR` for TCP, backlog 1024,
    /// no device, and the IPv6 wildcard falls back to `0.0.0.0` on a host
    /// without IPv6.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            only_v6: None,
            reuse_address: None,
            reuse_port: false,
            backlog: 1024,
            device: None,
            v4_fallback: true,
            broadcast: false,
        }
    }

    /// The address asked for.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// IPv6 only (`true`) or dual-stack (`false`) for an IPv6 address.
    #[must_use]
    pub fn only_v6(mut self, only: bool) -> Self {
        self.only_v6 = Some(only);
        self
    }

    /// `SO_REUSEADDR` (default: on for TCP, off for UDP).
    #[must_use]
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = Some(on);
        self
    }

    /// `SO_REUSEPORT`: several sockets share the port (default off).
    #[must_use]
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The TCP listen backlog (default 1024).
    #[must_use]
    pub fn backlog(mut self, n: i32) -> Self {
        self.backlog = n.max(1);
        self
    }

    /// `SO_BINDTODEVICE`: only traffic of this interface.
    #[must_use]
    pub fn device(mut self, name: impl Into<String>) -> Self {
        self.device = Some(name.into());
        self
    }

    /// Whether the IPv6 wildcard falls back to `0.0.0.0` where IPv6 is
    /// absent (default on).
    #[must_use]
    pub fn v4_fallback(mut self, on: bool) -> Self {
        self.v4_fallback = on;
        self
    }

    /// `SO_BROADCAST` (UDP: answers may go to broadcast addresses).
    #[must_use]
    pub fn broadcast(mut self, on: bool) -> Self {
        self.broadcast = on;
        self
    }

    /// A listening TCP socket, non-blocking, as a std listener (usable
    /// before a runtime exists).
    pub fn tcp_std(&self) -> Result<std::net::TcpListener, BindError> {
        let (sock, at) = self.open(Type::STREAM, Protocol::TCP)?;
        sock.listen(self.backlog).map_err(|source| BindError {
            addr: at,
            step: "listen on".into(),
            source,
        })?;
        Ok(sock.into())
    }

    /// A listening TCP socket registered with the current tokio runtime.
    pub fn tcp(&self) -> Result<tokio::net::TcpListener, BindError> {
        let l = self.tcp_std()?;
        tokio::net::TcpListener::from_std(l).map_err(|source| self.err("register", source))
    }

    /// A bound UDP socket, non-blocking, as a std socket.
    pub fn udp_std(&self) -> Result<std::net::UdpSocket, BindError> {
        let (sock, _) = self.open(Type::DGRAM, Protocol::UDP)?;
        Ok(sock.into())
    }

    /// A bound UDP socket registered with the current tokio runtime.
    pub fn udp(&self) -> Result<tokio::net::UdpSocket, BindError> {
        let s = self.udp_std()?;
        tokio::net::UdpSocket::from_std(s).map_err(|source| self.err("register", source))
    }

    /// The configured socket before `bind`, for callers that set more
    /// options first (multicast); bind it with [`Bind::finish`].
    pub fn socket(&self, ty: Type, proto: Protocol) -> Result<Socket, BindError> {
        self.configure(self.addr, ty, proto)
    }

    /// Bind a socket made by [`Bind::socket`] and make it non-blocking.
    pub fn finish(&self, sock: &Socket) -> Result<(), BindError> {
        sock.bind(&SockAddr::from(self.addr))
            .map_err(|source| self.err("bind", source))?;
        sock.set_nonblocking(true)
            .map_err(|source| self.err("set up", source))
    }

    fn err(&self, step: &str, source: io::Error) -> BindError {
        BindError {
            addr: self.addr,
            step: step.to_owned(),
            source,
        }
    }

    /// Open, configure and bind, with the IPv4 fallback of the wildcard.
    fn open(&self, ty: Type, proto: Protocol) -> Result<(Socket, SocketAddr), BindError> {
        match self.open_at(self.addr, ty, proto) {
            Err(e)
                if self.v4_fallback
                    && self.addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    && e.source.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
            {
                let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), self.addr.port());
                self.open_at(v4, ty, proto)
            }
            other => other,
        }
    }

    fn open_at(
        &self,
        at: SocketAddr,
        ty: Type,
        proto: Protocol,
    ) -> Result<(Socket, SocketAddr), BindError> {
        let sock = self.configure(at, ty, proto)?;
        sock.bind(&SockAddr::from(at)).map_err(|source| BindError {
            addr: at,
            step: "bind".into(),
            source,
        })?;
        sock.set_nonblocking(true).map_err(|source| BindError {
            addr: at,
            step: "set up".into(),
            source,
        })?;
        Ok((sock, at))
    }

    fn configure(&self, at: SocketAddr, ty: Type, proto: Protocol) -> Result<Socket, BindError> {
        let err = |step: &str, source| BindError {
            addr: at,
            step: step.to_owned(),
            source,
        };
        let sock = Socket::new(Domain::for_address(at), ty, Some(proto))
            .map_err(|e| err("open a socket for", e))?;
        if at.is_ipv6() {
            let only = self.only_v6.unwrap_or(!at.ip().is_unspecified());
            sock.set_only_v6(only)
                .map_err(|e| err("set IPV6_V6ONLY for", e))?;
        }
        if self.reuse_address.unwrap_or(ty == Type::STREAM) {
            sock.set_reuse_address(true)
                .map_err(|e| err("set SO_REUSEADDR for", e))?;
        }
        if self.reuse_port {
            sock.set_reuse_port(true)
                .map_err(|e| err("set SO_REUSEPORT for", e))?;
        }
        if self.broadcast {
            sock.set_broadcast(true)
                .map_err(|e| err("set SO_BROADCAST for", e))?;
        }
        if let Some(dev) = &self.device {
            sock.bind_device(Some(dev.as_bytes()))
                .map_err(|e| err(&format!("bind to device {dev} for"), e))?;
        }
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_is_dual_stack_and_options_read_back() {
        let l = Bind::new("[::]:0".parse().unwrap()).tcp_std().unwrap();
        let s = socket2::SockRef::from(&l);
        assert!(!s.only_v6().unwrap());
        assert!(s.reuse_address().unwrap());
        let port = l.local_addr().unwrap().port();
        // An IPv4 client reaches the IPv6 wildcard.
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();

        let u = Bind::new("127.0.0.1:0".parse().unwrap())
            .reuse_port(true)
            .broadcast(true)
            .udp_std()
            .unwrap();
        let s = socket2::SockRef::from(&u);
        assert!(s.reuse_port().unwrap() && s.broadcast().unwrap());
        assert!(!s.reuse_address().unwrap());
    }

    #[test]
    fn a_port_in_use_names_the_address_and_the_fix() {
        let first = Bind::new("127.0.0.1:0".parse().unwrap()).udp_std().unwrap();
        let addr = first.local_addr().unwrap();
        let err = Bind::new(addr).udp_std().unwrap_err();
        assert!(err.in_use());
        let msg = err.to_string();
        assert!(
            msg.contains(&addr.to_string()) && msg.contains("another program"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_device_is_named() {
        let err = Bind::new("127.0.0.1:0".parse().unwrap())
            .device("nosuch0")
            .tcp_std()
            .unwrap_err();
        assert!(err.to_string().contains("nosuch0"), "{err}");
    }
}
