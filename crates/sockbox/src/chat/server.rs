//! [`ChatServer`]: the chat handler on the TCP server skeleton, plus the
//! operator's own participants, which are not network clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::cluster::{ClusterConfig, ClusterError, Link};
use super::handler::{ChatHandler, refused_event};
use super::room::Room;
use super::session::{self, AnyRead, Peer};
use super::{BindAt, ChatConfig, ChatError, ChatEvent, ChatReport};
use crate::Shutdown;
use crate::event::Events;
use crate::net::{BindError, ServerEvent, TcpServer};

/// After the grace period, how long participants still get.
const HARD_WAIT: Duration = Duration::from_secs(2);

/// A bound chat or broker server. Create with [`ChatServer::bind`] or
/// [`ChatServer::from_listener`], then [`ChatServer::run`].
pub struct ChatServer {
    server: TcpServer<ChatHandler>,
    room: Arc<Room>,
    cluster: Option<Link>,
}

impl std::fmt::Debug for ChatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServer")
            .field("local", &self.server.local_addr())
            .field("config", &self.room.config)
            .finish_non_exhaustive()
    }
}

impl ChatServer {
    /// Listen on `at`: a socket address (the IPv6 wildcard `[::]` also
    /// accepts IPv4 clients) or a [`Bind`](crate::net::Bind) for more
    /// control. Must be called inside a tokio runtime.
    pub fn bind(at: impl BindAt, config: ChatConfig) -> Result<Self, ChatError> {
        let bind = at.into_bind();
        let listener = bind.tcp()?;
        Self::from_listener(listener, config).map_err(|source| {
            ChatError::Bind(BindError {
                addr: bind.addr(),
                step: "read the address of".into(),
                source,
            })
        })
    }

    /// Serve on an already bound listener (tests use `127.0.0.1:0`).
    pub fn from_listener(listener: TcpListener, mut config: ChatConfig) -> std::io::Result<Self> {
        config.server.events = bridge(config.server.events.clone(), config.events.clone());
        let opts = config.server.clone();
        let room = Arc::new(Room::new(config));
        let handler = ChatHandler { room: room.clone() };
        let server = TcpServer::from_listener(listener, handler, opts)?;
        Ok(Self {
            server,
            room,
            cluster: None,
        })
    }

    /// Make this server a node of a room spread over several servers,
    /// joined through NATS ([`cluster`](super::cluster)): connect, subscribe,
    /// open the nickname store. Call before [`ChatServer::run`] (and before
    /// dropping privileges: credential and TLS files are read now).
    pub async fn join_cluster(&mut self, config: ClusterConfig) -> Result<(), ClusterError> {
        if self.cluster.is_some() || self.room.hub.remote().is_some() {
            return Err(ClusterError::Already);
        }
        let events = self.room.config.events.clone();
        let link = Link::connect(config, self.room.config.mode, events).await?;
        if !link.attach(&self.room) {
            return Err(ClusterError::Already);
        }
        self.cluster = Some(link);
        Ok(())
    }

    /// True when this server is in a room whose other nodes are out of
    /// reach now (it started split: no NATS server answered yet).
    pub fn is_split(&self) -> bool {
        self.room.hub.remote().is_some_and(|r| r.is_split())
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Clients connected now (participants included).
    pub fn online(&self) -> usize {
        self.room.hub.len()
    }

    /// Make `reader`/`writer` (the operator's terminal) a participant named
    /// `nick` (or `userN` when taken). It does not count against
    /// [`ServerOptions::max_conns`](crate::net::ServerOptions::max_conns);
    /// it leaves at end of input and the server goes on. Must be called
    /// inside a tokio runtime.
    pub fn add_participant<R, W>(&self, reader: R, writer: W, nick: Option<String>)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let room = self.room.clone();
        self.room.participants.spawn(async move {
            let _active = room.config.server.stats.connection();
            let peer = Peer::participant(room.participant_drain.clone());
            let reader = AnyRead {
                inner: reader,
                tcp_fd: None,
            };
            session::serve(&room, reader, writer, peer, nick).await;
        });
    }

    /// Accept and serve clients until `shutdown` fires; then stop reading,
    /// tell everyone the server is closing after what is queued for them,
    /// give their queues up to the grace period to drain, and close each
    /// connection with a FIN.
    pub async fn run(self, shutdown: Shutdown) -> Result<ChatReport, ChatError> {
        let Self {
            server,
            room,
            cluster,
        } = self;
        let cluster = cluster.map(Link::start);
        // Stopped if this future is dropped before the end, as the cluster's
        // tasks are.
        let ticker = {
            let room = room.clone();
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move { room.tick().await }))
        };
        let grace = room.config.server.grace;
        let report = server.run(shutdown).await;
        let _ = ticker.await;
        if let Some(c) = cluster {
            c.finish().await;
        }
        // Participants were told to stop with everyone else: the rest of
        // the grace period, then stop writing.
        room.participants.close();
        let left = grace.saturating_sub(room.closing_for());
        if tokio::time::timeout(left, room.participants.wait())
            .await
            .is_err()
        {
            room.participant_drain.end();
            let _ = tokio::time::timeout(HARD_WAIT, room.participants.wait()).await;
        }
        Ok(ChatReport {
            accepted: report.accepted,
            refused: report.refused,
            cut_at_grace: report.cut_at_grace,
        })
    }
}

/// The skeleton's observer, which also turns refusals and accept errors
/// into [`ChatEvent`]s.
fn bridge(server: Events<ServerEvent>, chat: Events<ChatEvent>) -> Events<ServerEvent> {
    Arc::new(move |e: &ServerEvent| {
        server.on_event(e);
        match e {
            ServerEvent::Refused { peer, reason } => {
                chat.on_event(&refused_event(*peer, *reason));
            }
            ServerEvent::AcceptFailed { error, retry_in } => {
                chat.on_event(&ChatEvent::AcceptError {
                    error: error.to_string(),
                    backoff_ms: u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                });
            }
            _ => {}
        }
    })
}
