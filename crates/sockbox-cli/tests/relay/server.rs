//! `sockbox listen` as a server: many clients, limits, allow/deny, programs
//! per connection, dumps, TLS.

use super::*;

#[test]
fn keep_open_serves_200_concurrent_clients() {
    let srv = Server::start(
        &["-k", "-m", "300", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let addr = srv.addr;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut s = stream(addr);
                let msg = format!("client {i}\n");
                s.write_all(msg.as_bytes()).unwrap();
                let mut buf = vec![0u8; msg.len()];
                s.read_exact(&mut buf).unwrap();
                b.wait(); // all 200 are connected and echoing at once
                s.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).unwrap();
                buf == msg.as_bytes() && rest.is_empty()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap(), "{}", srv.log());
    }
}

#[test]
fn keep_open_shares_stdout_between_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let srv = Server::start(&["-k", "127.0.0.1", "0"], Stdio::null(), Stdio::from(file));
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || ask(addr, format!("line {i}\n").as_bytes()))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().is_empty());
    }
    assert!(wait_until(5.0, || {
        std::fs::read_to_string(&path).unwrap().lines().count() == 50
    }));
    let text = std::fs::read_to_string(&path).unwrap();
    for i in 0..50 {
        assert!(
            text.lines().any(|l| l == format!("line {i}")),
            "line {i} missing"
        );
    }
}

#[test]
fn max_conns_refuses_extra_clients_cleanly() {
    let srv = Server::start(
        &["-k", "-m", "2", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = stream(srv.addr);
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap(); // served
            s
        })
        .collect();
    // The third is accepted and closed at once: EOF (or reset), never a hang.
    let mut third = stream(srv.addr);
    let t0 = Instant::now();
    let mut b = [0u8; 1];
    let r = third.read(&mut b);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "third client was served: {r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        wait_until(5.0, || srv.log().contains("refused")),
        "{}",
        srv.log()
    );
    // Free a slot: a new client is served again.
    drop(held.pop());
    assert!(wait_until(10.0, || try_ask(srv.addr, b"again").as_deref()
        == Some(b"again".as_slice())));
}

pub(super) fn from(ip: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{ip}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

pub(super) fn echo_from(ip: &str, to: SocketAddr) -> Vec<u8> {
    let mut s = from(ip, to);
    let _ = s.write_all(b"hi");
    let _ = s.shutdown(Shutdown::Write);
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

#[test]
fn allow_deny_and_denyfile_reload() {
    let srv = Server::start(
        &[
            "-k",
            "--allow",
            "127.0.0.2,127.0.0.3",
            "-e",
            "/bin/cat",
            "127.0.0.1",
            "0",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(echo_from("127.0.0.2", srv.addr), b"hi");
    assert_eq!(echo_from("127.0.0.1", srv.addr), b"");
    drop(srv);

    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, "# blocked\n127.0.0.3\n").unwrap();
    let srv = Server::start(
        &[
            "-k",
            "--denyfile",
            deny.to_str().unwrap(),
            "-e",
            "/bin/cat",
            "127.0.0.1",
            "0",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(echo_from("127.0.0.3", srv.addr), b"");
    assert_eq!(echo_from("127.0.0.4", srv.addr), b"hi");
    std::fs::write(&deny, "127.0.0.4/32\n").unwrap();
    srv.proc.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_until(5.0, || srv.log().contains("re-read")),
        "{}",
        srv.log()
    );
    assert_eq!(echo_from("127.0.0.3", srv.addr), b"hi");
    assert_eq!(echo_from("127.0.0.4", srv.addr), b"");
}

#[test]
fn exec_1000_sequential_connections_leave_no_zombies() {
    let srv = Server::start(
        &["-k", "-e", "/bin/echo hi", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    for i in 0..1000 {
        let got = ask(srv.addr, b"");
        assert_eq!(got, b"hi\n", "connection {i}: {}", srv.log());
    }
    assert!(
        wait_until(10.0, || procs::children(srv.pid()).is_empty()),
        "children left: {:?}",
        procs::children(srv.pid())
    );
    assert_eq!(srv.zombies(), 0);
}

#[test]
fn exec_exit_status_is_logged() {
    let srv = Server::start(
        &["-k", "-c", "echo out; exit 7", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    assert_eq!(ask(srv.addr, b""), b"out\n");
    assert!(
        wait_until(5.0, || srv.log().contains("exited with status 7")),
        "{}",
        srv.log()
    );
}

/// Parse a dump: per direction, the bytes rebuilt from the hex lines,
/// checking offsets run on and each hex line is in `hexdump -C` layout.
fn parse_dump(text: &str) -> (Vec<u8>, Vec<u8>, usize) {
    let mut sent = Vec::new();
    let mut recv = Vec::new();
    let mut chunks = 0;
    let mut current: Option<(bool, u64, usize)> = None; // (sent?, next line offset, bytes left)
    for line in text.lines() {
        if line.starts_with("# ") {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("> send ")
            .or(line.strip_prefix("< recv "))
        {
            let is_sent = line.starts_with('>');
            let field = |k: &str| {
                rest.split(' ')
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap_or_else(|| panic!("no {k} in {line}"))
                    .to_owned()
            };
            let offset: u64 = field("offset=").parse().unwrap();
            let len: usize = field("len=").parse().unwrap();
            assert!(field("peer=").starts_with("127.0.0.1:"));
            let time = field("time=");
            assert!(time.ends_with('Z') && time.len() == 27, "{time}");
            let have = if is_sent { sent.len() } else { recv.len() };
            assert_eq!(offset, have as u64, "offsets must run on: {line}");
            current = Some((is_sent, offset, len));
            chunks += 1;
            continue;
        }
        let (is_sent, off, left) = current.expect("hex line before a header");
        let n = left.min(16);
        let hex_part = &line[10..59];
        let bytes: Vec<u8> = hex_part
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), n, "{line}");
        let mut expect = Vec::new();
        sockbox_wire::hexdump::write_line(&mut expect, off, &bytes);
        assert_eq!(format!("{line}\n").as_bytes(), expect.as_slice());
        if is_sent {
            sent.extend_from_slice(&bytes);
        } else {
            recv.extend_from_slice(&bytes);
        }
        current = Some((is_sent, off + n as u64, left - n));
    }
    (sent, recv, chunks)
}

#[test]
fn hex_dump_tags_every_chunk_by_direction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traffic.dump");
    let mut srv = Server::start(
        &["-x", path.to_str().unwrap(), "127.0.0.1", "0"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut sin = srv.child().stdin.take().unwrap();
    sin.write_all(b"pong from the server, 33 bytes!\n").unwrap();
    drop(sin);
    let client_data: Vec<u8> = (0u8..=255).cycle().take(1000).collect();
    let (st, out, err) = connect(&["127.0.0.1", &port(srv.addr)], &client_data);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"pong from the server, 33 bytes!\n");
    assert!(srv.wait().success());
    let text = std::fs::read_to_string(&path).unwrap();
    let (sent, recv, chunks) = parse_dump(&text);
    assert_eq!(sent, b"pong from the server, 33 bytes!\n");
    assert_eq!(recv, client_data);
    assert!(chunks >= 2);
    assert!(text.starts_with("# open peer=127.0.0.1:"));
    assert!(text.contains("# close peer=127.0.0.1:"));
    assert!(text.contains(" sent=32 received=1000 "), "{text}");
}

/// A self-signed leaf certificate for localhost/127.0.0.1 made with openssl.
fn test_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (apt-get install openssl)")
        .success();
    assert!(ok, "openssl could not make a test certificate");
    (cert, key)
}

#[test]
fn tls_round_trip_and_certificate_check() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = test_cert(dir.path());
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let srv = Server::start(
        &[
            "-k",
            "--tls",
            "--tls-cert",
            cert_s,
            "--tls-key",
            key_s,
            "-e",
            "/bin/cat",
            "127.0.0.1",
            "0",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let p = port(srv.addr);
    let (st, out, err) = connect(
        &["--tls", "--tls-ca", cert_s, "localhost", &p],
        b"over tls\n",
    );
    assert!(st.success(), "{err}\n{}", srv.log());
    assert_eq!(out, b"over tls\n");
    // The system store does not trust it: exit 1, the reason named.
    let (st, out, err) = connect(&["--tls", "127.0.0.1", &p], b"x");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("TLS handshake"), "{err}");
}

#[test]
fn udp_keep_open_shares_stdout_between_peers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let srv = Server::start(
        &["-u", "-k", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::from(file),
    );
    let peers: Vec<UdpSocket> = (0..5)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, p) in peers.iter().enumerate() {
        p.send_to(format!("peer {i}\n").as_bytes(), srv.addr)
            .unwrap();
    }
    assert!(wait_until(5.0, || {
        std::fs::read_to_string(&path).unwrap().lines().count() == 5
    }));
    assert!(
        wait_until(5.0, || srv.log().matches("new peer").count() == 5),
        "{}",
        srv.log()
    );
}

#[test]
fn sigterm_drains_open_connections_then_exits_0() {
    let mut srv = Server::start(
        &["-k", "--grace", "10s", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut open = stream(srv.addr);
    open.write_all(b"one\n").unwrap();
    let mut buf = [0u8; 4];
    open.read_exact(&mut buf).unwrap();
    srv.proc.signal(nix::sys::signal::Signal::SIGTERM);
    // New clients are no longer accepted…
    assert!(wait_until(5.0, || TcpStream::connect(srv.addr).is_err()));
    // …but the open one still works, and the server leaves when it is done.
    open.write_all(b"two\n").unwrap();
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"two\n");
    open.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).unwrap();
    let t0 = Instant::now();
    let st = srv.wait();
    assert!(st.success(), "{st:?}: {}", srv.log());
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// CPU ticks (user + system) a process has used, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state=0 … utime=11 stime=12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn out_of_fds_backs_off_instead_of_spinning_then_recovers() {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 32 && exec \"$0\" listen -v -k 127.0.0.1 0")
        .arg(assert_cmd::cargo::cargo_bin("sockbox"));
    let srv = Server::spawn(cmd, Stdio::null(), Stdio::null());
    // More clients than descriptors: the kernel completes the handshakes,
    // accept(2) fails with EMFILE.
    let clients: Vec<TcpStream> = (0..40).map(|_| stream(srv.addr)).collect();
    assert!(
        wait_until(10.0, || srv.log().contains("backing off")),
        "{}",
        srv.log()
    );
    let before = cpu_ticks(srv.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(srv.pid()) - before;
    assert!(used < 30, "server spun: {used} ticks in 1 s");
    drop(clients);
    // Descriptors come back: a new client is served (stdin is empty, so it
    // gets EOF at once) .
    assert!(wait_until(10.0, || try_ask(srv.addr, b"x").is_some()));
}
