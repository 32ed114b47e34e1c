//! What `sockbox chat` and `sockbox broker` print: events as log lines or
//! JSON lines, and the operator's standard input as a participant.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use sockbox::chat::ChatEvent;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::cmd::serve::LineQueue;

/// The `--json` line that says `n` events were dropped because the output
/// was not read fast enough.
pub(super) fn dropped_event(n: u64) -> Vec<u8> {
    let v = serde_json::json!({
        "event": "dropped",
        "count": n,
        "message": "events dropped: the output was not read fast enough",
    });
    format!("{v}\n").into_bytes()
}

/// Reports server events: JSON lines (`--json`, through a queue that never
/// blocks the server), or log lines through the daemon harness (standard
/// error or `--log-file`, queued the same way).
#[derive(Clone)]
pub(super) struct Logger {
    /// `--json`: where the lines go.
    pub json: Option<LineQueue>,
    pub quiet: bool,
}

impl Logger {
    fn emit(out: &LineQueue, text: String) {
        out.push(text.into_bytes());
    }

    pub(super) fn note(&self, msg: &str) {
        if let Some(out) = &self.json {
            let v = serde_json::json!({"event": "note", "message": msg});
            Self::emit(out, v.to_string());
        } else {
            tracing::warn!("{msg}");
        }
    }

    pub(super) fn listening(&self, addr: SocketAddr) {
        if let Some(out) = &self.json {
            let v = serde_json::json!({"event": "listening", "addr": addr.to_string()});
            Self::emit(out, v.to_string());
        }
        tracing::info!("listening on {addr}");
    }

    pub(super) fn event(&self, e: &ChatEvent) {
        if let Some(out) = &self.json {
            if let Ok(s) = serde_json::to_string(e) {
                Self::emit(out, s);
            }
            return;
        }
        if self.quiet {
            return;
        }
        match e {
            ChatEvent::Join {
                nick, peer, online, ..
            } => tracing::info!("join {nick} from {peer} ({online} online)"),
            ChatEvent::Leave {
                nick,
                peer,
                reason,
                online,
                ..
            } => tracing::info!("leave {nick} from {peer}: {reason} ({online} online)"),
            ChatEvent::Nick { old, new, .. } => tracing::info!("nick {old} -> {new}"),
            ChatEvent::Refused { peer, reason } => tracing::info!("refused {peer}: {reason}"),
            ChatEvent::NodeUp { node, members } => {
                tracing::info!("node {node} is in the room ({members} users)");
            }
            ChatEvent::NodeGone {
                node,
                members,
                reason,
            } => tracing::warn!("node {node} {reason}; its {members} users left the room"),
            ChatEvent::Split { reason } => {
                tracing::warn!("the room is split: {reason}; local chat goes on");
            }
            ChatEvent::Whole { nodes } => {
                tracing::info!("the room is whole again ({nodes} nodes)");
            }
            ChatEvent::Lost { node, lines } => {
                tracing::warn!("{lines} lines from node {node} did not arrive");
            }
            ChatEvent::AcceptError { error, backoff_ms } => {
                tracing::warn!("accept failed ({error}); pausing {backoff_ms} ms");
            }
        }
    }
}

/// The operator's stdin, read by a plain thread (so a pending read never
/// holds up shutdown) and handed over through a bounded channel.
pub(super) fn stdin_reader() -> ChannelReader {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    ChannelReader {
        rx,
        pending: Vec::new(),
        pos: 0,
    }
}

/// `AsyncRead` over a channel of byte chunks; EOF when the sender is gone.
pub(super) struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos >= self.pending.len() {
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(chunk)) => {
                    self.pending = chunk;
                    self.pos = 0;
                }
            }
        }
        let n = buf.remaining().min(self.pending.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.pending[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}
