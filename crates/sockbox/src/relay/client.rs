//! The connecting side (`sockbox connect`): connect — blocking
//! ([`connect_tcp`], [`connect_udp`], [`connect_unix`],
//! [`connect_unix_datagram`]) for the splice pump and programs, or with
//! [`Connector`](crate::net::Connector) for TLS and proxies
//! ([`relay_stream`]) — then relay the socket to standard input/output or
//! to a program.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::dump::Dump;
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::exec::{ExecSpec, Program, relay_program};
use super::hub::stdin_chunks;
use super::pump::{PumpEnds, PumpExtras, Stopper, pump, stdio_fds, take_stdout};
use super::session::{self, Ends, Extras};
use super::{Peer, RelayError, RelayOptions, Report};
use crate::Shutdown;
use crate::net::client::{connect_blocking_from, source_for};
use crate::net::{Bind, ClientStream, ConnectError, Family, wildcard};

/// A connected socket.
#[derive(Debug)]
pub enum Connected {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// UDP, connected to its peer.
    Udp(std::net::UdpSocket),
    /// A UNIX-domain stream socket.
    Unix(UnixStream),
    /// A UNIX-domain datagram socket, connected to its peer.
    UnixDatagram(UnixDatagram),
}

impl Connected {
    /// The peer's address.
    pub fn peer(&self) -> Result<Peer, RelayError> {
        match self {
            Self::Tcp(s) => s.peer_addr().map(Peer::Inet),
            Self::Udp(s) => s.peer_addr().map(Peer::Inet),
            Self::Unix(s) => s.peer_addr().map(|a| Peer::from_unix(&a)),
            Self::UnixDatagram(s) => s.peer_addr().map(|a| Peer::from_unix(&a)),
        }
        .map_err(|e| {
            // A connected socket without a peer was reset since.
            if e.raw_os_error() == Some(libc::ENOTCONN) && !self.is_datagram() {
                RelayError::ResetAtOnce
            } else {
                RelayError::Setup(e)
            }
        })
    }

    /// This end's address.
    pub fn local(&self) -> Option<Peer> {
        match self {
            Self::Tcp(s) => s.local_addr().ok().map(Peer::Inet),
            Self::Udp(s) => s.local_addr().ok().map(Peer::Inet),
            Self::Unix(s) => s.local_addr().ok().map(|a| Peer::from_unix(&a)),
            Self::UnixDatagram(s) => s.local_addr().ok().map(|a| Peer::from_unix(&a)),
        }
    }

    /// True for the datagram sockets (one datagram per chunk, no half-close).
    pub fn is_datagram(&self) -> bool {
        matches!(self, Self::Udp(_) | Self::UnixDatagram(_))
    }

    /// `tcp`, `udp`, `unix` or `unixgram`, as a program's environment says it.
    pub fn proto(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp",
            Self::Udp(_) => "udp",
            Self::Unix(_) => "unix",
            Self::UnixDatagram(_) => "unixgram",
        }
    }

    fn into_fd(self) -> OwnedFd {
        match self {
            Self::Tcp(s) => s.into(),
            Self::Udp(s) => s.into(),
            Self::Unix(s) => s.into(),
            Self::UnixDatagram(s) => s.into(),
        }
    }
}

/// Connect over TCP to the first of `addrs` that answers, each attempt
/// bounded by `timeout`, from `source` when given (see
/// [`Connector::source`](crate::net::Connector::source)). Blocking.
pub fn connect_tcp(
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> Result<Connected, RelayError> {
    Ok(Connected::Tcp(connect_blocking_from(
        addrs, timeout, source,
    )?))
}

/// A UDP socket connected to the first of `addrs` that it can be connected
/// to (UDP connect sends nothing; it fixes the peer), bound to `source`
/// when given (its port 0 lets the system choose). `SO_BROADCAST` is on,
/// so the peer may be a broadcast address.
pub fn connect_udp(
    addrs: &[SocketAddr],
    source: Option<SocketAddr>,
) -> Result<Connected, RelayError> {
    let mut last = None;
    for &addr in addrs {
        let family = if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let local = match source_for(source, addr) {
            None => continue,
            Some(Some(s)) => s,
            Some(None) => wildcard(0, family),
        };
        let sock = Bind::new(local)
            .broadcast(true)
            .v4_fallback(false)
            .udp_std()?;
        match sock.connect(addr) {
            Ok(()) => return Ok(Connected::Udp(sock)),
            Err(source) => last = Some(ConnectError::Connect { addr, source }),
        }
    }
    let none = || {
        let host = addrs
            .first()
            .map_or_else(|| "(no addresses)".to_owned(), |a| a.ip().to_string());
        let family = match source {
            Some(s) if !s.ip().is_unspecified() && s.is_ipv4() => Family::V4,
            Some(s) if !s.ip().is_unspecified() => Family::V6,
            _ => Family::Any,
        };
        ConnectError::Addr(crate::net::AddrError::NoAddress { host, family })
    };
    Err(last.unwrap_or_else(none).into())
}

/// Connect to the UNIX-domain stream socket at `path`. Blocking.
pub fn connect_unix(path: &Path) -> Result<Connected, RelayError> {
    UnixStream::connect(path)
        .map(Connected::Unix)
        .map_err(|source| RelayError::UnixConnect {
            path: path.to_path_buf(),
            source,
        })
}

/// A UNIX-domain datagram socket connected to `path`, bound to `source`
/// (a path the caller removes when done), or else to a Linux abstract name
/// (`@sockbox-PID-N`, no file to clean up), so that the server can answer.
pub fn connect_unix_datagram(path: &Path, source: Option<&Path>) -> Result<Connected, RelayError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let fail = |source| RelayError::UnixConnect {
        path: path.to_path_buf(),
        source,
    };
    let sock = if let Some(me) = source {
        UnixDatagram::bind(me).map_err(|e| RelayError::UnixBind {
            path: me.to_path_buf(),
            why: e.to_string(),
            in_use: e.kind() == std::io::ErrorKind::AddrInUse,
        })?
    } else {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sockbox-{}-{n}", std::process::id());
        let me = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(RelayError::Setup)?;
        UnixDatagram::bind_addr(&me).map_err(RelayError::Setup)?
    };
    sock.connect(path).map_err(fail)?;
    Ok(Connected::UnixDatagram(sock))
}

/// Relay `sock` to this process's stdin/stdout until done. Blocking; stop
/// it from another thread with `stopper`.
pub fn relay_stdio(
    sock: Connected,
    opts: &RelayOptions,
    dump: Option<Dump>,
    stopper: &Stopper,
) -> Result<Report, RelayError> {
    let peer = sock.peer()?;
    let (input, output) = stdio_fds()?;
    let datagram = sock.is_datagram();
    let socket = sock.into_fd();
    let ends = PumpEnds {
        input,
        output,
        socket,
        peer,
        datagram,
    };
    let extras = PumpExtras {
        dump,
        ..PumpExtras::default()
    };
    pump(ends, opts, &extras, stopper)
}

/// Relay `sock` to a program started for it; the program is always reaped.
/// Must run inside a tokio runtime.
pub async fn relay_exec(
    sock: Connected,
    spec: &ExecSpec,
    opts: &RelayOptions,
    dump: Option<Dump>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let peer = sock.peer()?;
    let local = sock.local();
    let proto = sock.proto();
    let remote = remote_ends(sock).map_err(RelayError::Setup)?;
    let prog = Program {
        spec,
        peer,
        local,
        proto,
    };
    let extras = Extras {
        dump,
        ..Extras::default()
    };
    relay_program(prog, remote, opts, &extras, None, stop, stop).await
}

/// The async ends of a connected socket (the tokio runtime must be running).
fn remote_ends(sock: Connected) -> std::io::Result<(RemoteIn, RemoteOut)> {
    Ok(match sock {
        Connected::Tcp(s) => {
            s.set_nonblocking(true)?;
            let (r, w) = tokio::net::TcpStream::from_std(s)?.into_split();
            (RemoteIn::Tcp(r), RemoteOut::Tcp(w))
        }
        Connected::Udp(s) => {
            s.set_nonblocking(true)?;
            let s = Arc::new(tokio::net::UdpSocket::from_std(s)?);
            (RemoteIn::Udp(Arc::clone(&s)), RemoteOut::Udp(s))
        }
        Connected::Unix(s) => {
            s.set_nonblocking(true)?;
            let (r, w) = tokio::io::split(tokio::net::UnixStream::from_std(s)?);
            (
                RemoteIn::Stream(Box::new(r)),
                RemoteOut::Stream(Box::new(w)),
            )
        }
        Connected::UnixDatagram(s) => {
            s.set_nonblocking(true)?;
            let s = Arc::new(tokio::net::UnixDatagram::from_std(s)?);
            (RemoteIn::UnixDgram(Arc::clone(&s)), RemoteOut::UnixDgram(s))
        }
    })
}

/// What a TLS client relays to.
#[derive(Clone, Debug)]
pub enum ClientLocal {
    /// Standard input/output.
    Stdio,
    /// A program.
    Exec(ExecSpec),
}

/// Relay a connection made by [`Connector`](crate::net::Connector) (TLS,
/// or plain TCP) to stdin/stdout or a program. Must run inside a tokio
/// runtime.
pub async fn relay_stream(
    stream: ClientStream,
    local: &ClientLocal,
    opts: &RelayOptions,
    dump: Option<Dump>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let peer = Peer::Inet(stream.peer_addr().map_err(RelayError::Setup)?);
    let local_addr = stream.tcp().local_addr().ok().map(Peer::Inet);
    let proto = match stream {
        ClientStream::Tls(_) => "tls",
        ClientStream::Tcp(_) => "tcp",
    };
    let (r, w) = tokio::io::split(stream);
    let (remote_in, remote_out) = (
        RemoteIn::Stream(Box::new(r)),
        RemoteOut::Stream(Box::new(w)),
    );
    let extras = Extras {
        dump,
        ..Extras::default()
    };
    match local {
        ClientLocal::Stdio => {
            let out = std::fs::File::from(take_stdout()?);
            let ends = Ends {
                local_in: LocalIn::Chunks(stdin_chunks()),
                local_out: LocalOut::Writer(Box::new(tokio::fs::File::from_std(out))),
                remote_in,
                remote_out,
                peer,
                finish_input: true,
            };
            session::run(ends, opts, &extras, None, stop).await
        }
        ClientLocal::Exec(spec) => {
            let prog = Program {
                spec,
                peer,
                local: local_addr,
                proto,
            };
            let remote = (remote_in, remote_out);
            relay_program(prog, remote, opts, &extras, None, stop, stop).await
        }
    }
}
