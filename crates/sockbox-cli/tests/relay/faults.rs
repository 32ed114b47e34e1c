//! Faults: resets, SIGPIPE, idle and connect timeouts, bad input.

use super::*;

#[test]
fn peer_reset_mid_stream_exits_1_with_a_message() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&vec![b'x'; 100_000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // RST
    });
    // stdin stays open (a pipe we never close) so only the reset ends it.
    let mut c = connect_spawned(&["127.0.0.1", &port(addr)], Stdio::null());
    let _keep = c.child.stdin.take();
    let status = c.must_exit(T);
    server.join().unwrap();
    let err = c.log();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("reset by the peer"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sigpipe_never_kills_it() {
    // 1. The reader of stdout goes away while data is flowing: exit 0, no signal.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let chunk = vec![b'y'; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && s.write_all(&chunk).is_ok() {}
    });
    let mut c = connect_spawned(&["127.0.0.1", &port(addr)], Stdio::piped());
    let _keep = c.child.stdin.take();
    let mut out = c.child.stdout.take().unwrap();
    let mut buf = vec![0u8; 4096];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let status = c.must_exit(T);
    assert_eq!(status.signal(), None, "killed by a signal");
    assert_eq!(status.code(), Some(0));
    server.join().unwrap();

    // 2. The peer closes while we are still sending: exit 1 with a message.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 1000];
        let _ = s.read(&mut b);
        drop(s);
    });
    let mut c = connect_spawned(&["127.0.0.1", &port(addr)], Stdio::null());
    let mut sin = c.child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'z'; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && sin.write_all(&chunk).is_ok() {}
    });
    let status = c.must_exit(T);
    server.join().unwrap();
    feeder.join().unwrap();
    let err = c.log();
    assert_eq!(status.signal(), None, "killed by a signal: {err}");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("reset by the peer"), "{err}");
}

#[test]
fn idle_timeout_ends_with_exit_1() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let mut c = connect_spawned(&["-i", "0.5", "127.0.0.1", &port(addr)], Stdio::null());
    let _keep = c.child.stdin.take();
    let t0 = Instant::now();
    let status = c.must_exit(T);
    assert!(t0.elapsed() < Duration::from_millis(2500));
    let err = c.log();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("(-i)"), "{err}");
    server.join().unwrap();
}

#[test]
fn bad_input_is_a_usage_error() {
    crate::util::sockbox()
        .args(["connect", "no-such-host..invalid", "80"])
        .assert()
        .code(2);
    crate::util::sockbox()
        .args(["listen", "--allow", "not..a-cidr", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not..a-cidr"));
    crate::util::sockbox()
        .args(["connect", "--send-only", "--recv-only", "127.0.0.1", "1"])
        .assert()
        .code(2);
    crate::util::sockbox()
        .args(["connect", "-6", "127.0.0.1", "1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no IPv6 address"));
    // A certificate without its key (--tls alone generates a temporary one).
    crate::util::sockbox()
        .args(["listen", "--tls", "--tls-cert", "/dev/null", "0"])
        .assert()
        .code(2);
    // Regression: -m beyond tokio's semaphore limit panicked at start.
    crate::util::sockbox()
        .args([
            "listen",
            "-k",
            "-m",
            "18446744073709551615",
            "127.0.0.1",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--max-conns"));
    // Regression: port 0 was tried, and refused by the kernel (exit 1).
    crate::util::sockbox()
        .args(["connect", "127.0.0.1", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("'0'"));
    // Nothing listening: exit 1 with the address in the message.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    crate::util::sockbox()
        .args(["connect", "127.0.0.1", &port(addr)])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(addr.to_string()));
}

#[test]
fn connect_timeout_w_gives_up() {
    // A listener that never accepts, with its queue full: new SYNs are dropped.
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
            break; // the queue is full
        }
        fillers.push(s);
    }
    let t0 = Instant::now();
    let (st, _, err) = connect(&["-w", "0.5", "127.0.0.1", &port(addr)], b"");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn listen_reports_a_client_reset_and_exits_1() {
    let mut srv = Server::start(&["127.0.0.1", "0"], Stdio::piped(), Stdio::null());
    let _keep_stdin = srv.child().stdin.take();
    let s = stream(srv.addr);
    (&s).write_all(b"partial").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let st = srv.wait();
    assert_eq!(st.code(), Some(1), "{}", srv.log());
    assert!(srv.log().contains("reset by the peer"), "{}", srv.log());
}
