//! The UDP server skeleton: one receive loop for every datagram server.
//!
//! [`UdpServer`] receives with the address each datagram was sent to
//! (`IP_PKTINFO`), so answers leave from that address; shows each sender in
//! canonical form; drops and counts what the allow/deny lists refuse; and
//! hands the rest to the [`DatagramHandler`] in arrival order. A handler
//! answers at once (echo, a fixed text) by returning the bytes, or later
//! from a task started with [`DatagramCtx::spawn`] (run a program) through
//! a [`Replier`]. On shutdown the loop stops receiving, the tasks get the
//! grace period, then [`Drain::hard`] stops them.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::task::TaskTracker;

use super::addr::canonical;
use super::bind::{Bind, BindError};
use super::drain::Drain;
use super::{ServerOptions, ServerReport};
use crate::Shutdown;
use crate::daemon::ServerStats;
use crate::sys::pktinfo::{self, Arrival};

/// The largest datagram received whole.
const MAX_DATAGRAM: usize = 65_536;

/// A received datagram.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// Its payload.
    pub payload: &'a [u8],
    /// Its sender, canonical (an IPv4 sender of a dual-stack socket shows
    /// as IPv4).
    pub peer: SocketAddr,
    /// The address it was sent to (a broadcast or group address too), when
    /// the socket reports it.
    pub dst: Option<IpAddr>,
    /// The server's bound address.
    pub local: SocketAddr,
    from: SocketAddr,
    arrival: Option<Arrival>,
}

impl Datagram<'_> {
    /// Where it arrived, as a socket address: [`Datagram::dst`] with the
    /// server's port, or the bound address.
    pub fn here(&self) -> SocketAddr {
        self.dst
            .map_or(self.local, |ip| SocketAddr::new(ip, self.local.port()))
    }
}

/// What to do about a datagram right now.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Nothing (not answered, or answered later through a [`Replier`]).
    Nothing,
    /// Send these bytes back to the sender, from the address it wrote to.
    Reply(&'a [u8]),
}

/// What a UDP server does with its datagrams.
pub trait DatagramHandler: Send + Sync + 'static {
    /// One admitted datagram, in arrival order, on the receive loop: return
    /// quickly (start long work with [`DatagramCtx::spawn`]).
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, ctx: &DatagramCtx) -> Answer<'a>;

    /// The result of sending an [`Answer::Reply`] (or of a [`Replier`]).
    fn answered(&self, to: SocketAddr, result: &io::Result<usize>) {
        let _ = (to, result);
    }

    /// A datagram the allow/deny lists refused (dropped, counted refused).
    fn denied(&self, from: SocketAddr, len: usize) {
        let _ = (from, len);
    }
}

/// What a handler may use besides the datagram.
#[derive(Clone, Debug)]
pub struct DatagramCtx {
    socket: Arc<UdpSocket>,
    tracker: TaskTracker,
    drain: Drain,
    stats: ServerStats,
}

impl DatagramCtx {
    /// Run `work` on its own task. It gets the grace period after shutdown
    /// and is dropped (cancelled) when [`Drain::hard`] fires.
    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let hard = self.drain.hard().clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = work => {}
                () = hard.wait() => {}
            }
        });
    }

    /// A handle to answer `dg` later, from another task.
    pub fn replier(&self, dg: &Datagram<'_>) -> Replier {
        Replier {
            socket: self.socket.clone(),
            to: dg.from,
            peer: dg.peer,
            arrival: dg.arrival,
            stats: self.stats.clone(),
        }
    }

    /// The shutdown stages.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The server's counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
}

/// Answers one datagram from the address it was sent to.
#[derive(Clone, Debug)]
pub struct Replier {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    peer: SocketAddr,
    arrival: Option<Arrival>,
    stats: ServerStats,
}

impl Replier {
    /// The sender being answered, canonical.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Send `payload` to the sender; counts the bytes out.
    pub async fn send(&self, payload: &[u8]) -> io::Result<usize> {
        let n = pktinfo::send_to(&self.socket, payload, self.to, self.arrival.as_ref()).await?;
        self.stats.add_out(n as u64);
        Ok(n)
    }
}

/// A bound UDP server: [`UdpServer::bind`] or [`UdpServer::from_socket`],
/// then [`UdpServer::run`].
pub struct UdpServer<H> {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    handler: Arc<H>,
    opts: ServerOptions,
}

impl<H> std::fmt::Debug for UdpServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl<H: DatagramHandler> UdpServer<H> {
    /// Bind as `bind` says (with `SO_BROADCAST`, so answers can reach
    /// broadcast senders). Must run inside a tokio runtime.
    pub fn bind(bind: &Bind, handler: H, opts: ServerOptions) -> Result<Self, BindError> {
        let sock = bind.clone().broadcast(true).udp_std()?;
        let err = |step: &str, source| BindError {
            addr: bind.addr(),
            step: step.to_owned(),
            source,
        };
        let sock = UdpSocket::from_std(sock).map_err(|e| err("register", e))?;
        Self::from_socket(sock, handler, opts).map_err(|e| err("set up", e))
    }

    /// Serve on a socket bound elsewhere (with memberships, say). Turns on
    /// packet info so answers leave from the address written to; without
    /// it (not Linux) the kernel picks the source.
    pub fn from_socket(socket: UdpSocket, handler: H, opts: ServerOptions) -> io::Result<Self> {
        let local = socket.local_addr()?;
        if let Err(e) = pktinfo::enable(&socket2::SockRef::from(&socket), local.is_ipv6()) {
            tracing::debug!("no packet info ({e}): answers leave from the kernel's choice");
        }
        Ok(Self {
            socket: Arc::new(socket),
            local,
            handler: Arc::new(handler),
            opts,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Serve until `shutdown` fires, then drain the handler's tasks.
    /// Fails only when receiving fails for good.
    pub async fn run(self, shutdown: Shutdown) -> io::Result<ServerReport> {
        let ctx = DatagramCtx {
            socket: self.socket.clone(),
            tracker: TaskTracker::new(),
            drain: Drain::new(),
            stats: self.opts.stats.clone(),
        };
        let mut report = ServerReport::default();
        let result = self.receive(&ctx, &shutdown, &mut report).await;
        report.cut_at_grace = ctx
            .drain
            .wait_out(&ctx.tracker, self.opts.grace, &self.opts.events)
            .await;
        result.map(|()| report)
    }

    async fn receive(
        &self,
        ctx: &DatagramCtx,
        shutdown: &Shutdown,
        report: &mut ServerReport,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, from, arrival) = tokio::select! {
                () = shutdown.wait() => return Ok(()),
                r = pktinfo::recv_from(&self.socket, &mut buf) => match r {
                    Ok(got) => got,
                    // ICMP errors queued by earlier answers: not ours to stop for.
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => return Err(e),
                },
            };
            let peer = canonical(from);
            if !self.opts.acl.permits(peer.ip()) {
                report.refused += 1;
                self.opts.stats.refused();
                self.handler.denied(peer, n);
                continue;
            }
            report.accepted += 1;
            drop(self.opts.stats.connection());
            self.opts.stats.add_in(n as u64);
            let dg = Datagram {
                payload: &buf[..n],
                peer,
                dst: arrival.map(|a| a.dst()),
                local: self.local,
                from,
                arrival,
            };
            if let Answer::Reply(bytes) = self.handler.datagram(&dg, ctx) {
                let r = ctx.replier(&dg).send(bytes).await;
                self.handler.answered(peer, &r);
            }
        }
    }
}

/// Receive errors that concern one earlier datagram, not the socket.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EINTR
        )
    )
}
