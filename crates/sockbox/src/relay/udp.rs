//! The UDP side of a relay server.
//!
//! Keeping open, peers are told apart by source address on
//! [`UdpServer`](crate::net::UdpServer) ([`UdpRelay`]): a new peer gets a
//! session (its own program, or a member of the shared standard
//! input/output) fed through a queue, answered through a
//! [`Replier`](crate::net::Replier) from the address it wrote to; at most
//! `max_conns` peers at once.
//!
//! A single peer ([`serve_one`]) does not fit `UdpServer`, which keeps its
//! socket shared and unconnected and reads every datagram itself: here the
//! first permitted sender is connected on the socket, and the socket is
//! handed to the blocking splice pump (or to a program) for good. That mode
//! uses the allow/deny lists and canonical addresses of [`crate::net`]
//! directly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::conn::{Remote, Shared};
use super::ends::{RemoteIn, RemoteOut};
use super::event::RelayEvent;
use super::{Peer, RelayError, Report};
use crate::Shutdown;
use crate::net::{
    Answer, Datagram, DatagramCtx, DatagramHandler, Refusal, Replier, ServerEvent, ServerOptions,
    canonical,
};

/// Datagrams queued per peer session; more are dropped.
const QUEUE: usize = 256;

/// The largest datagram received whole.
const MAX_DATAGRAM: usize = 65_536;

/// Count and report a refused peer.
fn refuse(shared: &Shared, opts: &ServerOptions, peer: SocketAddr, reason: Refusal) {
    opts.stats.refused();
    shared.count_refused();
    opts.events.on_event(&ServerEvent::Refused { peer, reason });
}

/// Serve the first permitted sender only, until the relay ends or
/// `shutdown` fires.
pub(crate) async fn serve_one(
    shared: &Shared,
    socket: UdpSocket,
    opts: &ServerOptions,
    shutdown: &Shutdown,
) -> Result<(), RelayError> {
    let Some((first, from)) = first_datagram(shared, &socket, opts, shutdown).await else {
        return Ok(());
    };
    socket.connect(from).await.map_err(RelayError::Setup)?;
    let peer = Peer::Inet(canonical(from));
    shared.count_served();
    let _active = opts.stats.connection();
    let new = RelayEvent::NewPeer { peer: peer.clone() };
    shared.extras.events.on_event(&new);
    let result = if shared.runs_programs() {
        let s = Arc::new(socket);
        let remote = Remote {
            peer: peer.clone(),
            read: RemoteIn::Udp(Arc::clone(&s)),
            write: RemoteOut::Udp(s),
            proto: "udp",
            first: Some(Bytes::from(first)),
            local: None,
        };
        shared.relay(remote, shutdown).await
    } else {
        let std = socket.into_std().map_err(RelayError::Setup)?;
        shared
            .pump(OwnedFd::from(std), (peer.clone(), true), first, shutdown)
            .await
    };
    shared.finished(peer, result);
    Ok(())
}

/// The first datagram the allow/deny lists permit, and its sender (as the
/// socket saw it); `None` when `shutdown` fired first.
async fn first_datagram(
    shared: &Shared,
    socket: &UdpSocket,
    opts: &ServerOptions,
    shutdown: &Shutdown,
) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let got = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = shutdown.wait() => return None,
        };
        match got {
            Ok((n, from)) if opts.acl.permits(canonical(from).ip()) => {
                return Some((buf[..n].to_vec(), from));
            }
            Ok((_, from)) => refuse(shared, opts, canonical(from), Refusal::Denied),
            Err(e) => tracing::debug!("recv: {e}"),
        }
    }
}

/// The sessions open now, by peer; the number tells a session its own
/// entry from a later one of the same peer.
#[derive(Default)]
struct Peers {
    next: u64,
    open: HashMap<SocketAddr, (u64, mpsc::Sender<Bytes>)>,
}

/// Demultiplexes a keep-open UDP relay server's datagrams by peer.
pub(crate) struct UdpRelay {
    shared: Arc<Shared>,
    peers: Arc<Mutex<Peers>>,
    /// The server's own options (its statistics, events and cap; the
    /// receive loop counts datagrams in a statistics of its own).
    opts: ServerOptions,
}

impl UdpRelay {
    pub(crate) fn new(shared: Arc<Shared>, opts: ServerOptions) -> Self {
        Self {
            shared,
            peers: Arc::default(),
            opts,
        }
    }

    /// A new peer's session, fed by `rx`, answered by `replier`.
    fn start(&self, id: u64, rx: mpsc::Receiver<Bytes>, replier: Replier, ctx: &DatagramCtx) {
        let peer = replier.peer();
        self.shared.count_served();
        let active = self.opts.stats.connection();
        self.shared
            .extras
            .events
            .on_event(&RelayEvent::NewPeer { peer: peer.into() });
        let (shared, peers, drain) = (self.shared.clone(), self.peers.clone(), ctx.drain().clone());
        ctx.spawn(async move {
            let _active = active;
            let remote = Remote {
                peer: peer.into(),
                read: RemoteIn::Datagrams(rx),
                write: RemoteOut::Reply(replier),
                proto: "udp",
                first: None,
                local: None,
            };
            let session = shared.relay(remote, drain.hard());
            tokio::pin!(session);
            // At shutdown the peer's queue closes: its session sees the
            // end of the peer's data and finishes within the grace period.
            let result: Result<Report, RelayError> = tokio::select! {
                r = &mut session => r,
                () = drain.soft().wait() => {
                    forget(&peers, peer, id);
                    session.await
                }
            };
            forget(&peers, peer, id);
            shared.finished(peer.into(), result);
        });
    }
}

/// Drop the queue of session `id` of `peer`, if it is still there.
fn forget(peers: &Mutex<Peers>, peer: SocketAddr, id: u64) {
    let mut p = peers.lock().unwrap_or_else(PoisonError::into_inner);
    if p.open.get(&peer).is_some_and(|(n, _)| *n == id) {
        p.open.remove(&peer);
    }
}

impl DatagramHandler for UdpRelay {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, ctx: &DatagramCtx) -> Answer<'a> {
        let data = Bytes::copy_from_slice(dg.payload);
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, tx)) = peers.open.get(&dg.peer) {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(data) {
                let peer = dg.peer;
                self.shared
                    .extras
                    .events
                    .on_event(&RelayEvent::QueueFull { peer: peer.into() });
            }
            return Answer::Nothing;
        }
        let max = self.opts.max_conns;
        if peers.open.len() >= max {
            drop(peers);
            refuse(&self.shared, &self.opts, dg.peer, Refusal::Full { max });
            return Answer::Nothing;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(data);
        let id = peers.next;
        peers.next += 1;
        peers.open.insert(dg.peer, (id, tx));
        drop(peers);
        self.start(id, rx, ctx.replier(dg), ctx);
        Answer::Nothing
    }

    fn denied(&self, from: SocketAddr, _len: usize) {
        refuse(&self.shared, &self.opts, from, Refusal::Denied);
    }
}
