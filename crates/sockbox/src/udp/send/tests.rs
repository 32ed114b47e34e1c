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

/// An ICMP "fragmentation needed" (path MTU 65535: loopback's is 65536, so
/// the cached path MTU barely changes) about the datagram
/// `from` → `to` sent to ourselves on loopback with a raw socket, as a
/// router on a path with a smaller MTU sends it. False without
/// CAP_NET_RAW.
fn inject_frag_needed(from: std::net::SocketAddrV4, to: std::net::SocketAddrV4) -> bool {
    use sockbox_wire::checksum::checksum;
    let Ok(raw) = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) else {
        return false;
    };
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&30u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&from.ip().octets());
    ip[16..20].copy_from_slice(&to.ip().octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&65_535u16.to_be_bytes());
    icmp.extend_from_slice(&ip);
    icmp.extend_from_slice(&from.port().to_be_bytes());
    icmp.extend_from_slice(&to.port().to_be_bytes());
    icmp.extend_from_slice(&[0, 10, 0, 0]);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let dst: SocketAddr = SocketAddr::new(IpAddr::V4(*from.ip()), 0);
    raw.send_to(&icmp, &dst.into()).is_ok()
}

/// Regression: with IP_RECVERR on (for port unreachable), a
/// fragmentation-needed message (EMSGSIZE, only path MTU news) failed the
/// wait as "cannot receive" (exit 3), where it used to go unnoticed.
#[tokio::test]
async fn fragmentation_needed_does_not_end_the_wait() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap();
    let cfg = SendConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        report_unreachable: true,
        ..SendConfig::default()
    };
    let s = Sender::bind(vec![to], &cfg).unwrap();
    s.send(b"big?").await.unwrap();
    let (SocketAddr::V4(from), SocketAddr::V4(to4)) = (s.local_addr(), to) else {
        unreachable!("IPv4 on both ends");
    };
    if !inject_frag_needed(from, to4) {
        // CI runs as root: there a missing privilege is a failure.
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "CI=true but no raw ICMP socket (needs CAP_NET_RAW)");
        eprintln!("skipped: no raw ICMP socket (needs CAP_NET_RAW)");
        return;
    }
    let replier = tokio::spawn(async move {
        // The answer comes after the ICMP error is queued.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut buf = [0u8; 64];
        let (n, peer) = silent.recv_from(&mut buf).await.unwrap();
        silent.send_to(&buf[..n], peer).await.unwrap();
    });
    let mut got = Vec::new();
    let n = s
        .collect(
            Collect {
                wait: Some(Duration::from_secs(10)),
                max: Some(1),
            },
            &Shutdown::new(),
            |r| got.push(r.payload),
        )
        .await
        .unwrap();
    assert_eq!((n, got), (1, vec![b"big?".to_vec()]));
    replier.await.unwrap();
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
