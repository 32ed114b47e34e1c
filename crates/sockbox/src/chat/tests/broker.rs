//! The broker: raw fan-out, and nothing added to the byte stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn broker_fans_out_raw_bytes() {
    let srv = Server::start(ChatConfig {
        mode: Mode::Broker,
        ..ChatConfig::default()
    })
    .await;
    let mut a = Client::connect(srv.addr).await;
    let mut b = Client::connect(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    srv.joins(3).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    a.w.write_all(&data).await.unwrap();
    for r in [&mut b, &mut c] {
        let mut got = vec![0u8; data.len()];
        tokio::time::timeout(T, r.r.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(got == data, "broker changed the bytes");
    }
    b.w.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    a.r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"x");
    srv.stop().await;
    // The broker adds nothing to the stream on shutdown: it just closes.
    assert_eq!(c.rest().await, "x");
}

/// Regression: a client refused by a full broker, or timed out as idle, got
/// the chat's text notices ("*** server full …", "*** idle for …") as if
/// they were data from another client.
#[tokio::test]
async fn broker_refuses_and_times_out_without_adding_bytes() {
    let srv = Server::start(ChatConfig {
        mode: Mode::Broker,
        idle_timeout: Some(Duration::from_millis(300)),
        server: ServerOptions {
            max_conns: 1,
            ..ChatConfig::default().server
        },
        ..ChatConfig::default()
    })
    .await;
    let mut a = Client::connect(srv.addr).await;
    srv.joins(1).await;
    let mut b = Client::connect(srv.addr).await;
    assert_eq!(b.rest().await, "");
    // a stays silent and is timed out: the connection just closes.
    assert_eq!(a.rest().await, "");
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Refused { reason, .. } if reason == "full")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Leave { reason, .. } if reason.starts_with("idle"))),
        "{ev:?}"
    );
    srv.stop().await;
}
