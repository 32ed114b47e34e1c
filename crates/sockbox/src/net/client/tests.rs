//! Connecting over several addresses, reconnecting.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test]
async fn tries_every_address_until_one_answers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = live.local_addr().unwrap();
    let c = Connector::new().timeout(Duration::from_secs(2));
    let mut s = c.connect_addrs(&[dead, addr], "127.0.0.1").await.unwrap();
    let (mut peer, _) = live.accept().await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    peer.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"x");
    let err = c.connect_addrs(&[dead], "x").await.unwrap_err();
    assert!(err.to_string().contains(&dead.to_string()), "{err}");
    assert!(connect_blocking(&[dead], Some(Duration::from_secs(1))).is_err());
    assert!(connect_blocking(&[addr], None).is_ok());
}

#[tokio::test(start_paused = true)]
async fn reconnect_waits_for_the_server_and_gives_up_when_told() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let fast = Backoff::new(Duration::from_millis(10), Duration::from_millis(20));
    let mut r = Reconnect::new(Connector::new(), "127.0.0.1", port)
        .backoff(fast.clone())
        .max_attempts(3);
    let err = r.connect(&Shutdown::new()).await.unwrap_err();
    assert!(
        matches!(err, ConnectError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    let mut bad = Reconnect::new(Connector::new(), "300.1.1.1", port);
    assert!(matches!(
        bad.connect(&Shutdown::new()).await,
        Err(ConnectError::Addr(AddrError::NotAnAddress { .. }))
    ));
    let stop = Shutdown::new();
    stop.trigger();
    let mut forever = Reconnect::new(Connector::new(), "127.0.0.1", port).backoff(fast);
    assert!(matches!(
        forever.connect(&stop).await,
        Err(ConnectError::Stopped)
    ));
}
