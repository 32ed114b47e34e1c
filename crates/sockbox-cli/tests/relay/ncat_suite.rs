//! Scenarios of ncat 7.93's own test suite (`ncat/test/ncat-test.pl`) for
//! the flags sockbox shares with ncat, run through sockbox (issue 16,
//! "reconcile"). Each test names the ncat test it mirrors and what ncat
//! does; where sockbox differs on purpose the README's "Coming from nc /
//! ncat / socat" table says so.

use super::*;

/// A listener on 127.0.0.1 that accepts one client and hands it back.
fn accept_one() -> (SocketAddr, std::thread::JoinHandle<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    });
    (addr, t)
}

/// Read `out` until EOF on a thread; `Some(bytes)` if EOF came within `within`.
fn read_to_eof_within(mut out: impl Read + Send + 'static, within: Duration) -> Option<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx.recv_timeout(within).ok()
}

/// "Client closes stdout and keeps running after socket EOF": ncat closes
/// its standard output when the server closes its side, and keeps sending
/// standard input. sockbox used to keep standard output open until it
/// exited (nc.openbsd still does), so `connect … | tar x` waited for the
/// user's EOF.
#[test]
fn client_closes_stdout_at_the_peers_eof_and_keeps_running() {
    let (addr, server) = accept_one();
    let mut c = connect_spawned(&["127.0.0.1", &port(addr)], Stdio::piped());
    let mut s = server.join().unwrap();
    s.write_all(b"abc\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let out = c.child.stdout.take().unwrap();
    let got = read_to_eof_within(out, T).expect("standard output was not closed");
    assert_eq!(got, b"abc\n");
    // Still running, still sending what it reads.
    assert!(c.child.try_wait().unwrap().is_none(), "{}", c.log());
    let mut stdin = c.child.stdin.take().unwrap();
    stdin.write_all(b"after\n").unwrap();
    drop(stdin);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"after\n");
    assert!(c.must_exit(T).success(), "{}", c.log());
}

/// "--send-only server closes socket write and stops running after stdin
/// EOF", "--recv-only server closes stdout and stops running after socket
/// EOF", "--recv-only client closes stdout and stops running after socket
/// EOF".
#[test]
fn send_only_and_recv_only_end_where_ncat_ends() {
    // listen --send-only: its input, then FIN, then it exits.
    let mut srv = Server::start(
        &["--send-only", "127.0.0.1", "0"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut client = stream(srv.addr);
    client.write_all(b"ignored\n").unwrap();
    let mut stdin = srv.child().stdin.take().unwrap();
    stdin.write_all(b"abc\n").unwrap();
    drop(stdin);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"abc\n");
    assert!(srv.wait().success(), "{}", srv.log());

    // listen --recv-only: the client's data, standard output closed at its
    // EOF, and it exits (its own standard input still open).
    let mut srv = Server::start(
        &["--recv-only", "127.0.0.1", "0"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let _stdin_open = srv.child().stdin.take();
    let out = srv.child().stdout.take().unwrap();
    let mut client = stream(srv.addr);
    client.write_all(b"abc\n").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof_within(out, T).unwrap(), b"abc\n");
    assert!(srv.wait().success(), "{}", srv.log());
    let mut nothing = Vec::new();
    client.read_to_end(&mut nothing).unwrap();
    assert!(nothing.is_empty());

    // connect --recv-only: same on the client side.
    let (addr, server) = accept_one();
    let mut c = connect_spawned(&["--recv-only", "127.0.0.1", &port(addr)], Stdio::piped());
    let _stdin_open = c.child.stdin.take();
    let mut s = server.join().unwrap();
    s.write_all(b"abc\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let out = c.child.stdout.take().unwrap();
    assert_eq!(read_to_eof_within(out, T).unwrap(), b"abc\n");
    assert!(c.must_exit(T).success(), "{}", c.log());
}

/// "--keep-open server keeps connection count properly": with
/// `--max-conns 1`, a client that left frees its slot for the next one.
/// ncat drops a client sharing standard input at its EOF; sockbox did too,
/// but first waited 50 ms for more input to send it, and a client arriving
/// meanwhile was refused.
#[test]
fn keep_open_max_conns_1_frees_the_slot_when_a_client_leaves() {
    let srv = Server::start(
        &["-k", "-m", "1", "127.0.0.1", "0"],
        Stdio::piped(),
        Stdio::piped(),
    );
    for round in 0..3 {
        let first = stream(srv.addr);
        drop(first);
        // The next client is served once the first has been let go; a
        // refused one is closed at once, so retry briefly.
        let served = (0..50).any(|_| {
            let mut s = stream(srv.addr);
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            s.write_all(format!("round {round}\n").as_bytes()).is_ok()
                && matches!(s.read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        });
        assert!(
            served,
            "round {round}: no slot after a client left: {}",
            srv.log()
        );
    }
}

/// "Connect success exit code" 0, "Connect connection refused exit code"
/// 1, "Connect connection interrupted exit code" (a reset right after the
/// accept) 1, "Listen success exit code" 0, "Listen connection interrupted
/// exit code" 1 — the same in sockbox. ("Program error exit code" is 2 in
/// both.)
#[test]
fn exit_codes_match_ncat() {
    let (addr, server) = accept_one();
    let (st, _, err) = connect(&["--send-only", "127.0.0.1", &port(addr)], b"abc\n");
    drop(server.join().unwrap());
    assert_eq!(st.code(), Some(0), "{err}");

    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (st, _, err) = connect(&["--send-only", "127.0.0.1", &port(closed)], b"abc\n");
    assert_eq!(st.code(), Some(1), "{err}");

    let (addr, server) = accept_one();
    let mut c = connect_spawned(&["127.0.0.1", &port(addr)], Stdio::null());
    let s = server.join().unwrap();
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    assert_eq!(c.must_exit(T).code(), Some(1), "{}", c.log());

    let mut srv = Server::start(&["127.0.0.1", "0"], Stdio::null(), Stdio::null());
    let (st, _, err) = connect(&["--send-only", "127.0.0.1", &port(srv.addr)], b"abc\n");
    assert!(st.success(), "{err}");
    assert_eq!(srv.wait().code(), Some(0), "{}", srv.log());

    let mut srv = Server::start(&["127.0.0.1", "0"], Stdio::piped(), Stdio::null());
    let _stdin_open = srv.child().stdin.take();
    let s = stream(srv.addr);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    assert_eq!(srv.wait().code(), Some(1), "{}", srv.log());
}

/// "idle timeout (connect mode)" and "(listen mode)", TCP and UDP: reads
/// and writes both reset the clock; after the timeout the side with -i
/// ends and what is sent later is not received. ncat exits 1 in connect
/// mode and 2 in listen mode ("Idle timeout expired … QUITTING."); sockbox
/// exits 1 in both (2 is its usage-error code).
#[test]
fn idle_timeout_counts_both_directions_and_ends_either_side() {
    // connect -i: traffic each way every 0.4 s keeps it for 1.6 s.
    let (addr, server) = accept_one();
    let mut c = connect_spawned(&["-i", "1s", "127.0.0.1", &port(addr)], Stdio::piped());
    let mut s = server.join().unwrap();
    let mut stdin = c.child.stdin.take().unwrap();
    let mut out = c.child.stdout.take().unwrap();
    for i in 0..2 {
        stdin.write_all(b"ping\n").unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        s.write_all(b"pong\n").unwrap();
        out.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"pong\n", "round {i}");
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "ended while traffic flowed"
    );
    let st = c.must_exit(T);
    assert_eq!(st.code(), Some(1), "{}", c.log());
    assert!(c.log().contains("-i"), "{}", c.log());

    // listen -i, TCP and UDP: the server ends after the silence.
    for udp in [false, true] {
        let mut args = vec!["-i", "1s", "127.0.0.1", "0"];
        if udp {
            args.insert(0, "-u");
        }
        let mut srv = Server::start(&args, Stdio::piped(), Stdio::piped());
        let _stdin_open = srv.child().stdin.take();
        let _keep = if udp {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.send_to(b"hello\n", srv.addr).unwrap();
            None
        } else {
            let mut s = stream(srv.addr);
            s.write_all(b"hello\n").unwrap();
            Some(s)
        };
        let st = srv.wait();
        assert_eq!(st.code(), Some(1), "udp={udp}: {}", srv.log());
    }
}

/// "--allow options accumulate", "--deny options accumulate", "Allow and
/// deny" (denial wins), and --allow with --allowfile adding up: the same in
/// sockbox.
#[test]
fn allow_and_deny_accumulate_and_deny_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.txt");
    std::fs::write(&file, "192.0.2.9\n\n127.0.0.1 192.0.2.10\n").unwrap();
    let f = file.to_str().unwrap();
    for (args, served) in [
        (&["--allow", "192.0.2.4", "--allowfile", f][..], true),
        (&["--allow", "127.0.0.1", "--allow", "192.0.2.4"][..], true),
        (&["--deny", "192.0.2.4", "--deny", "127.0.0.1"][..], false),
        (&["--allow", "127.0.0.1", "--deny", "127.0.0.1"][..], false),
        (&["--allow", "192.0.2.4"][..], false),
    ] {
        let mut a = args.to_vec();
        a.extend(["-k", "-e", "/bin/cat", "127.0.0.1", "0"]);
        let srv = Server::start(&a, Stdio::null(), Stdio::null());
        let got = try_ask(srv.addr, b"abc\n").unwrap_or_default();
        assert_eq!(got == b"abc\n", served, "{args:?}: {}", srv.log());
    }
}
