//! The listening side: bind, accept (with back-off on `EMFILE`), admit or
//! refuse, and the shutdown sequence.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn;
use super::hub::{ANNOUNCE_EVERY, Hub};
use super::{ChatConfig, ChatError, ChatEvent, Mode, SHUTDOWN_NOTICE};
use crate::Shutdown;

/// Listen backlog: room for bursts of thousands of connects.
const BACKLOG: i32 = 4096;

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    pub config: ChatConfig,
    pub hub: Hub,
    pub tracker: TaskTracker,
    /// Fires on shutdown: readers stop.
    pub soft: CancellationToken,
    /// Fires when the grace period is over: writes are abandoned.
    pub hard: CancellationToken,
    next_id: AtomicU64,
}

impl Shared {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn event(&self, e: &ChatEvent) {
        if let Some(sink) = &self.config.events {
            sink(e);
        }
    }
}

/// A bound chat or broker server. Create with [`ChatServer::bind`] or
/// [`ChatServer::from_listener`], then [`ChatServer::run`].
pub struct ChatServer {
    listener: TcpListener,
    local: SocketAddr,
    shared: Arc<Shared>,
}

impl ChatServer {
    /// Listen on `addr`. An unspecified IPv6 address (`[::]`) also accepts
    /// IPv4 clients.
    pub fn bind(addr: SocketAddr, config: ChatConfig) -> Result<Self, ChatError> {
        let listener = listen(addr).map_err(|e| ChatError::Bind(e, addr))?;
        Self::from_listener(listener, config)
    }

    /// Serve on an already bound listener (tests use `127.0.0.1:0`).
    pub fn from_listener(listener: TcpListener, config: ChatConfig) -> Result<Self, ChatError> {
        let local = listener.local_addr().map_err(ChatError::LocalAddr)?;
        let hub = Hub::new(config.max_clients);
        Ok(Self {
            listener,
            local,
            shared: Arc::new(Shared {
                config,
                hub,
                tracker: TaskTracker::new(),
                soft: CancellationToken::new(),
                hard: CancellationToken::new(),
                next_id: AtomicU64::new(0),
            }),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Clients connected now.
    pub fn online(&self) -> usize {
        self.shared.hub.len()
    }

    /// Make `reader`/`writer` (the operator's terminal) a participant named
    /// `nick` (or `userN` when taken). It leaves at end of input; the server
    /// goes on. Must be called inside a tokio runtime.
    pub fn add_participant<R, W>(&self, reader: R, writer: W, nick: Option<String>)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared.clone();
        self.shared.tracker.spawn(async move {
            conn::serve(
                shared,
                conn::AnyRead(reader),
                writer,
                "stdin".to_owned(),
                nick,
            )
            .await;
        });
    }

    /// Accept and serve clients until `shutdown` fires; then tell everyone
    /// the server is closing, give their queues up to the grace period to
    /// drain, and return.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), ChatError> {
        let Self {
            listener, shared, ..
        } = self;
        let ticker = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = shared.soft.cancelled() => break,
                        () = tokio::time::sleep(ANNOUNCE_EVERY) => shared.hub.flush_announcements(),
                    }
                }
            })
        };
        let mut backoff = Duration::ZERO;
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                r = listener.accept() => match r {
                    Ok((stream, peer)) => {
                        backoff = Duration::ZERO;
                        admit(&shared, stream, peer);
                    }
                    Err(e) if is_resource_error(&e) => {
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        shared.event(&ChatEvent::AcceptError {
                            error: e.to_string(),
                            backoff_ms: backoff.as_millis() as u64,
                        });
                        tokio::select! {
                            () = shutdown.wait() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                    }
                    // ECONNABORTED and friends: that one client is gone.
                    Err(_) => {}
                },
            }
        }
        drop(listener);
        shared.hub.flush_announcements();
        // The broker adds nothing to the byte stream: closing says it.
        let notice = (shared.config.mode == Mode::Chat).then_some(SHUTDOWN_NOTICE);
        shared.hub.close_all(notice);
        shared.soft.cancel();
        let _ = ticker.await;
        shared.tracker.close();
        if tokio::time::timeout(shared.config.grace, shared.tracker.wait())
            .await
            .is_err()
        {
            shared.hard.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), shared.tracker.wait()).await;
        }
        Ok(())
    }
}

/// Errors after which accepting again at once would spin.
fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn admit(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let cfg = &shared.config;
    if !cfg.access.permits(peer.ip()) {
        cfg.stats.refused();
        shared.event(&ChatEvent::Refused {
            peer: peer.to_string(),
            reason: "denied".into(),
        });
        return;
    }
    if shared.hub.len() >= cfg.max_clients {
        let shared = shared.clone();
        shared.tracker.clone().spawn(async move {
            refuse_full(&shared, peer.to_string(), stream).await;
        });
        return;
    }
    let _ = stream.set_nodelay(true);
    let shared2 = shared.clone();
    shared.tracker.spawn(async move {
        let shared = shared2;
        // IPv4 clients of a dual-stack listener show as IPv4.
        let label = SocketAddr::new(peer.ip().to_canonical(), peer.port()).to_string();
        match shared.config.tls.clone() {
            None => {
                let (r, w) = stream.into_split();
                conn::serve(shared, r, w, label, None).await;
            }
            Some(acceptor) => {
                let hs =
                    tokio::time::timeout(shared.config.handshake_timeout, acceptor.accept(stream));
                let tls = tokio::select! {
                    r = hs => r,
                    () = shared.soft.cancelled() => return,
                };
                match tls {
                    Ok(Ok(tls)) => {
                        let (r, w) = tokio::io::split(tls);
                        conn::serve(shared, conn::AnyRead(r), w, label, None).await;
                    }
                    Ok(Err(e)) => refuse_tls(&shared, &label, &e.to_string()),
                    Err(_) => refuse_tls(&shared, &label, "handshake timed out"),
                }
            }
        }
    });
}

/// Refuse a client because the room is full: count and log it, and tell a
/// chat client (the broker adds nothing to the byte stream: closing says it).
pub(crate) async fn refuse_full<W: AsyncWrite + Unpin>(shared: &Shared, peer: String, mut w: W) {
    let cfg = &shared.config;
    cfg.stats.refused();
    shared.event(&ChatEvent::Refused {
        peer,
        reason: "full".into(),
    });
    if cfg.mode == Mode::Chat {
        let max = cfg.max_clients;
        let s = if max == 1 { "" } else { "s" };
        let msg = format!("*** server full ({max} client{s}), try again later\n");
        let _ = tokio::time::timeout(Duration::from_secs(1), w.write_all(msg.as_bytes())).await;
    }
}

fn refuse_tls(shared: &Shared, peer: &str, why: &str) {
    shared.config.stats.refused();
    shared.event(&ChatEvent::Refused {
        peer: peer.to_owned(),
        reason: format!("tls: {why}"),
    });
}
