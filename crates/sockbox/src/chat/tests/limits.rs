//! Limits: a full room, the per-address cap, deny lists, idle, line and
//! rate limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn capped(max_conns: usize, max_per_addr: Option<usize>) -> ServerOptions {
    ServerOptions {
        max_conns,
        max_per_addr,
        ..ChatConfig::default().server
    }
}

#[tokio::test]
async fn full_room_denied_peer_and_idle_timeout() {
    let srv = Server::start(ChatConfig {
        idle_timeout: Some(Duration::from_millis(400)),
        server: capped(2, None),
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
        server: ServerOptions {
            acl: deny.clone(),
            ..ChatConfig::default().server
        },
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

/// Regression: one address could take every slot (500 trickling
/// connections from one host until all 10 000 were gone). Now each address
/// has a cap (on by default); the next client from it is told why, and
/// other addresses are still served.
#[tokio::test]
async fn clients_beyond_the_per_address_cap_are_told_and_others_still_served() {
    assert_eq!(
        ChatConfig::default().server.max_per_addr,
        Some(DEFAULT_MAX_PER_ADDR)
    );
    let srv = Server::start(ChatConfig {
        server: capped(100, Some(2)),
        ..ChatConfig::default()
    })
    .await;
    let (_a, _) = Client::join(srv.addr).await;
    let (_b, _) = Client::join(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    assert_eq!(
        c.line().await,
        "*** too many connections from your address (2), try again later"
    );
    assert_eq!(c.rest().await, "");
    let mut other = Client::connect_from(srv.addr, "127.0.0.2", None).await;
    assert!(other.line().await.starts_with("*** welcome"));
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter().any(
            |e| matches!(e, ChatEvent::Refused { reason, .. } if reason == "per-address limit")
        ),
        "{ev:?}"
    );
    let report = srv.stop().await;
    assert_eq!((report.accepted, report.refused), (3, 1));
}

/// Regression: a client that starts a line and never ends it (a slowloris
/// trickle) held its slot forever; now a started line must end within the
/// line timeout. A client that sends nothing at all (a listener) stays.
#[tokio::test]
async fn a_started_line_must_end_within_the_line_timeout() {
    let srv = Server::start(ChatConfig {
        line_timeout: Some(Duration::from_millis(400)),
        ..ChatConfig::default()
    })
    .await;
    let (mut quiet, _) = Client::join(srv.addr).await;
    let (mut slow, ns) = Client::join(srv.addr).await;
    quiet.line().await;
    // Complete lines reset the clock.
    for i in 0..4 {
        slow.send(&format!("line {i}\n")).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    slow.send("never finis").await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        slow.send("h").await;
    }
    assert_eq!(
        slow.until(|l| l.starts_with("*** line")).await,
        "*** line not finished within 400ms, disconnecting"
    );
    assert_eq!(slow.rest().await, "");
    assert_eq!(
        quiet
            .until(|l| l.starts_with(&format!("*** {ns} left")))
            .await,
        format!("*** {ns} left (line not finished within 400ms)")
    );
    // The silent one is still served.
    let (mut c, nc) = Client::join(srv.addr).await;
    c.send("hello\n").await;
    assert_eq!(
        quiet.until(|l| l.starts_with('<')).await,
        format!("<{nc}> hello")
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
