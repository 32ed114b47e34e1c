//! The listening side (`sockbox listen`): bind first, then serve.
//!
//! Without `keep_open` one connection (TCP) or one peer (UDP) is served and
//! the listening socket is closed as soon as it arrives. With `keep_open`
//! clients are served concurrently up to `max_conns`; a client beyond that,
//! or one refused by the allow/deny lists, is accepted and closed at once
//! (UDP: its datagrams are dropped) and counted as refused. On shutdown the
//! server stops accepting and lets open connections finish for `grace`,
//! then stops them.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::dump::Dump;
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::exec::{ExecSpec, Program, relay_program};
use super::hub::{Hub, stdin_chunks};
use super::net::{Family, bind_tcp, bind_udp};
use super::pump::{PumpEnds, PumpExtras, Stopper, pump, stdio_fds};
use super::session::{self, Ends, Extras};
use super::{Outcome, RelayError, RelayOptions, Report};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::net::acl::SharedAcl;

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
    /// This process's standard input and output (shared by all clients with `keep_open`).
    #[default]
    Stdio,
    /// A program per connection.
    Exec(ExecSpec),
}

/// Everything `listen` needs.
#[derive(Clone)]
pub struct ListenConfig {
    /// Address to bind (`[::]` is dual-stack unless `family` is V6).
    pub addr: SocketAddr,
    /// `-4`/`-6`.
    pub family: Family,
    /// TCP or UDP.
    pub proto: Proto,
    /// Keep serving after the first client (`-k`).
    pub keep_open: bool,
    /// Most clients at once (`-m`).
    pub max_conns: usize,
    /// Allow/deny lists.
    pub acl: SharedAcl,
    /// Standard I/O or a program per connection.
    pub local: Local,
    /// Relay rules per connection.
    pub opts: RelayOptions,
    /// Traffic dump.
    pub dump: Option<Dump>,
    /// Counters.
    pub stats: ServerStats,
    /// How long open connections may finish after shutdown.
    pub grace: Duration,
    /// Serve TLS over TCP (`--tls`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

impl std::fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConfig")
            .field("addr", &self.addr)
            .field("proto", &self.proto)
            .field("keep_open", &self.keep_open)
            .field("max_conns", &self.max_conns)
            .field("local", &self.local)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

enum Bound {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// A bound listener, ready to [`Listener::run`].
pub struct Listener {
    cfg: ListenConfig,
    sock: Bound,
    local: SocketAddr,
}

/// What a listener did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections (or UDP peers) served.
    pub served: u64,
    /// The report of the connection, when only one was served (no `keep_open`).
    pub single: Option<Report>,
}

/// Bind the listening socket.
pub fn bind(cfg: ListenConfig) -> Result<Listener, RelayError> {
    let (sock, local) = match cfg.proto {
        Proto::Tcp => {
            let l = bind_tcp(cfg.addr, cfg.family)?;
            let a = l.local_addr().map_err(RelayError::Setup)?;
            (Bound::Tcp(l), a)
        }
        Proto::Udp => {
            let s = bind_udp(cfg.addr, cfg.family)?;
            let a = s.local_addr().map_err(RelayError::Setup)?;
            (Bound::Udp(s), a)
        }
    };
    Ok(Listener { cfg, sock, local })
}

/// Per-connection context shared by the accept loop's tasks.
#[derive(Clone)]
pub(super) struct Conn {
    pub(super) cfg: Arc<ListenConfig>,
    pub(super) local: SocketAddr,
    pub(super) extras: Extras,
    pub(super) hub: Option<Hub>,
    /// Fires when the grace period after shutdown is over.
    pub(super) drain: Shutdown,
}

fn resource_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Listener {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serve until done (single client) or until `shutdown` fires.
    pub async fn run(self, shutdown: Shutdown) -> Result<ServeReport, RelayError> {
        let Self { cfg, sock, local } = self;
        let hub = (cfg.keep_open && cfg.local == Local::Stdio)
            .then(|| Hub::new(cfg.opts.flow != super::Flow::RecvOnly));
        let conn = Conn {
            extras: Extras {
                dump: cfg.dump.clone(),
                stats: Some(cfg.stats.clone()),
            },
            cfg: Arc::new(cfg),
            local,
            hub,
            drain: Shutdown::new(),
        };
        match sock {
            Bound::Tcp(l) => run_tcp(conn, l, shutdown).await,
            Bound::Udp(s) => super::udp::run_udp(conn, s, shutdown).await,
        }
    }
}

async fn run_tcp(
    conn: Conn,
    listener: std::net::TcpListener,
    shutdown: Shutdown,
) -> Result<ServeReport, RelayError> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(RelayError::Setup)?;
    let cfg = Arc::clone(&conn.cfg);
    let sem = Arc::new(Semaphore::new(
        cfg.max_conns.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let tracker = TaskTracker::new();
    let mut served = 0;
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                // IPv4 clients of a dual-stack socket show as 1.2.3.4, not ::ffff:1.2.3.4.
                (stream, crate::net::canonical(peer))
            }
            Err(e) if resource_error(&e) => {
                tracing::warn!(
                    "accept: {e}; backing off {backoff:?} (raise `ulimit -n` or lower -m)"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.wait() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                tracing::debug!("accept: {e}");
                continue;
            }
        };
        if !cfg.acl.permits(peer.ip()) {
            cfg.stats.refused();
            tracing::info!(%peer, "refused: not permitted by --allow/--deny");
            continue;
        }
        let Ok(permit) = Arc::clone(&sem).try_acquire_owned() else {
            cfg.stats.refused();
            tracing::warn!(%peer, "refused: {} connections already open (-m/--max-conns)", cfg.max_conns);
            continue;
        };
        served += 1;
        tracing::info!(%peer, "connected");
        if !cfg.keep_open {
            drop(listener);
            let _guard = cfg.stats.connection();
            let report = serve_tcp(&conn, stream, peer, &shutdown).await?;
            log_report(peer, &report);
            return Ok(ServeReport {
                served,
                single: Some(report),
            });
        }
        let c = conn.clone();
        let stats = cfg.stats.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let _guard = stats.connection();
            let drain = c.drain.clone();
            match serve_tcp(&c, stream, peer, &drain).await {
                Ok(r) => log_report(peer, &r),
                Err(e) => tracing::warn!(%peer, "{e}"),
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(cfg.grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::info!(
            "grace period over: closing {} open connection(s)",
            tracker.len()
        );
        conn.drain.trigger();
        tracker.wait().await;
    }
    Ok(ServeReport {
        served,
        single: None,
    })
}

pub(super) fn log_report(peer: SocketAddr, r: &Report) {
    if let Outcome::Idle(d) = r.outcome {
        tracing::info!(%peer, "closed after {d:?} idle (-i): sent {}, received {}", r.sent, r.received);
    } else {
        tracing::info!(%peer, "closed: sent {}, received {}", r.sent, r.received);
    }
}

/// One TCP connection, whatever the local side.
async fn serve_tcp(
    conn: &Conn,
    stream: TcpStream,
    peer: SocketAddr,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let cfg = &conn.cfg;
    let _ = stream.set_nodelay(true);
    if let Some(acceptor) = &cfg.tls {
        let tls = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)) => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(RelayError::Tls(crate::tls::TlsError::Handshake {
                    peer: peer.to_string(),
                    source: e,
                })),
                Err(_) => return Err(RelayError::TlsTimeout(peer)),
            },
            () = stop.wait() => return Ok(Report { outcome: Outcome::Stopped, sent: 0, received: 0 }),
        };
        let (r, w) = tokio::io::split(tls);
        let (ri, ro) = (
            RemoteIn::Stream(Box::new(r)),
            RemoteOut::Stream(Box::new(w)),
        );
        return match (&cfg.local, &conn.hub) {
            (Local::Exec(spec), _) => run_exec(conn, spec, peer, ri, ro, None, "tls", stop).await,
            (Local::Stdio, Some(hub)) => run_hub(conn, hub, peer, ri, ro, stop).await,
            (Local::Stdio, None) => {
                let ends = Ends {
                    local_in: LocalIn::Chunks(stdin_chunks()),
                    local_out: LocalOut::Writer(Box::new(tokio::io::stdout())),
                    remote_in: ri,
                    remote_out: ro,
                    peer,
                };
                session::run(ends, &cfg.opts, &conn.extras, None, stop).await
            }
        };
    }
    match (&cfg.local, &conn.hub) {
        (Local::Exec(spec), _) => {
            let (r, w) = stream.into_split();
            run_exec(
                conn,
                spec,
                peer,
                RemoteIn::Tcp(r),
                RemoteOut::Tcp(w),
                None,
                "tcp",
                stop,
            )
            .await
        }
        (Local::Stdio, Some(hub)) => {
            let (r, w) = stream.into_split();
            run_hub(conn, hub, peer, RemoteIn::Tcp(r), RemoteOut::Tcp(w), stop).await
        }
        (Local::Stdio, None) => {
            let std = stream.into_std().map_err(RelayError::Setup)?;
            run_pump(conn, OwnedFd::from(std), peer, false, Vec::new(), stop).await
        }
    }
}

/// One client of the shared stdin/stdout hub.
pub(super) async fn run_hub(
    conn: &Conn,
    hub: &Hub,
    peer: SocketAddr,
    remote_in: RemoteIn,
    remote_out: RemoteOut,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let kick = stop.child();
    let (_member, chunks) = hub.join(kick.clone());
    let mut opts = conn.cfg.opts.clone();
    opts.end_on_remote_eof = !remote_out.is_datagram();
    let ends = Ends {
        local_in: LocalIn::Chunks(chunks),
        local_out: LocalOut::Shared(Arc::clone(&hub.stdout)),
        remote_in,
        remote_out,
        peer,
    };
    session::run(ends, &opts, &conn.extras, None, &kick).await
}

/// The single stdio relay on a blocking thread; `stop` stops it.
pub(super) async fn run_pump(
    conn: &Conn,
    socket: OwnedFd,
    peer: SocketAddr,
    datagram: bool,
    initial_rx: Vec<u8>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let (input, output) = stdio_fds()?;
    let stopper = Stopper::new()?;
    let ends = PumpEnds {
        input,
        output,
        socket,
        peer,
        datagram,
    };
    let extras = PumpExtras {
        dump: conn.cfg.dump.clone(),
        stats: Some(conn.cfg.stats.clone()),
        initial_rx,
    };
    let opts = conn.cfg.opts.clone();
    let s2 = stopper.clone();
    let job = tokio::task::spawn_blocking(move || pump(ends, &opts, extras, &s2));
    let watcher = {
        let stop = stop.clone();
        let stopper = stopper.clone();
        tokio::spawn(async move {
            stop.wait().await;
            stopper.stop();
        })
    };
    let r = job.await;
    watcher.abort();
    r.map_err(|e| RelayError::Setup(std::io::Error::other(e)))?
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_exec(
    conn: &Conn,
    spec: &ExecSpec,
    peer: SocketAddr,
    remote_in: RemoteIn,
    remote_out: RemoteOut,
    initial_rx: Option<Bytes>,
    proto: &str,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let prog = Program {
        spec,
        peer,
        local: Some(conn.local),
        proto,
    };
    relay_program(
        prog,
        (remote_in, remote_out),
        &conn.cfg.opts,
        &conn.extras,
        initial_rx.as_deref(),
        stop,
        &conn.drain,
    )
    .await
}
