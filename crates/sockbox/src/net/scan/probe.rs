//! One port's check. TCP: a non-blocking `connect(2)` that the kernel
//! often answers at once — on loopback a refusal or an accept is known
//! before the call returns — so [`quick`] settles it without a task or a
//! wait; only a connect still in progress goes to [`finish`], which waits
//! for it (bounded by the timeout) and tries the host's other addresses.
//! UDP always goes to [`finish`].

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

use super::{PortState, ScanProto, Scanner};
use crate::net::{Family, wildcard};

/// What [`quick`] found.
pub(super) enum Quick {
    /// Settled.
    Done(PortState),
    /// Needs waiting: a TCP connect in progress, or UDP (`None`).
    Wait(Option<Pending>),
}

/// A TCP connect in progress to the `index`th address.
pub(super) struct Pending {
    index: usize,
    addr: SocketAddr,
    sock: Socket,
}

/// How a non-blocking connect started.
enum Started {
    Open,
    InProgress(Socket),
}

/// Try `port` on each of `ips` in turn with non-blocking connects, as far
/// as the kernel answers at once.
pub(super) fn quick(scanner: &Scanner, ips: &[IpAddr], port: u16) -> Quick {
    if scanner.proto == ScanProto::Udp {
        return Quick::Wait(None);
    }
    let mut last = PortState::Closed;
    for (index, &ip) in ips.iter().enumerate() {
        let addr = SocketAddr::new(ip, port);
        match start(addr, source_for(scanner, addr)) {
            Ok(Started::Open) => return Quick::Done(PortState::Open(addr)),
            Ok(Started::InProgress(sock)) => {
                return Quick::Wait(Some(Pending { index, addr, sock }));
            }
            Err(e) => last = refused_or(e),
        }
    }
    Quick::Done(last)
}

/// Settle what [`quick`] could not: wait for the connect in progress, then
/// the remaining addresses (TCP), or every address (UDP).
pub(super) async fn finish(
    scanner: &Scanner,
    ips: &[IpAddr],
    port: u16,
    first: Option<Pending>,
) -> PortState {
    if scanner.proto == ScanProto::Udp {
        let mut state = PortState::Closed;
        for &ip in ips {
            state = udp(scanner, SocketAddr::new(ip, port)).await;
            if state.is_open() {
                break;
            }
        }
        return state;
    }
    let Some(first) = first else {
        return PortState::Closed;
    };
    let mut state = wait(first.sock, first.addr, scanner).await;
    for &ip in &ips[first.index + 1..] {
        if state.is_open() {
            break;
        }
        let addr = SocketAddr::new(ip, port);
        state = match start(addr, source_for(scanner, addr)) {
            Ok(Started::Open) => PortState::Open(addr),
            Ok(Started::InProgress(sock)) => wait(sock, addr, scanner).await,
            Err(e) => refused_or(e),
        };
    }
    state
}

/// A non-blocking TCP socket (bound to `from`), connecting to `addr`.
fn start(addr: SocketAddr, from: Option<SocketAddr>) -> io::Result<Started> {
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if let Some(from) = from {
        sock.bind(&SockAddr::from(from))?;
    }
    match sock.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok(Started::Open),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => settled_now(sock),
        Err(e) => Err(e),
    }
}

/// A connect in progress that may already be settled (on loopback the
/// answer is usually there when `connect` returns): one `poll` without
/// waiting tells, and spares the event loop.
fn settled_now(sock: Socket) -> io::Result<Started> {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        sock.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0);
    if ready == 0 {
        return Ok(Started::InProgress(sock));
    }
    match sock.take_error()? {
        Some(e) => Err(e),
        None => Ok(Started::Open),
    }
}

/// Wait for a connect in progress, up to the scanner's timeout.
async fn wait(sock: Socket, addr: SocketAddr, scanner: &Scanner) -> PortState {
    let stream = match tokio::net::TcpStream::from_std(sock.into()) {
        Ok(s) => s,
        Err(e) => return PortState::Failed(e),
    };
    match tokio::time::timeout(scanner.timeout, stream.writable()).await {
        Err(_) => PortState::TimedOut,
        Ok(Err(e)) => refused_or(e),
        Ok(Ok(())) => match stream.take_error() {
            Ok(Some(e)) | Err(e) => refused_or(e),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => PortState::Open(addr),
                Err(e) => refused_or(e),
            },
        },
    }
}

/// An empty datagram, then up to the timeout for ICMP port unreachable.
async fn udp(scanner: &Scanner, addr: SocketAddr) -> PortState {
    let family = if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let local = source_for(scanner, addr).unwrap_or_else(|| wildcard(0, family));
    let attempt = async {
        let sock = UdpSocket::bind(local).await?;
        sock.connect(addr).await?;
        sock.send(&[]).await?;
        let mut buf = [0u8; 1];
        sock.recv(&mut buf).await.map(|_| ())
    };
    match tokio::time::timeout(scanner.timeout, attempt).await {
        // An answer, or silence: nothing refused it.
        Ok(Ok(())) | Err(_) => PortState::Open(addr),
        Ok(Err(e)) => refused_or(e),
    }
}

/// The source address to bind for `addr`: the scanner's, if it is of the
/// same family.
fn source_for(scanner: &Scanner, addr: SocketAddr) -> Option<SocketAddr> {
    scanner
        .source
        .filter(|s| s.is_ipv4() == addr.is_ipv4())
        .map(|ip| SocketAddr::new(ip, 0))
}

fn refused_or(e: io::Error) -> PortState {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        PortState::Closed
    } else {
        PortState::Failed(e)
    }
}
