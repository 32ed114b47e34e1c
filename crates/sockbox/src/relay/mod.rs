//! The relay behind `sockbox connect` and `sockbox listen`: bytes between a
//! local side (standard input/output, or a program run per connection) and
//! a TCP, UDP or UNIX-domain (stream or datagram) peer ([`Peer`]).
//!
//! Two engines share one set of rules ([`RelayOptions`]):
//! - [`pump`]: one connection wired to file descriptors (stdin/stdout), on a
//!   blocking thread per direction. It moves data with `splice(2)` when an
//!   end is a pipe (through an internal pipe otherwise) and falls back to
//!   `read`/`write` for terminals, for datagrams and when dumping traffic.
//! - the async session engine: programs per connection, TLS, standard
//!   input shared by many clients, UDP peers told apart by source address.
//!
//! The server side, [`RelayServer`], is built on the socket framework
//! ([`crate::net`]): TCP on [`TcpServer`](crate::net::TcpServer), UDP peers
//! on [`UdpServer`](crate::net::UdpServer). The client side,
//! [`client`], connects with [`crate::net::client`].
//!
//! The rules: end of the local input shuts down the socket's write side
//! (unless `half_close` is off) and the relay keeps reading until the peer
//! closes; `quit_after_eof` ends it that long after local EOF; `idle_timeout`
//! ends it after that long without a byte either way; a reset by the peer
//! is [`RelayError::Reset`], never a panic. Every chunk can be recorded in a
//! [`dump::Dump`] tagged with direction, peer, byte offset and time;
//! [`RelayOptions::crlf`] sends bare LFs of the local input as CRLF.

pub mod client;
mod config;
mod conn;
pub mod dump;
mod ends;
mod event;
pub mod exec;
mod hub;
mod life;
mod method;
mod pace;
mod peer;
pub mod pump;
pub mod server;
mod session;
mod stdio;
mod tcp;
mod udp;
mod unix;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::net::AclError;

pub use config::{ListenConfig, Local, Proto, ServeReport};
pub use dump::{Dump, DumpFormat};
pub use event::{RelayEvent, log_events};
pub use exec::ExecSpec;
pub use peer::Peer;
pub use server::RelayServer;

/// Which directions carry data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    /// Local input to the peer and the peer to local output.
    #[default]
    Both,
    /// Only local input to the peer; what the peer sends is read and dropped.
    /// The relay ends at local EOF.
    SendOnly,
    /// Only the peer to local output; local input is never read.
    RecvOnly,
}

/// How a relay behaves; the same for every engine.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// Which directions carry data.
    pub flow: Flow,
    /// At local EOF, shut down the socket's write side (TCP FIN). Off keeps
    /// it open.
    pub half_close: bool,
    /// End this long after local EOF; `None` waits for the peer.
    pub quit_after_eof: Option<Duration>,
    /// End after this long with no data either way.
    pub idle_timeout: Option<Duration>,
    /// End as soon as the peer stops sending, even if local input is still
    /// open (used for terminals and for shared stdin with many clients).
    pub end_on_remote_eof: bool,
    /// Allow `splice(2)`; off forces `read`/`write`.
    pub zero_copy: bool,
    /// Size of the in-kernel pipe for splice, or of the buffer for read/write.
    pub buffer_size: usize,
    /// Send every LF of the local input not already preceded by CR as CRLF
    /// (text protocols; forces read/write for that direction).
    pub crlf: bool,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            flow: Flow::Both,
            half_close: true,
            quit_after_eof: None,
            idle_timeout: None,
            end_on_remote_eof: false,
            zero_copy: true,
            buffer_size: 1 << 20,
            crlf: false,
        }
    }
}

/// How a relay ended when nothing went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Both sides finished.
    Done,
    /// Local input ended and the `-q` delay passed.
    Quit,
    /// Nothing moved for the idle timeout.
    Idle(Duration),
    /// Stopped from outside (shutdown signal).
    Stopped,
    /// The local output went away (reader of stdout closed, program exited).
    OutputClosed,
}

/// The result of one relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes sent to the peer.
    pub sent: u64,
    /// Bytes received from the peer.
    pub received: u64,
}

/// Errors of the relay. Each names what failed and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The peer reset the connection (or vanished) in the middle of the stream.
    #[error(
        "connection with {peer} was reset by the peer after {sent} bytes sent and {received} received"
    )]
    Reset {
        /// The peer.
        peer: Peer,
        /// Bytes sent before the reset.
        sent: u64,
        /// Bytes received before the reset.
        received: u64,
    },
    /// The peer reset the connection between the handshake and the start
    /// of the relay (its address is no longer known).
    #[error("the connection was reset by the peer at once, before any data moved")]
    ResetAtOnce,
    /// A UDP peer answered with ICMP port unreachable.
    #[error("{0} refused the datagrams (ICMP port unreachable): is anything listening there?")]
    Unreachable(Peer),
    /// Reading the local side (standard input or the program's output) failed.
    #[error("reading the local input: {0}")]
    LocalRead(#[source] io::Error),
    /// Writing the local side (standard output or the program's input) failed.
    #[error("writing the local output: {0}")]
    LocalWrite(#[source] io::Error),
    /// Receiving from the peer failed.
    #[error("receiving from {peer}: {source}")]
    Recv {
        /// The peer.
        peer: Peer,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Sending to the peer failed.
    #[error("sending to {peer}: {source}")]
    Send {
        /// The peer.
        peer: Peer,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The host was not a usable name or address.
    #[error(transparent)]
    Addr(#[from] crate::net::AddrError),
    /// Connecting (or the client's TLS handshake) failed.
    #[error(transparent)]
    Connect(#[from] crate::net::ConnectError),
    /// Binding the listening socket failed.
    #[error(transparent)]
    Bind(#[from] crate::net::BindError),
    /// Connecting to a UNIX-domain socket failed.
    #[error("cannot connect to the UNIX socket {}: {source}{}", path.display(), unix_hint(source))]
    UnixConnect {
        /// The socket's path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Binding a UNIX-domain socket failed.
    #[error("cannot listen on the UNIX socket {}: {why}", path.display())]
    UnixBind {
        /// The socket's path.
        path: PathBuf,
        /// What went wrong, with the fix.
        why: String,
        /// True when another server holds the path (not the path's fault).
        in_use: bool,
    },
    /// Receiving on the listening socket failed for good.
    #[error("receiving on {addr}: {source}")]
    Listen {
        /// The bound address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Starting the per-connection program failed.
    #[error("cannot run {cmd}: {source}")]
    Exec {
        /// The program.
        cmd: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// TLS setup or handshake failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The TLS handshake took too long.
    #[error("TLS handshake with {0} timed out")]
    TlsTimeout(SocketAddr),
    /// An allow/deny list was wrong.
    #[error(transparent)]
    Acl(#[from] AclError),
    /// The dump file could not be written.
    #[error("cannot write the dump file {path}: {source}")]
    Dump {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A system call needed to set up the relay failed.
    #[error("setting up the relay: {0}")]
    Setup(#[source] io::Error),
}

fn unix_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => " (no such socket: is the server running?)",
        io::ErrorKind::ConnectionRefused => " (nobody listens on it: a server left it behind?)",
        io::ErrorKind::PermissionDenied => " (its file or directory is not writable by this user)",
        _ if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            " (the socket is of the other type: stream against datagram)"
        }
        _ => "",
    }
}

/// True for the errors that mean "the peer went away abruptly".
pub(crate) fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// A socket error as the relay reports it: ICMP unreachable on UDP, a
/// reset, or a failure to send or receive.
pub(crate) fn peer_error(
    peer: &Peer,
    e: io::Error,
    datagram: bool,
    sending: bool,
    (sent, received): (u64, u64),
) -> RelayError {
    if datagram && e.raw_os_error() == Some(libc::ECONNREFUSED) {
        RelayError::Unreachable(peer.clone())
    } else if is_reset(&e) {
        RelayError::Reset {
            peer: peer.clone(),
            sent,
            received,
        }
    } else if sending {
        RelayError::Send {
            peer: peer.clone(),
            source: e,
        }
    } else {
        RelayError::Recv {
            peer: peer.clone(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests;
