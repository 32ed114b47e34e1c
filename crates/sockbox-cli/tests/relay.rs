//! Integration tests: `sockbox connect` / `sockbox listen`. Everything runs on
//! loopback; every server is killed by a guard, every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::util::netns::wait_until;
use crate::util::sockbox_std;

const T: Duration = Duration::from_secs(20);

/// A spawned `sockbox listen`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `sockbox listen -v ARGS…` (ARGS end with the address and port 0);
    /// waits for its "listening on" line.
    fn start(args: &[&str], stdin: Stdio, stdout: Stdio) -> Self {
        let mut child = sockbox_std()
            .arg("listen")
            .arg("-v")
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockbox listen");
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(' ').next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut server = Self {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("listen did not start: {}", server.log()));
        server.addr = addr.parse().expect("listen address");
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child, T)
    }

    /// Pids of this server's children in state Z.
    fn zombies(&self) -> usize {
        children(self.child.id())
            .into_iter()
            .filter(|(_, state)| *state == 'Z')
            .count()
    }
}

fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (pid, state) of every process whose parent is `ppid`, from /proc/*/stat.
fn children(ppid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let parent: u32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if parent == ppid {
            out.push((pid, state));
        }
    }
    out
}

/// Run `sockbox connect ARGS…` feeding `input`, returning (status, stdout, stderr).
fn connect(args: &[&str], input: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = sockbox_std()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockbox connect");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut child, T);
    let _ = feeder.join();
    (status, reader.join().unwrap(), ereader.join().unwrap())
}

fn port(addr: SocketAddr) -> String {
    addr.port().to_string()
}

fn stream(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send `msg`, half-close, read everything back.
fn ask(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = stream(addr);
    s.write_all(msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// Like [`ask`], but a refused or reset connection is `None`.
fn try_ask(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let mut s = stream(addr);
    s.write_all(msg).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    let mut v = Vec::new();
    s.read_to_end(&mut v).ok()?;
    Some(v)
}

#[test]
fn tcp_round_trip_v4_and_v6() {
    for host in ["127.0.0.1", "::1"] {
        let mut srv = Server::start(&[host, "0"], Stdio::piped(), Stdio::piped());
        let mut sin = srv.child.stdin.take().unwrap();
        sin.write_all(b"from server\n").unwrap();
        drop(sin);
        let (st, out, err) = connect(&[host, &port(srv.addr)], b"from client\n");
        assert!(st.success(), "{host}: connect: {err}");
        assert_eq!(out, b"from server\n", "{host}");
        let mut sout = srv.child.stdout.take().unwrap();
        assert!(srv.wait().success(), "{}", srv.log());
        let mut got = Vec::new();
        sout.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"from client\n", "{host}");
    }
}

#[test]
fn udp_round_trip_v4_and_v6_and_demux() {
    for host in ["127.0.0.1", "::1"] {
        let srv = Server::start(
            &["-u", "-k", "-e", "/bin/cat", host, "0"],
            Stdio::null(),
            Stdio::null(),
        );
        let (st, out, err) = connect(&["-u", "-q", "1", host, &port(srv.addr)], b"ping udp\n");
        assert!(st.success(), "{host}: {err}");
        assert_eq!(out, b"ping udp\n", "{host}");
        // Two peers at once get their own echoes back, never each other's.
        let a = UdpSocket::bind((srv.addr.ip(), 0)).unwrap();
        let b = UdpSocket::bind((srv.addr.ip(), 0)).unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        a.send_to(b"from a", srv.addr).unwrap();
        b.send_to(b"from b", srv.addr).unwrap();
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"from a");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"from b");
    }
    // Single-peer UDP listen to stdout.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let srv = Server::start(&["-u", "127.0.0.1", "0"], Stdio::null(), Stdio::from(file));
    let (st, _, err) = connect(
        &["-u", "-q", "0.3", "127.0.0.1", &port(srv.addr)],
        b"datagram\n",
    );
    assert!(st.success(), "{err}");
    assert!(wait_until(5.0, || std::fs::read(&path).unwrap() == b"datagram\n"));
}

#[test]
fn half_close_sends_fin_and_keeps_reading() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap(); // needs our FIN
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(format!("got {} bytes\n", v.len()).as_bytes())
            .unwrap();
    });
    let (st, out, err) = connect(&["127.0.0.1", &port(addr)], b"abcdef");
    server.join().unwrap();
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "got 6 bytes\n");
}

#[test]
fn no_shutdown_keeps_write_side_open_and_q_quits() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap();
        let start = Instant::now();
        // No FIN until the client process quits (-q 1).
        let eof = s.read(&mut buf).unwrap_or(0);
        (n, eof, start.elapsed())
    });
    let t0 = Instant::now();
    let (st, _, err) = connect(
        &["--no-shutdown", "-q", "1", "127.0.0.1", &port(addr)],
        b"abc",
    );
    let (n, eof, waited) = server.join().unwrap();
    assert!(st.success(), "{err}");
    assert_eq!((n, eof), (3, 0));
    assert!(
        waited >= Duration::from_millis(700),
        "FIN came after {waited:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(8));
}

#[test]
fn send_only_and_recv_only() {
    // --recv-only: stdin is never sent.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut buf = [0u8; 16];
        let got = s.read(&mut buf).is_ok_and(|n| n > 0);
        s.write_all(b"hello\n").unwrap();
        got
    });
    let (st, out, err) = connect(&["--recv-only", "127.0.0.1", &port(addr)], b"secret");
    assert!(!server.join().unwrap(), "--recv-only sent stdin");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"hello\n");

    // --send-only: what the peer sends is not printed.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"ignored\n").unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        v
    });
    let (st, out, err) = connect(&["--send-only", "127.0.0.1", &port(addr)], b"data");
    assert_eq!(server.join().unwrap(), b"data");
    assert!(st.success(), "{err}");
    assert!(out.is_empty());
}

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

fn from(ip: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{ip}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn echo_from(ip: &str, to: SocketAddr) -> Vec<u8> {
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(srv.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
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
        wait_until(10.0, || children(srv.child.id()).is_empty()),
        "children left: {:?}",
        children(srv.child.id())
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
    let mut sin = srv.child.stdin.take().unwrap();
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
    let mut child = sockbox_std()
        .args(["connect", "127.0.0.1", &port(addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep = child.stdin.take();
    let status = wait_child(&mut child, T);
    server.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
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
    let mut child = sockbox_std()
        .args(["connect", "127.0.0.1", &port(addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 4096];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let status = wait_child(&mut child, T);
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
    let mut child = sockbox_std()
        .args(["connect", "127.0.0.1", &port(addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'z'; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && sin.write_all(&chunk).is_ok() {}
    });
    let status = wait_child(&mut child, T);
    server.join().unwrap();
    feeder.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
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
    let mut child = sockbox_std()
        .args(["connect", "-i", "0.5", "127.0.0.1", &port(addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep = child.stdin.take();
    let t0 = Instant::now();
    let status = wait_child(&mut child, T);
    assert!(t0.elapsed() < Duration::from_millis(2500));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("(-i)"), "{err}");
    server.join().unwrap();
}

#[test]
fn bulk_data_survives_the_splice_path_intact() {
    // 48 MiB of pseudo-random bytes, pipe -> connect -> listen -> pipe.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..48 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut srv = Server::start(&["127.0.0.1", "0"], Stdio::null(), Stdio::piped());
    let mut sout = srv.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        sout.read_to_end(&mut v).unwrap();
        v
    });
    let (st, _, err) = connect(&["127.0.0.1", &port(srv.addr)], &data);
    assert!(st.success(), "{err}");
    assert!(srv.wait().success(), "{}", srv.log());
    let got = reader.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
}

#[test]
fn bad_input_is_a_usage_error() {
    crate::util::sockbox()
        .args(["connect", "no-such-host.invalid", "80"])
        .assert()
        .code(2);
    crate::util::sockbox()
        .args(["listen", "--allow", "not-a-cidr", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not-a-cidr"));
    crate::util::sockbox()
        .args(["connect", "--send-only", "--recv-only", "127.0.0.1", "1"])
        .assert()
        .code(2);
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
