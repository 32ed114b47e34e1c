//! The connecting side (`sockbox connect`): relay an already connected
//! socket to standard input/output (blocking fast path) or to a program.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::dump::Dump;
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::exec::{ExecSpec, reap};
use super::hub::stdin_chunks;
use super::pump::{PumpEnds, PumpExtras, Stopper, pump, stdio_fds};
use super::session::{self, Ends, Extras};
use super::{Outcome, RelayError, RelayOptions, Report};
use crate::Shutdown;

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
    pump(ends, opts, extras, stopper)
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
    let mut opts = opts.clone();
    let (remote_in, remote_out, proto) = match sock {
        Connected::Tcp(s) => {
            s.set_nonblocking(true).map_err(RelayError::Setup)?;
            let s = tokio::net::TcpStream::from_std(s).map_err(RelayError::Setup)?;
            let (r, w) = s.into_split();
            (RemoteIn::Tcp(r), RemoteOut::Tcp(w), "tcp")
        }
        Connected::Udp(s) => {
            s.set_nonblocking(true).map_err(RelayError::Setup)?;
            let s = Arc::new(tokio::net::UdpSocket::from_std(s).map_err(RelayError::Setup)?);
            if opts.quit_after_eof.is_none() {
                opts.quit_after_eof = Some(std::time::Duration::ZERO);
            }
            (RemoteIn::Udp(Arc::clone(&s)), RemoteOut::Udp(s), "udp")
        }
    };
    let mut child = spec.spawn(peer, local, proto)?;
    let (Some(cin), Some(cout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(RelayError::Exec {
            cmd: spec.display(),
            source: std::io::Error::other("the program's pipes are missing"),
        });
    };
    let ends = Ends {
        local_in: LocalIn::Reader(Box::new(cout)),
        local_out: LocalOut::Writer(Box::new(cin)),
        remote_in,
        remote_out,
        peer,
    };
    let extras = Extras { dump, stats: None };
    let result = session::run(ends, &opts, &extras, None, stop).await;
    let patience = match &result {
        Ok(r) if matches!(r.outcome, Outcome::Done | Outcome::OutputClosed) => None,
        _ => Some(std::time::Duration::ZERO),
    };
    reap(child, peer, &spec.display(), patience, stop).await;
    result
}

/// What a TLS client relays to.
#[derive(Clone, Debug)]
pub enum ClientLocal {
    /// Standard input/output.
    Stdio,
    /// A program.
    Exec(ExecSpec),
}

/// Run the TLS handshake over `tcp` (checking the certificate against
/// `host`) and relay it to stdin/stdout or a program. Must run inside a
/// tokio runtime.
pub async fn relay_tls(
    tcp: std::net::TcpStream,
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    local: &ClientLocal,
    opts: &RelayOptions,
    dump: Option<Dump>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let peer = tcp.peer_addr().map_err(RelayError::Setup)?;
    let local_addr = tcp.local_addr().ok();
    tcp.set_nonblocking(true).map_err(RelayError::Setup)?;
    let tcp = tokio::net::TcpStream::from_std(tcp).map_err(RelayError::Setup)?;
    let tls = tokio::select! {
        r = crate::tls::connect(connector, host, tcp) => r?,
        () = stop.wait() => return Ok(Report { outcome: Outcome::Stopped, sent: 0, received: 0 }),
    };
    let (r, w) = tokio::io::split(tls);
    let (remote_in, remote_out) = (
        RemoteIn::Stream(Box::new(r)),
        RemoteOut::Stream(Box::new(w)),
    );
    let extras = Extras { dump, stats: None };
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
            let mut child = spec.spawn(peer, local_addr, "tls")?;
            let (Some(cin), Some(cout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(RelayError::Exec {
                    cmd: spec.display(),
                    source: std::io::Error::other("the program's pipes are missing"),
                });
            };
            let ends = Ends {
                local_in: LocalIn::Reader(Box::new(cout)),
                local_out: LocalOut::Writer(Box::new(cin)),
                remote_in,
                remote_out,
                peer,
            };
            let result = session::run(ends, opts, &extras, None, stop).await;
            let patience = match &result {
                Ok(r) if matches!(r.outcome, Outcome::Done | Outcome::OutputClosed) => None,
                _ => Some(std::time::Duration::ZERO),
            };
            reap(child, peer, &spec.display(), patience, stop).await;
            result
        }
    }
}
