//! The connecting side (`sockbox connect`): connect — blocking
//! ([`connect_tcp`], [`connect_udp`]) for the splice pump and programs, or
//! with [`Connector`](crate::net::Connector) for TLS ([`relay_stream`]) —
//! then relay the socket to standard input/output or to a program.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use super::dump::Dump;
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::exec::{ExecSpec, Program, relay_program};
use super::hub::stdin_chunks;
use super::pump::{PumpEnds, PumpExtras, Stopper, pump, stdio_fds};
use super::session::{self, Ends, Extras};
use super::{RelayError, RelayOptions, Report};
use crate::Shutdown;
use crate::net::client::connect_blocking;
use crate::net::{Bind, ClientStream, ConnectError, Family, wildcard};

/// A connected socket.
#[derive(Debug)]
pub enum Connected {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// UDP, connected to its peer.
    Udp(std::net::UdpSocket),
}

impl Connected {
    /// The peer's address.
    pub fn peer(&self) -> Result<SocketAddr, RelayError> {
        match self {
            Self::Tcp(s) => s.peer_addr(),
            Self::Udp(s) => s.peer_addr(),
        }
        .map_err(RelayError::Setup)
    }

    /// This end's address.
    pub fn local(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(s) => s.local_addr().ok(),
            Self::Udp(s) => s.local_addr().ok(),
        }
    }
}

/// Connect over TCP to the first of `addrs` that answers, each attempt
/// bounded by `timeout`. Blocking.
pub fn connect_tcp(
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
) -> Result<Connected, RelayError> {
    Ok(Connected::Tcp(connect_blocking(addrs, timeout)?))
}

/// A UDP socket connected to the first of `addrs` that it can be connected
/// to (UDP connect sends nothing; it fixes the peer). `SO_BROADCAST` is on,
/// so the peer may be a broadcast address.
pub fn connect_udp(addrs: &[SocketAddr]) -> Result<Connected, RelayError> {
    let mut last = None;
    for &addr in addrs {
        let family = if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let sock = Bind::new(wildcard(0, family))
            .broadcast(true)
            .v4_fallback(false)
            .udp_std()?;
        match sock.connect(addr) {
            Ok(()) => return Ok(Connected::Udp(sock)),
            Err(source) => last = Some(ConnectError::Connect { addr, source }),
        }
    }
    let none = || {
        let host = "(no addresses)".to_owned();
        ConnectError::Addr(crate::net::AddrError::NoAddress {
            host,
            family: Family::Any,
        })
    };
    Err(last.unwrap_or_else(none).into())
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
    let (socket, datagram) = match sock {
        Connected::Tcp(s) => (OwnedFd::from(s), false),
        Connected::Udp(s) => (OwnedFd::from(s), true),
    };
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
    let (remote, proto) = match sock {
        Connected::Tcp(s) => {
            s.set_nonblocking(true).map_err(RelayError::Setup)?;
            let s = tokio::net::TcpStream::from_std(s).map_err(RelayError::Setup)?;
            let (r, w) = s.into_split();
            ((RemoteIn::Tcp(r), RemoteOut::Tcp(w)), "tcp")
        }
        Connected::Udp(s) => {
            s.set_nonblocking(true).map_err(RelayError::Setup)?;
            let s = Arc::new(tokio::net::UdpSocket::from_std(s).map_err(RelayError::Setup)?);
            ((RemoteIn::Udp(Arc::clone(&s)), RemoteOut::Udp(s)), "udp")
        }
    };
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
    let peer = stream.peer_addr().map_err(RelayError::Setup)?;
    let local_addr = stream.tcp().local_addr().ok();
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
            let ends = Ends {
                local_in: LocalIn::Chunks(stdin_chunks()),
                local_out: LocalOut::Writer(Box::new(tokio::io::stdout())),
                remote_in,
                remote_out,
                peer,
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
