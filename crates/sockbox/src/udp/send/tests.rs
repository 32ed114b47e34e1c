//! Tests of the sender: replies and their bounds, ICMP errors, bad input,
//! broadcast, and the source address on an interface.

use super::*;

async fn echo_once(sock: UdpSocket, prefix: &'static [u8]) {
    let mut buf = [0u8; 2048];
    if let Ok((n, from)) = sock.recv_from(&mut buf).await {
        let mut out = prefix.to_vec();
        out.extend_from_slice(&buf[..n]);
        let _ = sock.send_to(&out, from).await;
    }
}

#[tokio::test]
async fn replies_come_back_with_source_and_time() {
    let srv = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = srv.local_addr().unwrap();
    tokio::spawn(echo_once(srv, b"re:"));
    let s = Sender::bind(vec![to], &SendConfig::default()).unwrap();
    assert!(!s.broadcast());
    let rep = s.send(b"hi").await.unwrap();
    assert_eq!(rep.sent, 1);
    let mut got = Vec::new();
    let n = s
        .collect(
            Collect {
                wait: Some(Duration::from_secs(5)),
                max: Some(1),
            },
            &Shutdown::new(),
            |r| got.push(r),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(got[0].from, to);
    assert_eq!(got[0].payload, b"re:hi");
    assert!(got[0].elapsed < Duration::from_secs(5));
}

#[tokio::test]
async fn wait_bounds_collection_when_nobody_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap();
    let s = Sender::bind(vec![to], &SendConfig::default()).unwrap();
    s.send(b"anyone?").await.unwrap();
    let t = Instant::now();
    let n = s
        .collect(
            Collect {
                wait: Some(Duration::from_millis(150)),
                max: None,
            },
            &Shutdown::new(),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert!(t.elapsed() >= Duration::from_millis(140));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn shutdown_ends_an_unbounded_wait() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = Sender::bind(vec![silent.local_addr().unwrap()], &SendConfig::default()).unwrap();
    let sd = Shutdown::new();
    let sd2 = sd.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sd2.trigger();
    });
    let n = s
        .collect(
            Collect {
                wait: None,
                max: Some(3),
            },
            &sd,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn port_unreachable_ends_the_wait_at_once() {
    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = closed.local_addr().unwrap();
    drop(closed);
    let cfg = SendConfig {
        report_unreachable: true,
        ..SendConfig::default()
    };
    let s = Sender::bind(vec![to], &cfg).unwrap();
    s.send(b"anyone?").await.unwrap();
    let t = Instant::now();
    let e = s
        .collect(
            Collect {
                wait: Some(Duration::from_secs(10)),
                max: None,
            },
            &Shutdown::new(),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        matches!(e, Error::Unreachable { to: t, .. } if t == to),
        "{e}"
    );
    assert!(e.to_string().contains("port unreachable"), "{e}");
}

#[tokio::test]
async fn oversized_and_mixed_inputs_are_refused() {
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let s = Sender::bind(vec![to], &SendConfig::default()).unwrap();
    let big = vec![0u8; super::super::MAX_PAYLOAD_V4 + 1];
    let e = s.send(&big).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { len: 65_508, .. }), "{e}");
    assert!(e.is_input());
    let e = Sender::bind(vec![to, "[::1]:9".parse().unwrap()], &SendConfig::default()).unwrap_err();
    assert!(matches!(e, Error::MixedFamilies(..)));
    assert!(matches!(
        Sender::bind(vec![], &SendConfig::default()),
        Err(Error::NoTargets)
    ));
}

#[tokio::test]
async fn limited_broadcast_sets_so_broadcast_by_itself() {
    let to: SocketAddr = "255.255.255.255:9".parse().unwrap();
    let s = Sender::bind(
        vec![to],
        &SendConfig {
            bind: Some("127.0.0.1:0".parse().unwrap()),
            ..SendConfig::default()
        },
    )
    .unwrap();
    assert!(s.broadcast());
    let opt = socket2::SockRef::from(&s.socket).broadcast().unwrap();
    assert!(opt);
}

#[test]
fn the_source_on_an_interface_matches_the_destination() {
    use crate::iface::fixture::iface;
    let eth = iface(
        "eth0",
        2,
        true,
        &[
            ("fe80::1/64", None),
            ("10.0.0.5/24", Some("10.0.0.255")),
            ("2001:db8::5/64", None),
        ],
    );
    let src = |d: &str| source_on(&eth, d.parse().unwrap()).map(|a| a.to_string());
    assert_eq!(src("10.0.0.9").as_deref(), Some("10.0.0.5"));
    assert_eq!(src("2001:db8::9").as_deref(), Some("2001:db8::5"));
    assert_eq!(src("fe80::9").as_deref(), Some("fe80::1"));
    assert_eq!(src("ff02::1").as_deref(), Some("fe80::1"));
    let v6_only = iface("eth1", 3, true, &[("fe80::2/64", None)]);
    assert_eq!(source_on(&v6_only, "10.0.0.9".parse().unwrap()), None);
    assert_eq!(
        source_on(&v6_only, "2001:db8::9".parse().unwrap()).map(|a| a.to_string()),
        Some("fe80::2".to_owned())
    );
}
