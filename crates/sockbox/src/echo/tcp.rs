//! The TCP side: accept with a cap and back-off, one fixed buffer per
//! session, an optional idle timeout.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::EchoConfig;
use crate::Shutdown;
use crate::daemon::ServerStats;

/// Accept until shutdown; returns how many sessions were started.
pub(super) async fn accept_loop(
    listener: TcpListener,
    cfg: &Arc<EchoConfig>,
    shutdown: &Shutdown,
    stats: &ServerStats,
    sessions: &mut JoinSet<()>,
) -> u64 {
    let slots = Arc::new(Semaphore::new(
        cfg.max_conns.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut backoff = Duration::from_millis(10);
    let mut served = 0;
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                // IPv4 clients of the dual-stack socket log as 1.2.3.4.
                (stream, crate::net::canonical(peer))
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: wait for sessions to end instead
                // of spinning on an accept that keeps failing.
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.refused();
            tracing::info!(%peer, max = cfg.max_conns, "refused: too many connections");
            drop(stream);
            continue;
        };
        served += 1;
        let guard = stats.connection();
        let (cfg, stats, stop) = (cfg.clone(), stats.clone(), shutdown.clone());
        sessions.spawn(async move {
            let _permit = permit;
            let _guard = guard;
            tracing::info!(%peer, "tcp session opened");
            match session(stream, &cfg, &stats, &stop).await {
                Ok(n) => tracing::info!(%peer, bytes = n, "tcp session closed"),
                Err(e) => tracing::info!(%peer, error = %e, "tcp session ended with an error"),
            }
        });
    }
    served
}

/// Echo one TCP session; returns the bytes echoed.
async fn session(
    mut stream: TcpStream,
    cfg: &EchoConfig,
    stats: &ServerStats,
    shutdown: &Shutdown,
) -> io::Result<u64> {
    let _ = SockRef::from(&stream).set_tcp_nodelay(true);
    let mut buf = vec![0u8; cfg.buffer_size.clamp(1, 16 << 20)];
    let mut total = 0u64;
    loop {
        let read = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = read_with_timeout(&mut stream, &mut buf, cfg.idle_timeout) => r,
        };
        let n = match read {
            Some(Ok(0)) => break, // the client left
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => {
                tracing::info!(idle = ?cfg.idle_timeout, "closing idle tcp session");
                break;
            }
        };
        stats.add_in(n as u64);
        stream.write_all(&buf[..n]).await?;
        stats.add_out(n as u64);
        total += n as u64;
    }
    let _ = stream.shutdown().await;
    Ok(total)
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
