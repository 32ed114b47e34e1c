//! One client, from join to close: a reader that frames input and fans it
//! out (this task), a writer that drains the client's bounded queue to its
//! socket (its own task), and a clean end: the queue flushed, FIN sent,
//! unread input drained so that closing does not reset the connection.

mod reader;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use std::os::fd::RawFd;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::command::validate_nick;
use super::hub::{AnnounceKind, JoinError, Member, Remote};
use super::outbox::Close;
use super::room::Room;
use super::{ChatEvent, SHUTDOWN_NOTICE};
use crate::net::Drain;

pub(crate) use reader::{AnyRead, ChunkRead};
use writer::WriteEnd;

/// After FIN, how long a client may take none of what the socket still
/// holds for it before the server closes anyway (see [`linger`]; on
/// shutdown the grace period is the limit instead).
const STALL: Duration = Duration::from_secs(5);

/// How often a lingering connection checks what the client has taken.
const LINGER_POLL: Duration = Duration::from_millis(50);

/// How long a client that came in as shutdown began gets for its notice.
const BYE_WAIT: Duration = Duration::from_secs(2);

/// Who a session serves and how it stops.
pub(crate) struct Peer {
    /// Its address, or `stdin`.
    pub label: String,
    /// Its shutdown stages.
    pub drain: Drain,
    /// A network client: its unread input is drained before closing, and a
    /// line it starts must end within the line timeout. Not the operator's
    /// own terminal.
    pub network: bool,
}

impl Peer {
    /// A network client.
    pub fn network(label: String, drain: Drain) -> Self {
        Self {
            label,
            drain,
            network: true,
        }
    }

    /// The operator's own stream.
    pub fn participant(drain: Drain) -> Self {
        Self {
            label: "stdin".to_owned(),
            drain,
            network: false,
        }
    }
}

/// Serve one client until it leaves, is kicked, or the server stops.
pub(crate) async fn serve<R, W>(
    room: &Arc<Room>,
    mut reader: R,
    mut writer: W,
    peer: Peer,
    nick: Option<String>,
) where
    R: ChunkRead,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let chat = room.is_chat();
    let id = room.next_id();
    let member = Arc::new(Member::new(
        id,
        peer.label.clone(),
        room.limits(),
        &peer.drain,
    ));
    let split = room.hub.remote().is_some_and(|r| r.is_split());
    let welcome = |nick: &str, online: usize| {
        let s = if online == 1 { "" } else { "s" };
        let here = if split {
            " on this node (the room is split: the other nodes are out of reach)"
        } else {
            ""
        };
        chat.then(|| {
            format!(
                "*** welcome, you are {nick}; {online} user{s} online{here}; /help lists commands"
            )
        })
    };
    let claimed = match room.hub.remote().cloned().filter(|_| chat) {
        Some(remote) => Some((claim_join(&*remote, id, nick.as_deref()).await, remote)),
        None => None,
    };
    let wanted = claimed
        .as_ref()
        .map_or(nick.as_deref(), |(n, _)| Some(n.as_str()));
    let joined = room.hub.join(member.clone(), wanted, welcome);
    if let Some((claim, remote)) = &claimed
        && joined.as_ref().map_or(true, |(n, _)| n != claim)
    {
        remote.unclaim(id, claim);
    }
    let (nick, online) = match joined {
        Ok(joined) => joined,
        Err(JoinError::Closing) => {
            // Shutdown began while this client was being set up.
            if chat {
                let bye = format!("{SHUTDOWN_NOTICE}\n");
                let _ = tokio::time::timeout(BYE_WAIT, writer.write_all(bye.as_bytes())).await;
            }
            let _ = tokio::time::timeout(BYE_WAIT, writer.shutdown()).await;
            return;
        }
    };
    let write_task = tokio::spawn(writer::write_loop(
        member.clone(),
        writer,
        room.config.server.stats.clone(),
        chat,
    ));
    room.event(&ChatEvent::Join {
        id,
        nick: nick.clone(),
        peer: peer.label.clone(),
        online,
    });
    let mut session = reader::Session::new(room.clone(), member.clone(), nick, peer.network);
    let (reason, eof) = if chat {
        session.announce(
            AnnounceKind::Join,
            &format!("*** {} joined ({online} online)", session.nick()),
        );
        session.chat(&mut reader).await
    } else {
        session.broker(&mut reader).await
    };
    let nick = session.into_nick();
    let online = room.hub.leave(id, &nick).unwrap_or(0);
    if chat && !room.hub.is_closing() {
        room.hub.announce(
            AnnounceKind::Leave,
            Some(id),
            &format!("*** {nick} left ({reason})"),
        );
    }
    room.event(&ChatEvent::Leave {
        id,
        nick,
        peer: peer.label.clone(),
        reason,
        online,
    });
    member.outbox.close(Close::Flush);
    // Boxed: its buffers are needed only at the end, not for the whole
    // life of every idle connection.
    Box::pin(finish(reader, write_task, &peer, eof)).await;
}

/// The name a new member of a cluster's room gets: the one it asked for
/// when it is valid and free room-wide, else `userN`.
async fn claim_join(remote: &dyn Remote, id: u64, wanted: Option<&str>) -> String {
    if let Some(n) = wanted.filter(|n| validate_nick(n.as_bytes()).is_ok())
        && remote.claim(id, n).await.is_ok()
    {
        return n.to_owned();
    }
    remote.default_nick(id).await
}

/// Wait for the writer (flush, FIN) while discarding what the client still
/// sends, then [`linger`] until the client has everything.
async fn finish<R: ChunkRead>(
    mut reader: R,
    mut write_task: JoinHandle<WriteEnd>,
    peer: &Peer,
    eof: bool,
) {
    let mut open = peer.network && !eof;
    let end = loop {
        tokio::select! {
            r = &mut write_task => break r.unwrap_or(WriteEnd::Failed),
            more = reader::discard_some(&mut reader), if open => open = more,
        }
    };
    if open && end.sent_fin() {
        let fd = reader.tcp_fd();
        linger(&mut reader, fd, &peer.drain).await;
    }
}

/// After FIN: keep reading (and dropping) what the client sends until it
/// closes its side, or its kernel has acknowledged everything we sent, FIN
/// included, or the grace period ends; outside a shutdown also when it
/// takes none of our data for [`STALL`]. Closing earlier, over input still
/// arriving, would reset the connection and destroy what the client has
/// not received yet.
pub(crate) async fn linger<R: AsyncRead + Unpin>(r: &mut R, fd: Option<RawFd>, drain: &Drain) {
    let mut last = (usize::MAX, Instant::now());
    // One clock for the whole wait: a client that keeps sending must not
    // restart it.
    let mut poll = tokio::time::interval(LINGER_POLL);
    loop {
        tokio::select! {
            more = reader::discard_some(r) => if !more { return },
            _ = poll.tick() => {
                let unacked = fd.and_then(|fd| crate::sys::tcp::unacked(fd).ok());
                match unacked {
                    Some(0) => return,
                    Some(n) if n < last.0 => last = (n, Instant::now()),
                    _ if !drain.soft().is_triggered() && last.1.elapsed() >= STALL => return,
                    _ => {}
                }
            }
            () = drain.hard().wait() => return,
        }
    }
}
