//! The UDP side: every datagram goes back to its sender.

use tokio::net::UdpSocket;

use crate::Shutdown;
use crate::daemon::ServerStats;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Echo datagrams until shutdown; returns how many were echoed.
pub(super) async fn udp_loop(sock: UdpSocket, shutdown: Shutdown, stats: ServerStats) -> u64 {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut echoed = 0;
    loop {
        let got = tokio::select! {
            () = shutdown.wait() => break,
            r = sock.recv_from(&mut buf) => r,
        };
        match got {
            Ok((n, peer)) => {
                stats.add_in(n as u64);
                match sock.send_to(&buf[..n], peer).await {
                    Ok(m) => {
                        stats.add_out(m as u64);
                        echoed += 1;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "udp echo not sent"),
                }
            }
            // ICMP errors for earlier replies surface here (ECONNREFUSED):
            // they concern one peer, not the server.
            Err(e) => {
                tracing::debug!(error = %e, "udp receive error");
                tokio::task::yield_now().await;
            }
        }
    }
    echoed
}
