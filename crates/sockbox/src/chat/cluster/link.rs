//! The connection to NATS and the tasks that run this node: receive, publish,
//! heartbeat, and follow the connection's state (split / whole).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerAddr};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::nicks::Nicks;
use super::node::{Node, NodeParts};
use super::proto;
use super::{ClusterConfig, ClusterError, INCOMING_CAPACITY, NatsAuth};
use crate::chat::room::Room;
use crate::chat::{ChatEvent, Mode};
use crate::event::Events;

/// Messages published per turn of the publishing task.
const PUBLISH_BATCH: usize = 256;
/// Messages the NATS client itself may hold on their way out (past it, the
/// node's own bounded queue fills and drops).
const OUTGOING_CAPACITY: usize = 256;
/// How often a node whose nickname store is not open tries again.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// How long a node that shuts down waits for its goodbye to go out.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// The wait before a further connection attempt once the node is gone: the
/// client's retry loop cannot be stopped from outside, so it is parked.
const PARKED: Duration = Duration::from_secs(365 * 24 * 3600);

/// Set when the node is gone (its [`Link`] or [`Running`] dropped): the
/// NATS client then stops trying to (re)connect. The client keeps trying in
/// a task of its own whatever happens to its handles, so without this a
/// dropped server would go on dialling NATS for ever.
#[derive(Debug, Default)]
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// A node connected to its room, not yet serving (see
/// [`ChatServer::join_cluster`](crate::chat::ChatServer::join_cluster)).
pub struct Link {
    client: async_nats::Client,
    node: Arc<Node>,
    sub: async_nats::Subscriber,
    conn_events: mpsc::Receiver<Event>,
    heartbeat: Duration,
    gone: Gone,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("node", &self.node.name)
            .field("subjects", &self.node.base)
            .finish_non_exhaustive()
    }
}

fn servers(config: &ClusterConfig) -> Result<Vec<ServerAddr>, ClusterError> {
    if config.servers.is_empty() {
        return Err(ClusterError::NoServers);
    }
    config
        .servers
        .iter()
        .map(|u| {
            u.parse::<ServerAddr>().map_err(|e| ClusterError::Url {
                url: u.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

async fn options(
    config: &ClusterConfig,
    tx: mpsc::Sender<Event>,
    gone: Arc<AtomicBool>,
) -> Result<ConnectOptions, ClusterError> {
    let mut o =
        match &config.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::Token(t) => ConnectOptions::with_token(t.clone()),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::CredsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| ClusterError::Creds {
                    path: path.clone(),
                    source,
                })?,
        };
    if let Some(tls) = &config.tls {
        o = o.tls_client_config(tls.client_config()?).require_tls(true);
    }
    let ping = (config.heartbeat * 2).max(Duration::from_secs(1));
    Ok(o.name(format!("sockbox {}", config.node_name))
        .no_echo()
        .ping_interval(ping)
        .connection_timeout(config.connect_timeout)
        .subscription_capacity(INCOMING_CAPACITY)
        .client_capacity(OUTGOING_CAPACITY)
        .reconnect_delay_callback(move |n| {
            if gone.load(Relaxed) {
                PARKED
            } else {
                Duration::from_millis(100 * (n as u64).clamp(1, 10))
            }
        })
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.try_send(e);
            }
        }))
}

fn connect_error(config: &ClusterConfig, e: &async_nats::ConnectError) -> ClusterError {
    let hint = match e.kind() {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            " (check the credentials: token, user and password, or creds file)"
        }
        ConnectErrorKind::Tls => " (check the CA and whether the server speaks TLS)",
        ConnectErrorKind::TimedOut | ConnectErrorKind::Io | ConnectErrorKind::Dns => {
            " (is nats-server running there and reachable?)"
        }
        _ => "",
    };
    ClusterError::Connect {
        servers: config.servers.join(", "),
        reason: e.to_string(),
        hint,
    }
}

/// True when `e` says no server answered (refused, unreachable, timed
/// out, name not found), as opposed to one that answered and refused us
/// (credentials, TLS): only the first may heal by itself.
fn out_of_reach(e: &async_nats::ConnectError) -> bool {
    use std::io::ErrorKind as K;
    match e.kind() {
        ConnectErrorKind::TimedOut | ConnectErrorKind::Dns => true,
        // A TLS handshake that fails comes as an I/O error too, of another
        // kind (invalid data); a reset or abort means something answered
        // (a server refusing a client certificate may reset), so it is not
        // counted as out of reach.
        ConnectErrorKind::Io => std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                matches!(
                    io.kind(),
                    K::ConnectionRefused
                        | K::HostUnreachable
                        | K::NetworkUnreachable
                        | K::TimedOut
                        | K::AddrNotAvailable
                        | K::NotConnected
                )
            }),
        _ => false,
    }
}

/// Connect to one of `addrs`. When none answers and the configuration
/// allows it, a client that goes on trying in the background, with why
/// none answered.
async fn first_connection(
    config: &ClusterConfig,
    addrs: Vec<ServerAddr>,
    tx: mpsc::Sender<Event>,
    gone: &Gone,
) -> Result<(async_nats::Client, Option<String>), ClusterError> {
    let opts = options(config, tx.clone(), gone.0.clone()).await?;
    let e = match opts.connect(addrs.clone()).await {
        Ok(client) => return Ok((client, None)),
        Err(e) => e,
    };
    if !(config.start_split && out_of_reach(&e)) {
        return Err(connect_error(config, &e));
    }
    // The client tries the servers in random order and reports the last
    // error only: ask each, so that one that answered and refused (bad
    // credentials, TLS) fails the start whatever the order.
    if addrs.len() > 1 {
        for addr in &addrs {
            let (one_tx, _) = mpsc::channel(1);
            // A connection that only asks (dropped at once, so never
            // reconnected). Not parked: the client waits the delay before
            // its very first attempt too.
            let asked = Arc::new(AtomicBool::new(false));
            match options(config, one_tx, asked)
                .await?
                .connect(addr.clone())
                .await
            {
                Ok(c) => {
                    // It answers now: join through all of them.
                    drop(c);
                    let client = options(config, tx.clone(), gone.0.clone())
                        .await?
                        .connect(addrs.clone())
                        .await
                        .map_err(|e| connect_error(config, &e))?;
                    return Ok((client, None));
                }
                Err(e) if !out_of_reach(&e) => return Err(connect_error(config, &e)),
                Err(_) => {}
            }
        }
    }
    let retrying = options(config, tx, gone.0.clone())
        .await?
        .retry_on_initial_connect();
    let client = retrying
        .connect(addrs)
        .await
        .map_err(|e| connect_error(config, &e))?;
    let reason = format!(
        "no NATS server answered at start ({}: {e}); trying again in the background",
        config.servers.join(", ")
    );
    Ok((client, Some(reason)))
}

impl Link {
    /// Connect to NATS, subscribe to the room and (chat) open the nickname
    /// store. `mode` must be the server's; `events` gets the cluster's
    /// events (nodes up and gone, split, lines lost).
    pub async fn connect(
        config: ClusterConfig,
        mode: Mode,
        events: Events<ChatEvent>,
    ) -> Result<Self, ClusterError> {
        if !proto::valid_room(&config.room) {
            return Err(ClusterError::Room(config.room.clone()));
        }
        let addrs = servers(&config)?;
        let (tx, conn_events) = mpsc::channel(64);
        let gone = Gone::default();
        let (client, unreachable) = first_connection(&config, addrs, tx, &gone).await?;
        let broker = mode == Mode::Broker;
        let base = proto::base(broker, &config.room);
        let subject = format!("{base}.>");
        let sub = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| ClusterError::Subscribe {
                subject,
                reason: e.to_string(),
            })?;
        let id: u64 = rand::random();
        let nicks = if broker {
            None
        } else {
            let bucket = format!("sockbox-chat-{}", config.room);
            let nicks = Nicks::new(client.clone(), bucket, id, config.store_timeout);
            if unreachable.is_none() {
                nicks.reopen().await?;
            }
            Some(nicks)
        };
        let node = Arc::new(Node::new(NodeParts {
            id,
            name: config.node_name.clone(),
            base,
            broker,
            queue_limit: config.queue_limit,
            nicks,
            dead_after: config.dead_after,
            max_payload: client.max_payload(),
            events,
        }));
        if let Some(reason) = unreachable {
            node.on_split(&reason);
        }
        Ok(Self {
            client,
            node,
            sub,
            conn_events,
            heartbeat: config.heartbeat,
            gone,
        })
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.node.name
    }

    /// True while the link to NATS is down (the node started split when
    /// no server answered).
    pub fn is_split(&self) -> bool {
        self.node.is_split()
    }

    /// Serve `room`: become its hub's remote. False when it has one.
    pub(crate) fn attach(&self, room: &Arc<Room>) -> bool {
        Node::attach(&self.node, room);
        room.hub.set_remote(self.node.clone())
    }

    /// Start the tasks: say hello (roster) and ask for everyone's.
    pub(crate) fn start(self) -> Running {
        let Self {
            client,
            node,
            mut sub,
            mut conn_events,
            heartbeat,
            gone,
        } = self;
        node.out.roster(false);
        node.request_sync();
        let mut tasks = Vec::new();
        let n = node.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                n.handle(m.subject.as_str(), &m.payload);
            }
        }));
        let (n, c) = (node.clone(), client.clone());
        tasks.push(tokio::spawn(async move { publish(&n, &c).await }));
        let n = node.clone();
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(STORE_RETRY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                n.keep_store_open().await;
            }
        }));
        let (n, c) = (node.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(heartbeat);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // The client learns the limit from the server it connects
                // to, a moment after it says it connected.
                n.set_max_payload(c.max_payload());
                n.tick();
            }
        }));
        let (n, c) = (node.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut last_error = String::new();
            while let Some(e) = conn_events.recv().await {
                match e {
                    Event::Disconnected => n.on_split("lost the connection to NATS"),
                    Event::Connected => {
                        n.set_max_payload(c.max_payload());
                        n.on_whole().await;
                        // The client stores the new server's limit just
                        // after saying it connected.
                        n.set_max_payload(c.max_payload());
                    }
                    Event::ClientError(e) => log_client_error(&mut last_error, &e),
                    Event::SlowConsumer(_) => {
                        tracing::warn!("NATS dropped messages for this node: it could not keep up");
                    }
                    other => tracing::debug!("NATS: {other}"),
                }
            }
        }));
        Running {
            client,
            node,
            tasks,
            _gone: gone,
        }
    }
}

/// A failed (re)connection attempt, said once per different reason: the
/// client retries every second while the room is split, and a reason such
/// as refused credentials will not heal by itself.
fn log_client_error(last: &mut String, e: &async_nats::ClientError) {
    let text = e.to_string();
    if *last != text {
        tracing::warn!("NATS: {text} (trying again)");
        *last = text;
    }
}

/// Publish what the node queues, in order; dropped while the link is down.
async fn publish(node: &Node, client: &async_nats::Client) {
    loop {
        for o in node.out.take(PUBLISH_BATCH).await {
            if client.connection_state() != async_nats::connection::State::Connected {
                continue;
            }
            if let Err(e) = client.publish(o.subject, o.payload).await {
                tracing::debug!("NATS publish failed: {e}");
            }
        }
    }
}

/// A node's running tasks.
pub(crate) struct Running {
    client: async_nats::Client,
    node: Arc<Node>,
    tasks: Vec<JoinHandle<()>>,
    /// Dropped with it: the client stops reconnecting.
    _gone: Gone,
}

/// A server whose run was dropped midway (not finished) stops its tasks
/// too; they hold the NATS client.
impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    /// The server stopped: let the goodbye (queued when draining began) go
    /// out, then stop.
    pub async fn finish(self) {
        self.node.out.close();
        if self.client.connection_state() != async_nats::connection::State::Connected {
            // Nobody to say goodbye to (the node never reached NATS, or
            // lost it); dropping `self` stops the tasks.
            return;
        }
        let _ = tokio::time::timeout(FLUSH_WAIT, async {
            while !self.node.out.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = self.client.flush().await;
        })
        .await;
    }
}
