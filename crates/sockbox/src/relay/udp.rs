//! The UDP side of the listener: one peer (the socket is connected to the
//! first permitted sender) or, with `keep_open`, peers told apart by source
//! address, each with its own session, up to `max_conns` at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::ends::{RemoteIn, RemoteOut};
use super::server::{Conn, Local, ServeReport, log_report, run_exec, run_hub, run_pump};
use super::{RelayError, Report};
use crate::Shutdown;

pub(super) async fn run_udp(
    conn: Conn,
    sock: std::net::UdpSocket,
    shutdown: Shutdown,
) -> Result<ServeReport, RelayError> {
    let sock = UdpSocket::from_std(sock).map_err(RelayError::Setup)?;
    let cfg = Arc::clone(&conn.cfg);
    let mut buf = vec![0u8; 65_536];
    if !cfg.keep_open {
        let (n, peer) = loop {
            let r = tokio::select! {
                r = sock.recv_from(&mut buf) => r,
                () = shutdown.wait() => return Ok(ServeReport::default()),
            };
            match r {
                Ok((n, peer)) if cfg.acl.permits(peer.ip()) => break (n, peer),
                Ok((_, peer)) => {
                    cfg.stats.refused();
                    tracing::info!(%peer, "dropped datagram: not permitted by --allow/--deny");
                }
                Err(e) => tracing::debug!("recv: {e}"),
            }
        };
        sock.connect(peer).await.map_err(RelayError::Setup)?;
        tracing::info!(%peer, "first datagram");
        let _guard = cfg.stats.connection();
        let first = buf[..n].to_vec();
        let report = match &cfg.local {
            Local::Exec(spec) => {
                let s = Arc::new(sock);
                run_exec(
                    &conn,
                    spec,
                    peer,
                    RemoteIn::Udp(Arc::clone(&s)),
                    RemoteOut::Udp(s),
                    Some(Bytes::from(first)),
                    "udp",
                    &shutdown,
                )
                .await?
            }
            Local::Stdio => {
                let std = sock.into_std().map_err(RelayError::Setup)?;
                run_pump(&conn, OwnedFd::from(std), peer, true, first, &shutdown).await?
            }
        };
        log_report(peer, &report);
        return Ok(ServeReport {
            served: 1,
            single: Some(report),
        });
    }

    let sock = Arc::new(sock);
    let mut peers: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<SocketAddr>();
    let tracker = TaskTracker::new();
    let mut served = 0;
    loop {
        tokio::select! {
            got = sock.recv_from(&mut buf) => {
                let (n, peer) = match got {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!("recv: {e}");
                        continue;
                    }
                };
                let data = Bytes::copy_from_slice(&buf[..n]);
                if let Some(tx) = peers.get(&peer) {
                    if tx.try_send(data).is_err() {
                        tracing::debug!(%peer, "dropped a datagram: the peer's queue is full");
                    }
                    continue;
                }
                if !cfg.acl.permits(peer.ip()) {
                    cfg.stats.refused();
                    tracing::info!(%peer, "dropped datagram: not permitted by --allow/--deny");
                    continue;
                }
                if peers.len() >= cfg.max_conns {
                    cfg.stats.refused();
                    tracing::warn!(%peer, "dropped datagram: {} peers already active (-m/--max-conns)", cfg.max_conns);
                    continue;
                }
                let (tx, rx) = mpsc::channel(256);
                let _ = tx.try_send(data);
                peers.insert(peer, tx);
                served += 1;
                tracing::info!(%peer, "new peer");
                let conn2 = conn.clone();
                let sock2 = Arc::clone(&sock);
                let done = done_tx.clone();
                tracker.spawn(async move {
                    let _guard = conn2.cfg.stats.connection();
                    match serve_udp_peer(&conn2, sock2, peer, rx).await {
                        Ok(report) => log_report(peer, &report),
                        Err(e) => tracing::warn!(%peer, "{e}"),
                    }
                    let _ = done.send(peer);
                });
            }
            Some(p) = done_rx.recv() => {
                peers.remove(&p);
            }
            () = shutdown.wait() => break,
        }
    }
    peers.clear();
    tracker.close();
    if tokio::time::timeout(cfg.grace, tracker.wait())
        .await
        .is_err()
    {
        conn.drain.trigger();
        tracker.wait().await;
    }
    Ok(ServeReport {
        served,
        single: None,
    })
}

async fn serve_udp_peer(
    conn: &Conn,
    sock: Arc<UdpSocket>,
    peer: SocketAddr,
    rx: mpsc::Receiver<Bytes>,
) -> Result<Report, RelayError> {
    let remote_in = RemoteIn::Datagrams(rx);
    let remote_out = RemoteOut::UdpTo(sock, peer);
    match (&conn.cfg.local, &conn.hub) {
        (Local::Exec(spec), _) => {
            let drain = conn.drain.clone();
            run_exec(conn, spec, peer, remote_in, remote_out, None, "udp", &drain).await
        }
        (Local::Stdio, hub) => {
            let Some(hub) = hub else {
                return Err(RelayError::Setup(std::io::Error::other("no stdin hub")));
            };
            run_hub(conn, hub, peer, remote_in, remote_out, &conn.drain).await
        }
    }
}
