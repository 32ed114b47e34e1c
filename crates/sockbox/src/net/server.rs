//! The TCP server skeleton: one accept loop for every server.
//!
//! [`TcpServer`] accepts, shows each peer in canonical form, refuses what
//! the allow/deny lists, the connection cap or the per-address cap refuse
//! (the [`Handler`] may say goodbye), backs off when `accept` fails for
//! lack of resources (`EMFILE`…) instead of spinning, counts everything in
//! [`ServerStats`], and hands each admitted connection to the handler on
//! its own task. On shutdown it stops accepting, fires [`Drain::soft`],
//! waits up to the grace period for the connections, then fires
//! [`Drain::hard`] and waits a little more.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::addr::canonical;
use super::backoff::Backoff;
use super::bind::{Bind, BindError};
use super::drain::Drain;
use super::limits::{AddrSlot, PerAddress};
use super::{ServerEvent, ServerOptions, ServerReport};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::event::Events;

/// Refusals in progress at once (each may write a goodbye); beyond this a
/// refused client is closed without one, so a flood cannot pile up tasks.
const REFUSING_AT_ONCE: usize = 64;

/// Why a client was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The allow/deny lists refuse its address.
    Denied,
    /// `max` connections are open already.
    Full {
        /// The cap.
        max: usize,
    },
    /// Its address has `max` connections open already.
    PerAddress {
        /// The cap.
        max: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied => f.write_str("not permitted by the allow/deny lists"),
            Self::Full { max } => write!(f, "{max} connections already open"),
            Self::PerAddress { max } => {
                write!(f, "{max} connections from this address already open")
            }
        }
    }
}

/// An admitted connection, handed to [`Handler::serve`].
#[derive(Debug)]
pub struct Connection {
    /// The stream.
    pub stream: TcpStream,
    /// The peer, canonical (an IPv4 client of a dual-stack socket shows as IPv4).
    pub peer: SocketAddr,
    /// The server's address.
    pub local: SocketAddr,
    /// A number unique within this server, from 1.
    pub id: u64,
    /// Shutdown stages.
    pub drain: Drain,
    /// The server's counters (add bytes in and out here).
    pub stats: ServerStats,
}

/// A refused client, handed to [`Handler::refuse`].
#[derive(Debug)]
pub struct Refused {
    /// The stream; dropping it closes the connection.
    pub stream: TcpStream,
    /// The peer, canonical.
    pub peer: SocketAddr,
    /// Why.
    pub reason: Refusal,
}

/// What a TCP server does with its connections.
///
/// `serve` runs on its own task per connection; the connection counts as
/// open (for the cap and the statistics) until it returns.
pub trait Handler: Send + Sync + 'static {
    /// Serve one admitted connection.
    fn serve(&self, conn: Connection) -> impl Future<Output = ()> + Send;

    /// A refused client: say why if the protocol allows, then drop it.
    /// The default closes it at once. Bounded in time by the caller's
    /// own code: keep it short.
    fn refuse(&self, refused: Refused) -> impl Future<Output = ()> + Send {
        async move { drop(refused) }
    }

    /// Called once when the server stops accepting, before
    /// [`Drain::soft`] fires (say goodbye to everyone, flush batches).
    fn draining(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A bound TCP server, not yet serving: [`TcpServer::bind`] or
/// [`TcpServer::from_listener`], then [`TcpServer::run`].
pub struct TcpServer<H> {
    listener: TcpListener,
    local: SocketAddr,
    handler: Arc<H>,
    opts: ServerOptions,
}

impl<H> std::fmt::Debug for TcpServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServer")
            .field("local", &self.local)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> TcpServer<H> {
    /// Bind as `bind` says. Must run inside a tokio runtime.
    pub fn bind(bind: &Bind, handler: H, opts: ServerOptions) -> Result<Self, BindError> {
        let listener = bind.tcp()?;
        Self::from_listener(listener, handler, opts).map_err(|source| BindError {
            addr: bind.addr(),
            step: "read the address of".into(),
            source,
        })
    }

    /// Serve on a listener bound elsewhere (tests bind `127.0.0.1:0`).
    pub fn from_listener(
        listener: TcpListener,
        handler: H,
        opts: ServerOptions,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(Self {
            listener,
            local,
            handler: Arc::new(handler),
            opts,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The handler (to reach its state while the server runs, clone the
    /// `Arc` before [`TcpServer::run`]).
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Serve until `shutdown` fires (or, with [`ServerOptions::once`],
    /// until the first admitted connection ends), then drain.
    pub async fn run(self, shutdown: Shutdown) -> ServerReport {
        let Self {
            listener,
            local,
            handler,
            opts,
        } = self;
        let mut run = Run {
            local,
            cap: Arc::new(Semaphore::new(opts.max_conns.min(Semaphore::MAX_PERMITS))),
            refusing: Arc::new(Semaphore::new(REFUSING_AT_ONCE)),
            per_addr: PerAddress::new(opts.max_per_addr),
            tracker: TaskTracker::new(),
            drain: Drain::new(),
            next_id: AtomicU64::new(0),
            report: ServerReport::default(),
            handler,
            opts,
        };
        let once_done = run.accept_loop(&listener, &shutdown).await;
        drop(listener);
        if once_done && !shutdown.is_triggered() {
            run.tracker.close();
            tokio::select! {
                () = run.tracker.wait() => {}
                () = shutdown.wait() => {}
            }
        }
        run.finish().await
    }
}

/// The state of one [`TcpServer::run`].
struct Run<H> {
    local: SocketAddr,
    cap: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    per_addr: PerAddress,
    tracker: TaskTracker,
    drain: Drain,
    next_id: AtomicU64,
    report: ServerReport,
    handler: Arc<H>,
    opts: ServerOptions,
}

impl<H: Handler> Run<H> {
    /// Accept until shutdown; true when it stopped because the single
    /// connection of a `once` server was admitted.
    async fn accept_loop(&mut self, listener: &TcpListener, shutdown: &Shutdown) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            let accepted = tokio::select! {
                () = shutdown.wait() => return false,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    if self.admit(stream, canonical(peer)) && self.opts.once {
                        return true;
                    }
                }
                Err(e) if is_per_connection(&e) => {}
                Err(error) => {
                    let retry_in = backoff.next_delay();
                    self.event(&ServerEvent::AcceptFailed { error, retry_in });
                    tokio::select! {
                        () = shutdown.wait() => return false,
                        () = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
    }

    /// Admit or refuse one client; true when admitted.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> bool {
        let refusal = if self.opts.acl.permits(peer.ip()) {
            None
        } else {
            Some(Refusal::Denied)
        };
        let slot = match refusal {
            Some(r) => Err(r),
            None => self.take_slot(peer),
        };
        let (permit, addr_slot) = match slot {
            Ok(s) => s,
            Err(reason) => {
                self.refuse(stream, peer, reason);
                return false;
            }
        };
        if self.opts.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.report.accepted += 1;
        self.event(&ServerEvent::Accepted { peer, id });
        let conn = Connection {
            stream,
            peer,
            local: self.local,
            id,
            drain: self.drain.clone(),
            stats: self.opts.stats.clone(),
        };
        let guard = self.opts.stats.connection();
        let (handler, events) = (self.handler.clone(), self.opts.events.clone());
        self.tracker.spawn(async move {
            let _slots = (permit, addr_slot, guard);
            handler.serve(conn).await;
            events.on_event(&ServerEvent::Closed { peer, id });
        });
        true
    }

    fn take_slot(
        &self,
        peer: SocketAddr,
    ) -> Result<(OwnedSemaphorePermit, Option<AddrSlot>), Refusal> {
        let max = self.opts.max_conns;
        let permit = self
            .cap
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full { max })?;
        let addr_slot = self.per_addr.take(peer.ip())?;
        Ok((permit, addr_slot))
    }

    fn refuse(&mut self, stream: TcpStream, peer: SocketAddr, reason: Refusal) {
        self.report.refused += 1;
        self.opts.stats.refused();
        self.event(&ServerEvent::Refused { peer, reason });
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return; // too many goodbyes in flight: just close
        };
        let handler = self.handler.clone();
        let hard = self.drain.hard().clone();
        self.tracker.spawn(async move {
            let _permit = permit;
            let refused = Refused {
                stream,
                peer,
                reason,
            };
            tokio::select! {
                () = handler.refuse(refused) => {}
                () = hard.wait() => {}
            }
        });
    }

    fn event(&self, e: &ServerEvent) {
        self.opts.events.on_event(e);
    }

    /// Stop: goodbye hook, soft drain, grace, hard drain.
    async fn finish(self) -> ServerReport {
        let mut report = self.report;
        self.handler.draining().await;
        let open = self.tracker.len();
        if open > 0 {
            self.opts.events.on_event(&ServerEvent::Draining { open });
        }
        report.cut_at_grace = self
            .drain
            .wait_out(&self.tracker, self.opts.grace, &self.opts.events)
            .await;
        report
    }
}

/// `accept` errors that concern one client only (it left before we took
/// it): accept again at once. Anything else (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, `ENOMEM`…) backs off.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::EPERM
                | libc::EINTR
                | libc::EAGAIN
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

/// An observer for [`ServerEvent`]s that writes them to `tracing`.
pub fn log_events() -> Events<ServerEvent> {
    Arc::new(|e: &ServerEvent| match e {
        ServerEvent::Accepted { peer, id } => tracing::info!(%peer, id, "connected"),
        ServerEvent::Closed { peer, id } => tracing::debug!(%peer, id, "closed"),
        ServerEvent::Refused { peer, reason } => tracing::info!(%peer, "refused: {reason}"),
        ServerEvent::AcceptFailed { error, retry_in } => {
            tracing::warn!("accept: {error}; backing off {retry_in:?}");
        }
        ServerEvent::Draining { open } => tracing::info!(open, "draining"),
        ServerEvent::GraceExpired { open } => {
            tracing::warn!(
                open,
                "grace period over: closing the connections still open"
            );
        }
    })
}
