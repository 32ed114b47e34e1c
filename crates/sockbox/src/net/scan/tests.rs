//! Port lists and scans on loopback.

use super::*;

#[test]
fn port_lists() {
    assert_eq!(parse_ports("22").unwrap(), vec![22]);
    assert_eq!(parse_ports("20-23").unwrap(), vec![20, 21, 22, 23]);
    assert_eq!(
        parse_ports("80, 22,20-21,22").unwrap(),
        vec![80, 22, 20, 21]
    );
    assert_eq!(parse_ports("1-65535").unwrap().len(), 65_535);
    assert_eq!(parse_ports("7-7").unwrap(), vec![7]);
    for (bad, want) in [
        ("", "empty port"),
        ("22,", "empty port"),
        ("0", "\"0\" is not a port"),
        ("65536", "\"65536\" is not a port"),
        ("ssh", "\"ssh\" is not a port"),
        ("1-", "empty port"),
        ("-5", "empty port"),
        ("1-2-3", "\"2-3\" is not a port"),
    ] {
        let e = parse_ports(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad:?}: {e}");
    }
    let e = parse_ports("30-20").unwrap_err();
    assert_eq!(
        e,
        PortsError::Backwards {
            part: "30-20".into(),
            first: 30,
            last: 20
        }
    );
    assert!(e.to_string().contains("write 20-30"), "{e}");
}

#[tokio::test]
async fn finds_exactly_the_open_ports_in_order() {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut open: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    // Closed ports: bound and released.
    let closed: Vec<u16> = (0..20)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        })
        .filter(|p| !open.contains(p))
        .collect();
    let mut ports: Vec<u16> = closed.iter().chain(&open).copied().collect();
    ports.sort_unstable();
    ports.reverse();
    let mut seen = Vec::new();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let n = Scanner::new()
        .concurrency(4)
        .run(&[ip], &ports, |p| seen.push(p))
        .await;
    assert_eq!(n, 3);
    assert_eq!(
        seen.iter().map(|p| p.port).collect::<Vec<_>>(),
        ports,
        "reported in the order given"
    );
    let mut found: Vec<u16> = seen
        .iter()
        .filter(|p| p.state.is_open())
        .map(|p| p.port)
        .collect();
    found.sort_unstable();
    open.sort_unstable();
    assert_eq!(found, open);
    assert!(
        seen.iter()
            .filter(|p| !p.state.is_open())
            .all(|p| matches!(p.state, PortState::Closed)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn every_address_is_tried_and_udp_refusals_are_closed() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // ::1 refuses (nothing there), 127.0.0.1 answers.
    let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
    let mut got = Vec::new();
    Scanner::new()
        .run(&ips, &[port], |p| got.push(p.state))
        .await;
    assert!(
        matches!(got[..], [PortState::Open(a)] if a.is_ipv4()),
        "{got:?}"
    );

    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let open = u.local_addr().unwrap().port();
    let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = gone.local_addr().unwrap().port();
    drop(gone);
    let mut got = Vec::new();
    let n = Scanner::new()
        .proto(ScanProto::Udp)
        .timeout(Duration::from_millis(300))
        .run(&ips[1..], &[open, closed], |p| got.push(p))
        .await;
    assert_eq!(n, 1, "{got:?}");
    assert!(got[0].state.is_open() && matches!(got[1].state, PortState::Closed));
}

#[tokio::test]
async fn a_port_that_does_not_answer_times_out() {
    // A listener that never accepts, its queue full: SYNs are dropped, the
    // connect stays in progress (the path that waits).
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if s.connect_timeout(&addr.into(), Duration::from_millis(200))
            .is_err()
        {
            break;
        }
        fillers.push(s);
    }
    let mut got = Vec::new();
    let n = Scanner::new()
        .timeout(Duration::from_millis(300))
        .run(&[addr.ip()], &[addr.port()], |p| got.push(p.state))
        .await;
    assert_eq!(n, 0);
    assert!(matches!(got[..], [PortState::TimedOut]), "{got:?}");
}
