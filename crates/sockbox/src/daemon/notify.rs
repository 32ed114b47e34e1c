//! systemd readiness notification (`sd_notify`) in a few lines: one
//! datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//!
//! The socket is connected when the [`Notifier`] is made, before any
//! `chroot`, so later messages still reach systemd from inside the jail.

use std::os::unix::net::UnixDatagram;

use super::error::DaemonError;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// A connected notification socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: String,
}

impl Notifier {
    /// Connect to `$NOTIFY_SOCKET`; `Ok(None)` when it is not set (not run
    /// by systemd, or `NotifyAccess=` off).
    pub fn from_env() -> Result<Option<Self>, DaemonError> {
        match std::env::var(NOTIFY_SOCKET) {
            Ok(addr) if !addr.is_empty() => Self::connect(&addr).map(Some),
            _ => Ok(None),
        }
    }

    /// Connect to `addr`: a filesystem path, or `@name` for an abstract socket.
    pub fn connect(addr: &str) -> Result<Self, DaemonError> {
        let err = |source| DaemonError::Notify {
            addr: addr.to_owned(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let sa =
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?;
            sock.connect_addr(&sa).map_err(err)?;
        } else if addr.starts_with('/') {
            sock.connect(addr).map_err(err)?;
        } else {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "only absolute paths and @abstract names are supported",
            )));
        }
        Ok(Self {
            sock,
            addr: addr.to_owned(),
        })
    }

    /// Send one state message (`READY=1`, `STOPPING=1`, `STATUS=...`).
    pub fn send(&self, state: &str) -> Result<(), DaemonError> {
        self.sock
            .send(state.as_bytes())
            .map(drop)
            .map_err(|source| DaemonError::Notify {
                addr: self.addr.clone(),
                source,
            })
    }

    /// `READY=1`, with `MAINPID` when the pid systemd started is not ours
    /// (after `--daemon`).
    pub fn ready(&self, main_pid: Option<u32>) -> Result<(), DaemonError> {
        match main_pid {
            Some(pid) => self.send(&format!("READY=1\nMAINPID={pid}\n")),
            None => self.send("READY=1\n"),
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) -> Result<(), DaemonError> {
        self.send("STOPPING=1\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connect(path.to_str().unwrap()).unwrap();
        n.ready(Some(42)).unwrap();
        n.stopping().unwrap();
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nMAINPID=42\n");
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1\n");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sockbox-notify-test-{}", std::process::id());
        let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&sa).unwrap();
        let n = Notifier::connect(&format!("@{name}")).unwrap();
        n.ready(None).unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\n");
    }

    #[test]
    fn bad_addresses_are_named() {
        let e = Notifier::connect("relative/sock").unwrap_err();
        assert!(e.to_string().contains("relative/sock"), "{e}");
        let e = Notifier::connect("/nonexistent-sockbox/notify").unwrap_err();
        assert!(e.to_string().contains("NOTIFY_SOCKET"), "{e}");
    }
}
