//! Integration tests: `sockbox connect` / `sockbox listen`. Everything runs on
//! loopback; every server is killed by a guard, every wait is bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::util::netns::wait_until;
use crate::util::server::Spawned;
use crate::util::{procs, sockbox_std};

mod faults;
mod ncat_suite;
mod netcat;
mod proxy;
mod proxy_ncat;
mod regressions;
mod server;
mod unix;

const T: Duration = Duration::from_secs(20);

/// A spawned `sockbox listen` and the address it reported; killed on drop.
struct Server {
    proc: Spawned,
    addr: SocketAddr,
}

impl Server {
    /// `sockbox listen -v ARGS…` (ARGS end with the address and port 0);
    /// waits for its "listening on" line.
    fn start(args: &[&str], stdin: Stdio, stdout: Stdio) -> Self {
        let mut cmd = sockbox_std();
        cmd.arg("listen").arg("-v").args(args);
        Self::spawn(cmd, stdin, stdout)
    }

    /// Start `cmd` (which must end up running `sockbox listen -v …`).
    fn spawn(cmd: std::process::Command, stdin: Stdio, stdout: Stdio) -> Self {
        let proc = Spawned::start_with(cmd, stdin, stdout);
        let addr = proc.wait_addr("listening on ");
        Self { proc, addr }
    }

    fn child(&mut self) -> &mut Child {
        &mut self.proc.child
    }

    fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    fn log(&self) -> String {
        self.proc.log()
    }

    fn wait(&mut self) -> ExitStatus {
        self.proc.must_exit(T)
    }

    /// This server's children in state Z.
    fn zombies(&self) -> usize {
        procs::zombies(self.pid()).len()
    }
}

/// `sockbox connect ARGS…` with standard input a pipe (in `child.stdin`,
/// for the test to feed or to keep open) and standard output `stdout`;
/// standard error is collected.
fn connect_spawned(args: &[&str], stdout: Stdio) -> Spawned {
    let mut cmd = sockbox_std();
    cmd.arg("connect").args(args);
    Spawned::start_with(cmd, Stdio::piped(), stdout)
}

/// Run `sockbox connect ARGS…` feeding `input`, returning (status, stdout, stderr).
fn connect(args: &[&str], input: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut c = connect_spawned(args, Stdio::piped());
    let mut stdin = c.child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut out = c.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let status = c.must_exit(T);
    let _ = feeder.join();
    (status, reader.join().unwrap(), c.log())
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
        let mut sin = srv.child().stdin.take().unwrap();
        sin.write_all(b"from server\n").unwrap();
        drop(sin);
        let (st, out, err) = connect(&[host, &port(srv.addr)], b"from client\n");
        assert!(st.success(), "{host}: connect: {err}");
        assert_eq!(out, b"from server\n", "{host}");
        let mut sout = srv.child().stdout.take().unwrap();
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
    let mut sout = srv.child().stdout.take().unwrap();
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
fn listen_output_appended_to_a_file() {
    // Regression: splice(2) refuses O_APPEND files; `listen >> log` must still work.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, "before\n").unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut srv = Server::start(&["127.0.0.1", "0"], Stdio::null(), Stdio::from(file));
    let (st, _, err) = connect(&["127.0.0.1", &port(srv.addr)], b"after\n");
    assert!(st.success(), "{err}");
    assert!(srv.wait().success(), "{}", srv.log());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "before\nafter\n");
}

#[test]
fn connect_exec_runs_a_program_on_the_socket() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"echo me\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    let (st, out, err) = connect(&["-c", "tr a-z A-Z", "127.0.0.1", &port(addr)], b"");
    assert!(st.success(), "{err}");
    assert!(out.is_empty());
    assert_eq!(server.join().unwrap(), b"ECHO ME\n");
}

#[test]
fn text_dump_tags_directions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.txt");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        s.write_all(b"reply\n").unwrap();
    });
    let (st, out, err) = connect(
        &["-o", path.to_str().unwrap(), "127.0.0.1", &port(addr)],
        b"question\n",
    );
    server.join().unwrap();
    assert!(st.success(), "{err}");
    assert_eq!(out, b"reply\n");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let p = format!("peer=127.0.0.1:{}", addr.port());
    assert!(lines[0].starts_with(&format!("# open {p} ")), "{text}");
    assert!(
        lines[1].starts_with(&format!("> send {p} offset=0 len=9 ")),
        "{text}"
    );
    assert_eq!(lines[2], "question");
    assert!(
        lines[3].starts_with(&format!("< recv {p} offset=0 len=6 ")),
        "{text}"
    );
    assert_eq!(lines[4], "reply");
    assert!(
        lines[5].starts_with(&format!("# close {p} sent=9 received=6 ")),
        "{text}"
    );
}
