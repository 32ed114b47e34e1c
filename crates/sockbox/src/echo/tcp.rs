//! The TCP side: one fixed buffer per session, an optional idle timeout.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::EchoConfig;
use crate::net::{Connection, Handler};

/// Echoes each connection through its own fixed buffer.
#[derive(Debug)]
pub(super) struct EchoTcp {
    buffer_size: usize,
    idle_timeout: Option<Duration>,
}

impl EchoTcp {
    pub(super) fn new(cfg: &EchoConfig) -> Self {
        Self {
            buffer_size: cfg.buffer_size.clamp(1, 16 << 20),
            idle_timeout: cfg.idle_timeout,
        }
    }

    /// Echo one session until the client leaves, it idles out, or shutdown
    /// begins; returns the bytes echoed.
    async fn session(&self, conn: &mut Connection) -> io::Result<u64> {
        let mut buf = vec![0u8; self.buffer_size];
        let mut total = 0u64;
        loop {
            let read = tokio::select! {
                biased;
                () = conn.drain.soft().wait() => break,
                r = read_with_timeout(&mut conn.stream, &mut buf, self.idle_timeout) => r,
            };
            let n = match read {
                Some(Ok(0)) => break, // the client left
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e),
                None => {
                    tracing::info!(peer = %conn.peer, idle = ?self.idle_timeout, "closing idle tcp session");
                    break;
                }
            };
            conn.stats.add_in(n as u64);
            // Stuck writers (a client that does not read) end at the hard stage.
            tokio::select! {
                r = conn.stream.write_all(&buf[..n]) => r?,
                () = conn.drain.hard().wait() => return Ok(total),
            }
            conn.stats.add_out(n as u64);
            total += n as u64;
        }
        let _ = conn.stream.shutdown().await;
        Ok(total)
    }
}

impl Handler for EchoTcp {
    async fn serve(&self, mut conn: Connection) {
        let peer = conn.peer;
        tracing::info!(%peer, "tcp session opened");
        match self.session(&mut conn).await {
            Ok(n) => tracing::info!(%peer, bytes = n, "tcp session closed"),
            Err(e) => tracing::info!(%peer, error = %e, "tcp session ended with an error"),
        }
    }
}

/// `None` when the idle timeout passed first.
async fn read_with_timeout(
    stream: &mut TcpStream,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Option<io::Result<usize>> {
    match idle {
        Some(t) => tokio::time::timeout(t, stream.read(buf)).await.ok(),
        None => Some(stream.read(buf).await),
    }
}
