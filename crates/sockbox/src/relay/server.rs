//! The listening side (`sockbox listen`): [`RelayServer::bind`] (or
//! [`RelayServer::from_listener`] / [`RelayServer::from_socket`]), then
//! [`RelayServer::run`].
//!
//! TCP runs on [`TcpServer`], keep-open UDP on [`UdpServer`] (see
//! [`ListenConfig`] for what each mode does). On shutdown the server stops
//! accepting and lets open connections finish for the grace period, then
//! stops them.
//!
//! With [`ListenConfig::unix`] the server listens on a UNIX-domain socket
//! file instead. A file already at that path is removed only when it is a
//! socket nobody serves (left by a server that died); a socket another
//! server uses is refused (in use), and any other file is never touched.
//! When the server ends it removes the file if it is still the one it
//! created. A stream server serves one client or, keeping open, several up
//! to the cap (allow/deny lists do not apply: the file's permissions decide
//! who may connect); a datagram server serves its first sender only.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::relay::RelayError> {
//! use sockbox::relay::{ExecSpec, ListenConfig, Local, RelayServer};
//! let mut cfg = ListenConfig::new("127.0.0.1:7000".parse().unwrap());
//! cfg.local = Local::Exec(ExecSpec::Argv(vec!["/bin/cat".into()]));
//! let server = RelayServer::bind(cfg)?;
//! let report = server.run(sockbox::Shutdown::new()).await?;
//! println!("{} clients served", report.served);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};

use super::conn::Shared;
use super::tcp::TcpRelay;
use super::udp::{UdpRelay, serve_one};
use super::unix::{self, SocketFile};
use super::{ListenConfig, Peer, Proto, RelayError, ServeReport};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::net::{Bind, Family, ServerOptions, TcpServer, UdpServer};

/// A bound relay server, not yet serving.
pub struct RelayServer {
    local: Peer,
    shared: Arc<Shared>,
    kind: Kind,
}

enum Kind {
    Tcp(TcpServer<TcpRelay>),
    /// UDP, one peer.
    OnePeer(UdpSocket, ServerOptions),
    /// UDP, peers told apart by source.
    Peers(UdpServer<UdpRelay>),
    /// A UNIX stream socket.
    UnixStream(UnixListener, SocketFile, ServerOptions),
    /// A UNIX datagram socket (one peer).
    UnixDatagram(UnixDatagram, SocketFile, ServerOptions),
}

impl std::fmt::Debug for RelayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl RelayServer {
    /// Bind `cfg.addr` (TCP or UDP), or the UNIX socket `cfg.unix`. Must
    /// run inside a tokio runtime.
    pub fn bind(cfg: ListenConfig) -> Result<Self, RelayError> {
        if let Some(path) = cfg.unix.clone() {
            return Self::bind_unix(&path, cfg);
        }
        let mut bind = Bind::new(cfg.addr);
        if cfg.family == Family::V6 {
            bind = bind.only_v6(true).v4_fallback(false);
        }
        match cfg.proto {
            Proto::Tcp => Self::from_listener(bind.tcp()?, cfg),
            Proto::Udp => Self::from_socket(bind.udp()?, cfg),
        }
    }

    /// A UNIX-domain server at `path` (see the module documentation for
    /// what happens to the file). A datagram server serves its first sender
    /// only, whatever [`ServerOptions::once`] says.
    fn bind_unix(path: &std::path::Path, cfg: ListenConfig) -> Result<Self, RelayError> {
        let local = Peer::Unix(Some(path.to_path_buf()));
        let kind = match cfg.proto {
            Proto::Tcp => {
                let (l, file) = unix::bind_stream(path)?;
                Kind::UnixStream(l, file, cfg.server.clone())
            }
            Proto::Udp => {
                let (s, file) = unix::bind_datagram(path)?;
                Kind::UnixDatagram(s, file, cfg.server.clone())
            }
        };
        let mut cfg = cfg;
        if cfg.proto == Proto::Udp {
            cfg.server.once = true;
        }
        Ok(Self {
            shared: Shared::new(&cfg, local.clone()),
            local,
            kind,
        })
    }

    /// Serve TCP on a listener bound elsewhere (tests bind `127.0.0.1:0`).
    pub fn from_listener(listener: TcpListener, cfg: ListenConfig) -> Result<Self, RelayError> {
        let local = listener.local_addr().map_err(RelayError::Setup)?;
        let shared = Shared::new(&cfg, Peer::Inet(local));
        let mut opts = cfg.server;
        if opts.once {
            // The one client is always admitted (the cap is for keeping open).
            opts.max_conns = opts.max_conns.max(1);
        }
        let handler = TcpRelay {
            shared: shared.clone(),
            tls: cfg.tls,
        };
        let server =
            TcpServer::from_listener(listener, handler, opts).map_err(RelayError::Setup)?;
        Ok(Self {
            local: Peer::Inet(local),
            shared,
            kind: Kind::Tcp(server),
        })
    }

    /// Serve UDP on a socket bound elsewhere.
    pub fn from_socket(socket: UdpSocket, cfg: ListenConfig) -> Result<Self, RelayError> {
        let local = socket.local_addr().map_err(RelayError::Setup)?;
        let shared = Shared::new(&cfg, Peer::Inet(local));
        let opts = cfg.server;
        if opts.once {
            return Ok(Self {
                local: Peer::Inet(local),
                shared,
                kind: Kind::OnePeer(socket, opts),
            });
        }
        // The receive loop counts datagrams; the server's statistics count
        // peers, which the handler does.
        let receive_opts = ServerOptions {
            stats: ServerStats::new(),
            ..opts.clone()
        };
        let handler = UdpRelay::new(shared.clone(), opts);
        let server =
            UdpServer::from_socket(socket, handler, receive_opts).map_err(RelayError::Setup)?;
        Ok(Self {
            local: Peer::Inet(local),
            shared,
            kind: Kind::Peers(server),
        })
    }

    /// The address actually bound (port 0 resolved), or the UNIX socket's
    /// path.
    pub fn local_addr(&self) -> Peer {
        self.local.clone()
    }

    /// Serve until the single client is done or until `shutdown` fires,
    /// then drain. A single client's error is returned.
    pub async fn run(self, shutdown: Shutdown) -> Result<ServeReport, RelayError> {
        let Self {
            local,
            shared,
            kind,
        } = self;
        let (refused, cut_at_grace) = match kind {
            Kind::Tcp(server) => {
                let r = server.run(shutdown).await;
                (r.refused, r.cut_at_grace)
            }
            Kind::OnePeer(socket, opts) => {
                serve_one(&shared, socket, &opts, &shutdown).await?;
                (shared.counts().1, 0)
            }
            Kind::Peers(server) => {
                let addr = local.inet().unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
                let r = server
                    .run(shutdown)
                    .await
                    .map_err(|source| RelayError::Listen { addr, source })?;
                (shared.counts().1, r.cut_at_grace)
            }
            Kind::UnixStream(listener, _file, opts) => {
                unix::serve_stream(&shared, listener, &opts, &shutdown).await
            }
            Kind::UnixDatagram(socket, _file, opts) => {
                unix::serve_datagram(&shared, socket, &opts, &shutdown).await?;
                (shared.counts().1, 0)
            }
        };
        let single = shared.take_single().transpose()?;
        Ok(ServeReport {
            served: shared.counts().0,
            refused,
            cut_at_grace,
            single,
        })
    }
}
