//! What a relay server is asked to do ([`ListenConfig`]) and what it did
//! ([`ServeReport`]).

use std::net::SocketAddr;

use super::dump::Dump;
use super::event::{RelayEvent, log_events};
use super::exec::ExecSpec;
use super::{RelayOptions, Report};
use crate::event::Events;
use crate::net::{Family, ServerOptions};

/// Transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// What each connection is relayed to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Local {
    /// This process's standard input and output (shared by all clients
    /// when the server keeps open).
    #[default]
    Stdio,
    /// A program per connection.
    Exec(ExecSpec),
}

/// Everything a relay server needs.
///
/// [`ServerOptions::once`] is netcat's default: one client (a TCP
/// connection, or the first UDP peer) is served, the listening socket is
/// closed as soon as it arrives, and the server ends with it. Without
/// `once` ("keep open") clients are served concurrently up to
/// [`ServerOptions::max_conns`] (0 refuses every client); beyond that, and
/// for addresses the allow/deny lists refuse, a TCP client is accepted and
/// closed at once and a UDP peer's datagrams are dropped.
///
/// [`RelayOptions::end_on_remote_eof`] is decided by the server: a program
/// per connection keeps the session until the program is done; a single
/// client on standard input ends the server when it closes its side (after
/// what it sent is written out), unless the relay only sends
/// ([`Flow::SendOnly`](super::Flow::SendOnly)); clients sharing standard
/// input end with their own EOF.
#[derive(Clone)]
pub struct ListenConfig {
    /// Address to bind (`[::]` also serves IPv4 unless `family` is V6).
    pub addr: SocketAddr,
    /// Listen on this UNIX-domain socket path instead of `addr` (a stream
    /// socket, or a datagram socket with [`Proto::Udp`]). See
    /// [`server`](super::server) for what happens to the file.
    pub unix: Option<std::path::PathBuf>,
    /// Address family restriction.
    pub family: Family,
    /// TCP or UDP.
    pub proto: Proto,
    /// Standard I/O or a program per connection.
    pub local: Local,
    /// Relay rules per connection.
    pub opts: RelayOptions,
    /// Traffic dump.
    pub dump: Option<Dump>,
    /// Serve TLS over TCP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Where connection events go (default: `tracing`).
    pub events: Events<RelayEvent>,
    /// Admission, drain and statistics (cap, allow/deny, grace, once…).
    pub server: ServerOptions,
}

impl ListenConfig {
    /// TCP on `addr`, standard I/O, keep open, default rules.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            unix: None,
            family: Family::Any,
            proto: Proto::Tcp,
            local: Local::Stdio,
            opts: RelayOptions::default(),
            dump: None,
            tls: None,
            events: log_events(),
            server: ServerOptions::default(),
        }
    }
}

impl std::fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConfig")
            .field("addr", &self.addr)
            .field("unix", &self.unix)
            .field("family", &self.family)
            .field("proto", &self.proto)
            .field("local", &self.local)
            .field("tls", &self.tls.is_some())
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// What a relay server did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections (or UDP peers) served.
    pub served: u64,
    /// Connections (or UDP datagrams) refused.
    pub refused: u64,
    /// Connections or peer sessions still open when the grace period ended.
    pub cut_at_grace: usize,
    /// The single client's report, for a [`ServerOptions::once`] server
    /// that served one.
    pub single: Option<Report>,
}
