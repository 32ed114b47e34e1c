//! Limits: slow readers, a full room, deny lists, idle and rate limits,
//! and the shutdown notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_kicked_while_others_keep_receiving() {
    let srv = Server::start(ChatConfig {
        queue_limit: 64 * 1024,
        ..ChatConfig::default()
    })
    .await;
    let (mut fast, _) = Client::join(srv.addr).await;
    // The slow client never reads after its welcome.
    let (slow, slow_nick) = Client::join(srv.addr).await;
    let (mut sender, ns) = Client::join(srv.addr).await;
    fast.until(|l| l.contains(&format!("{ns} joined"))).await;
    let line = "z".repeat(1000);
    let lines = 20_000; // ~20 MB: far beyond socket buffers plus the queue.
    let writer = tokio::spawn(async move {
        for i in 0..lines {
            sender.send(&format!("{i} {line}\n")).await;
        }
        sender
    });
    let mut seen = 0;
    let mut kicked = false;
    while seen < lines {
        let l = fast.line().await;
        if l.starts_with(&format!("<{ns}> ")) {
            assert!(l.starts_with(&format!("<{ns}> {seen} ")), "{l}");
            seen += 1;
        } else if l.starts_with(&format!("*** {slow_nick} left (too slow")) {
            kicked = true;
        }
    }
    assert!(kicked, "slow client was not kicked");
    let _sender = writer.await.unwrap();
    let ev = srv.events.lock().unwrap().clone();
    assert!(ev.iter().any(
        |e| matches!(e, ChatEvent::Leave { nick, reason, .. } if *nick == slow_nick && reason.starts_with("too slow"))
    ));
    drop(slow);
    srv.stop().await;
}

#[tokio::test]
async fn full_room_denied_peer_and_idle_timeout() {
    let srv = Server::start(ChatConfig {
        max_clients: 2,
        idle_timeout: Some(Duration::from_millis(400)),
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (_b, nb) = Client::join(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    assert_eq!(
        c.line().await,
        "*** server full (2 clients), try again later"
    );
    // a keeps talking for a while, b stays silent and is timed out.
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));
    for _ in 0..8 {
        a.send("still here\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.line().await, format!("*** {nb} left (idle for 400ms)"));
    // Then a falls silent too.
    assert_eq!(a.line().await, "*** idle for 400ms, disconnecting");
    assert_eq!(a.rest().await, "");
    srv.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let denyfile = dir.path().join("deny");
    std::fs::write(&denyfile, "127.0.0.0/8\n").unwrap();
    let deny = SharedAcl::new(Acl::new(&[], &[], &[], std::slice::from_ref(&denyfile)).unwrap());
    let srv = Server::start(ChatConfig {
        access: deny.clone(),
        ..ChatConfig::default()
    })
    .await;
    let mut d = Client::connect(srv.addr).await;
    assert_eq!(d.rest().await, "");
    // Swap the list at run time (what SIGHUP does).
    std::fs::write(&denyfile, "# nobody\n").unwrap();
    deny.reload().unwrap();
    let (_e, _) = Client::join(srv.addr).await;
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Refused { reason, .. } if reason == "denied"))
    );
    srv.stop().await;
}

#[tokio::test]
async fn rate_limit_slows_without_dropping() {
    let srv = Server::start(ChatConfig {
        rate: Some(Rate {
            per_sec: 40.0,
            burst: 5.0,
        }),
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    a.line().await;
    let start = std::time::Instant::now();
    let burst: String = (0..25).map(|i| format!("m{i}\n")).collect();
    b.send(&burst).await;
    for i in 0..25 {
        assert_eq!(a.line().await, format!("<{nb}> m{i}"));
    }
    let took = start.elapsed();
    // 20 lines over the burst at 40/s: about half a second.
    assert!(took >= Duration::from_millis(400), "{took:?}");
    srv.stop().await;
}

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
