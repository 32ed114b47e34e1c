//! SIGTERM under load: every client gets the shutdown notice after what
//! was queued for it, then a clean end of stream, within --grace.

use super::*;

/// Regression: SIGTERM while 100 senders sent 100 lines/s each and readers
/// were backlogged: no client got the notice, every one got a connection
/// reset, and the server exited in under 1 ms despite `--grace 10s`. Now
/// reading stops, the notice goes after what is queued, the queues are
/// flushed within the grace period, and each connection ends with a FIN
/// after its unread input was drained. (40 clients instead of 100, with
/// longer lines, to keep the test light; the queues still fill past what
/// the sockets hold.)
#[test]
fn sigterm_with_busy_senders_and_backlogged_readers_gives_everyone_the_notice_and_eof() {
    const CLIENTS: usize = 40;
    let mut srv = Server::start("chat", &["--grace", "10s", "--quiet"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = srv.addr;
    let (go_read, _) = tokio::sync::broadcast::channel::<()>(1);
    let clients = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            // A modest receive buffer: more of the backlog stays in the
            // server (a tiny one makes loopback TCP stall on window probes).
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.set_recv_buffer_size(64 * 1024).unwrap();
            let s = sock.connect(addr).await.unwrap();
            let mut go = go_read.subscribe();
            clients.push(tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut r, mut w) = s.into_split();
                let (stop, mut stop_sending) = tokio::sync::oneshot::channel::<()>();
                let sender = tokio::spawn(async move {
                    let pad = "p".repeat(150);
                    let mut tick = tokio::time::interval(Duration::from_millis(10));
                    for n in 0u64.. {
                        tokio::select! {
                            _ = &mut stop_sending => break,
                            _ = tick.tick() => {}
                        }
                        let line = format!("{i} {n} {pad}\n");
                        if w.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    w
                });
                // Backlogged: read nothing until told.
                let _ = go.recv().await;
                let mut all = Vec::new();
                let read = tokio::time::timeout(T, r.read_to_end(&mut all)).await;
                let _ = stop.send(());
                let _w = sender.await;
                (read.map(|r| r.map_err(|e| e.to_string())), all)
            }));
        }
        clients
    });
    std::thread::sleep(Duration::from_secs(2));
    let pid = nix::unistd::Pid::from_raw(srv.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server exited with the readers' queues unsent"
    );
    go_read.send(()).unwrap();
    let results = rt.block_on(async {
        let mut v = Vec::new();
        for c in clients {
            v.push(c.await.unwrap());
        }
        v
    });
    for (i, (read, all)) in results.into_iter().enumerate() {
        let read = read.unwrap_or_else(|_| panic!("client {i}: no end of stream"));
        assert!(read.is_ok(), "client {i}: {read:?} instead of a clean EOF");
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.ends_with("\n*** server is shutting down\n"),
            "client {i}: {:?}",
            &text[text.len().saturating_sub(200)..]
        );
    }
    assert_eq!(srv.sigterm(), 0);
}
