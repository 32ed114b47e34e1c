//! The TCP side of a relay server: a [`Handler`] for
//! [`TcpServer`](crate::net::TcpServer) that relays each admitted
//! connection (over TLS if asked) to a program, to the shared standard
//! input/output, or, for a single client, through the splice pump.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::conn::{Remote, Shared};
use super::ends::{RemoteIn, RemoteOut};
use super::{Outcome, Peer, RelayError, Report};
use crate::Shutdown;
use crate::net::{Connection, Handler};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Relays each connection of a TCP server.
pub(crate) struct TcpRelay {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tls: Option<TlsAcceptor>,
}

impl Handler for TcpRelay {
    async fn serve(&self, conn: Connection) {
        let Connection {
            stream,
            peer,
            drain,
            ..
        } = conn;
        self.shared.count_served();
        let peer = Peer::Inet(peer);
        // Shutdown lets a connection finish: only the end of the grace
        // period cuts it.
        let stop = drain.hard().clone();
        let result = self.relay(stream, peer.clone(), &stop).await;
        self.shared.finished(peer, result);
    }
}

impl TcpRelay {
    async fn relay(
        &self,
        stream: TcpStream,
        peer: Peer,
        stop: &Shutdown,
    ) -> Result<Report, RelayError> {
        if let Some(acceptor) = &self.tls {
            return self.relay_tls(acceptor, stream, peer, stop).await;
        }
        let shared = &self.shared;
        if shared.once() && !shared.runs_programs() {
            let std = stream.into_std().map_err(RelayError::Setup)?;
            return shared
                .pump(OwnedFd::from(std), (peer, false), Vec::new(), stop)
                .await;
        }
        let local = local_of(&stream);
        let (r, w) = stream.into_split();
        let remote = Remote {
            peer,
            read: RemoteIn::Tcp(r),
            write: RemoteOut::Tcp(w),
            proto: "tcp",
            first: None,
            local,
        };
        shared.relay(remote, stop).await
    }

    async fn relay_tls(
        &self,
        acceptor: &TlsAcceptor,
        stream: TcpStream,
        peer: Peer,
        stop: &Shutdown,
    ) -> Result<Report, RelayError> {
        let addr = peer.inet().unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
        let local = local_of(&stream);
        let tls = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)) => match r {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => {
                    let peer = peer.to_string();
                    return Err(crate::tls::TlsError::Handshake { peer, source }.into());
                }
                Err(_) => return Err(RelayError::TlsTimeout(addr)),
            },
            () = stop.wait() => {
                return Ok(Report { outcome: Outcome::Stopped, sent: 0, received: 0 });
            }
        };
        let (r, w) = tokio::io::split(tls);
        let remote = Remote {
            peer,
            read: RemoteIn::Stream(Box::new(r)),
            write: RemoteOut::Stream(Box::new(w)),
            proto: "tls",
            first: None,
            local,
        };
        self.shared.relay(remote, stop).await
    }
}

/// This end of an accepted connection (the address the client reached).
fn local_of(stream: &TcpStream) -> Option<Peer> {
    stream
        .local_addr()
        .ok()
        .map(|a| Peer::Inet(crate::net::canonical(a)))
}
