//! Shutdown: the notice after what is queued, a flush within the grace
//! period, and a clean close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn shutdown_tells_clients_and_closes() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));
    srv.stop().await;
    assert_eq!(a.rest().await, format!("{SHUTDOWN_NOTICE}\n"));
    assert_eq!(b.rest().await, format!("{SHUTDOWN_NOTICE}\n"));
}

/// Regression: on shutdown while everyone was sending and readers were
/// backlogged, no client got the notice, every one got a reset, and the
/// server returned at once despite the grace period: the notice did not
/// fit a full queue (the client was kicked instead) and the sockets were
/// closed over unread input. Now readers stop, the notice goes after what
/// is queued, the queues are flushed within the grace period, and each
/// connection ends with a FIN after its input was drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_backlogged_readers_delivers_the_notice_then_a_clean_eof() {
    const CLIENTS: usize = 12;
    let mut config = ChatConfig {
        // Queues fill quickly; nobody is cut for lagging meanwhile.
        queue_limit: 16 * 1024,
        queue_ceiling: 1 << 20,
        max_lag: Duration::from_secs(600),
        ..ChatConfig::default()
    };
    config.server.grace = Duration::from_secs(20);
    let srv = Server::start(config).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = Client::connect_from(srv.addr, "127.0.0.1", Some(4096)).await;
        let nick = c.line().await;
        clients.push((c, nick));
    }
    // Everyone sends about 100 lines/s and reads nothing for now; each
    // sends on until it has read to the end.
    let mut tasks = Vec::new();
    let started = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    for (i, (c, _)) in clients.into_iter().enumerate() {
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            let Client { mut r, mut w } = c;
            let stop_sending = Shutdown::new();
            let stop = stop_sending.clone();
            let sender = tokio::spawn(async move {
                let pad = "s".repeat(200);
                for n in 0.. {
                    let line = format!("{i} {n} {pad}\n");
                    tokio::select! {
                        () = stop.wait() => break,
                        r = w.write_all(line.as_bytes()) => if r.is_err() { break },
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                w
            });
            started.wait().await;
            // Backlogged until told to read.
            started.wait().await;
            let mut all = Vec::new();
            let read = tokio::time::timeout(T * 2, r.read_to_end(&mut all)).await;
            stop_sending.trigger();
            (read.map(|r| r.map_err(|e| e.kind())), all, sender)
        }));
    }
    started.wait().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    srv.shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let task = srv.task.as_ref().unwrap();
    assert!(
        !task.is_finished(),
        "the server returned with queues still full"
    );
    started.wait().await;
    for t in tasks {
        let (read, all, sender) = t.await.unwrap();
        let _w = sender.await.unwrap();
        let n = read.expect("no EOF within the time allowed");
        assert!(n.is_ok(), "read ended with {n:?}, not a clean EOF");
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.ends_with(&format!("\n{SHUTDOWN_NOTICE}\n")),
            "{:?}",
            &text[text.len().saturating_sub(300)..]
        );
        // Everything before it is whole lines.
        for l in text.lines() {
            assert!(
                l.starts_with('<') || l.starts_with("***"),
                "broken line {l:?}"
            );
        }
    }
    let report = srv.stop().await;
    assert_eq!(report.cut_at_grace, 0);
}
