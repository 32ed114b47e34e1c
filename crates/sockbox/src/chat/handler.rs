//! The chat's [`Handler`] for the server skeleton: TLS handshake, then a
//! session; a goodbye for refused clients; the shutdown notice when the
//! server starts draining.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::ChatEvent;
use super::room::Room;
use super::session::{self, AnyRead, Peer};
use crate::net::{Connection, Drain, Handler, Refusal, Refused};
use crate::tls::TlsAcceptor;

/// How long a refused client gets to take its goodbye line.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// Serves chat and broker clients.
pub(crate) struct ChatHandler {
    pub room: Arc<Room>,
}

impl Handler for ChatHandler {
    async fn serve(&self, conn: Connection) {
        let room = self.room.clone();
        let Connection {
            stream,
            peer,
            drain,
            ..
        } = conn;
        let label = peer.to_string();
        match room.config.tls.clone() {
            None => {
                let (r, w) = stream.into_split();
                let who = Peer::network(label, drain);
                session::serve(&room, r, w, who, None).await;
            }
            // Boxed: plain connections do not carry the TLS state.
            Some(acceptor) => Box::pin(serve_tls(room, acceptor, stream, label, drain)).await,
        }
    }

    async fn refuse(&self, refused: Refused) {
        let Refused {
            mut stream,
            peer,
            reason,
        } = refused;
        // The broker adds nothing to the byte stream: closing says it.
        if let Some(text) = goodbye(reason).filter(|_| self.room.is_chat()) {
            say_and_close(&mut stream, &text).await;
        }
        tracing::trace!(%peer, "refused client closed");
    }

    async fn draining(&self) {
        self.room.close();
    }
}

/// Handshake within the time allowed (or until shutdown), then a session.
async fn serve_tls(
    room: Arc<Room>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    label: String,
    drain: Drain,
) {
    let handshake = tokio::time::timeout(room.config.handshake_timeout, acceptor.accept(stream));
    let tls = tokio::select! {
        r = handshake => r,
        () = drain.soft().wait() => return,
    };
    match tls {
        Ok(Ok(tls)) => {
            // Valid while the halves live: the session holds them.
            let tcp_fd = Some(tls.get_ref().0.as_raw_fd());
            let (r, w) = tokio::io::split(tls);
            let who = Peer::network(label, drain);
            let reader = AnyRead { inner: r, tcp_fd };
            session::serve(&room, reader, w, who, None).await;
        }
        Ok(Err(e)) => refuse_tls(&room, &label, &e.to_string()),
        Err(_) => refuse_tls(&room, &label, "handshake timed out"),
    }
}

/// The line a refused chat client gets (none for the allow/deny lists: a
/// denied client learns nothing).
fn goodbye(reason: Refusal) -> Option<String> {
    match reason {
        Refusal::Denied => None,
        Refusal::Full { max } => {
            let s = if max == 1 { "" } else { "s" };
            Some(format!(
                "*** server full ({max} client{s}), try again later\n"
            ))
        }
        Refusal::PerAddress { max } => Some(format!(
            "*** too many connections from your address ({max}), try again later\n"
        )),
    }
}

/// Write `text`, send FIN, and linger until the client has it (closing
/// over unread input would reset the connection and could destroy the line
/// before the client reads it); all within [`GOODBYE_WAIT`] (the skeleton
/// also ends refusals when the grace period ends).
async fn say_and_close(stream: &mut TcpStream, text: &str) {
    let fd = stream.as_raw_fd();
    let _ = tokio::time::timeout(GOODBYE_WAIT, async {
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await?;
        session::linger(stream, Some(fd), &Drain::new()).await;
        Ok::<_, std::io::Error>(())
    })
    .await;
}

fn refuse_tls(room: &Room, peer: &str, why: &str) {
    room.config.server.stats.refused();
    room.event(&ChatEvent::Refused {
        peer: peer.to_owned(),
        reason: format!("tls: {why}"),
    });
}

/// The event a skeleton refusal becomes.
pub(crate) fn refused_event(peer: SocketAddr, reason: Refusal) -> ChatEvent {
    let reason = match reason {
        Refusal::Denied => "denied".to_owned(),
        Refusal::Full { .. } => "full".to_owned(),
        Refusal::PerAddress { .. } => "per-address limit".to_owned(),
    };
    ChatEvent::Refused {
        peer: peer.to_string(),
        reason,
    }
}
