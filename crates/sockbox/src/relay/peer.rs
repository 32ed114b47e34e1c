//! Who a relay talks to: an IP address and port, or a UNIX-domain socket.

use std::fmt;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::path::PathBuf;

/// The other end of a relayed connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An IP address and port (TCP, UDP).
    Inet(SocketAddr),
    /// A UNIX-domain socket: its path (`@name` for a Linux abstract name),
    /// or `None` for a client that never bound one.
    Unix(Option<PathBuf>),
}

impl Peer {
    /// The peer of a UNIX-domain socket, from its address.
    pub fn from_unix(addr: &std::os::unix::net::SocketAddr) -> Self {
        if let Some(p) = addr.as_pathname() {
            return Self::Unix(Some(p.to_path_buf()));
        }
        match addr.as_abstract_name() {
            Some(name) => {
                let shown = format!("@{}", String::from_utf8_lossy(name));
                Self::Unix(Some(PathBuf::from(shown)))
            }
            None => Self::Unix(None),
        }
    }

    /// The IP address and port, for an IP peer.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet(a) => Some(*a),
            Self::Unix(_) => None,
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Self {
        Self::Inet(a)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(a) => a.fmt(f),
            Self::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Self::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_people_read_them() {
        let a: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(Peer::from(a).to_string(), "[::1]:9");
        assert_eq!(Peer::from(a).inet(), Some(a));
        assert_eq!(
            Peer::Unix(Some("/run/x.sock".into())).to_string(),
            "unix:/run/x.sock"
        );
        assert_eq!(Peer::Unix(None).to_string(), "unix:(unnamed)");
        let (s, _) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let unnamed = Peer::from_unix(&s.local_addr().unwrap());
        assert_eq!(unnamed, Peer::Unix(None));
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(b"sb-test").unwrap();
        assert_eq!(Peer::from_unix(&abs).to_string(), "unix:@sb-test");
    }
}
