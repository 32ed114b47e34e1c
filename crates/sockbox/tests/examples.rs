//! The examples under `crates/sockbox/examples/` run as their users would
//! run them: a daemonized chat server, a discovery responder, a client that
//! reconnects. `cargo test` builds the examples before it runs this.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The built example `name`, next to this test binary's directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let path = debug.join("examples").join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A chat client: its connection and a line reader over it.
struct Client {
    conn: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Self {
        let conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the chat");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let lines = BufReader::new(conn.try_clone().unwrap());
        Self { conn, lines }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.lines.read_line(&mut l).expect("a line from the chat");
        l
    }
}

fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(2)
        .and_then(|u| u.parse().ok())
        .expect("effective uid")
}

#[test]
fn chat_example_daemonizes_relays_lines_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("chat.pid");
    let port = free_tcp_port();
    let mut cmd = Command::new(example("chat_server"));
    cmd.arg(port.to_string())
        .arg("--daemon")
        .arg("--pid-file")
        .arg(&pid_file);
    if is_root() {
        // nobody may remove its pid file from a sticky directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        cmd.args(["--user", "nobody"]);
    } else {
        eprintln!("chat example: not root, so the --user nobody step is not exercised");
    }
    // With --daemon the command returns once the server is bound and ready.
    let status = cmd.status().expect("run chat_server");
    assert!(status.success(), "chat_server --daemon: {status}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if is_root() {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            uid_of(pid),
            nobody.uid.as_raw(),
            "the daemon runs as nobody"
        );
    }

    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    // Both are subscribed once a line of each comes back to its sender.
    for (c, hi) in [(&mut a, "hi-a"), (&mut b, "hi-b")] {
        writeln!(c.conn, "{hi}").unwrap();
        while !c.line().ends_with(&format!(" wrote: {hi}\n")) {}
    }
    a.conn.write_all(b"hello from a\n").unwrap();
    let mut got = b.line();
    while got.contains(" wrote: hi-") {
        got = b.line();
    }
    let a_addr = a.conn.local_addr().unwrap();
    assert_eq!(got, format!("{a_addr} wrote: hello from a\n"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for c in [&mut a, &mut b] {
        let mut rest = String::new();
        c.lines
            .read_to_string(&mut rest)
            .expect("EOF after the notice");
        assert!(rest.ends_with("*** server closing\n"), "{rest:?}");
    }
    wait_until("the pid file to go", || !pid_file.exists());
    wait_until("the daemon to exit", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
}

#[test]
fn discovery_example_answers_who_only() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(example("discovery"))
        .args([&port.to_string(), "box-7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("answering WHO on udp"), "{first}");

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    client.send_to(b"nonsense", ("127.0.0.1", port)).unwrap();
    assert!(client.recv_from(&mut buf).is_err(), "only WHO is answered");
    client.send_to(b"WHO\n", ("127.0.0.1", port)).unwrap();
    let (n, from) = client.recv_from(&mut buf).expect("an answer to WHO");
    assert_eq!(&buf[..n], b"I am box-7");
    assert_eq!(from.port(), port);
    stop(server);
}

fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");
}

/// A one-connection-at-a-time server that answers each line upper-cased.
fn upper_server(listener: &TcpListener) -> std::thread::JoinHandle<()> {
    let l = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let Ok((conn, _)) = l.accept() else { return };
        let mut w = conn.try_clone().unwrap();
        for line in BufReader::new(conn).lines() {
            let Ok(line) = line else { break };
            if line == "quit" || writeln!(w, "{}", line.to_uppercase()).is_err() {
                break;
            }
        }
    })
}

#[test]
fn line_client_example_reconnects_when_its_server_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first = upper_server(&listener);
    let mut client = Command::new(example("line_client"))
        .args(["127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut err = BufReader::new(client.stderr.take().unwrap());
    let mut note = String::new();
    err.read_line(&mut note).unwrap();
    assert_eq!(note, "line_client: connected\n");
    let mut line = String::new();
    writeln!(stdin, "one").unwrap();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ONE\n");

    // The server goes away (it ends its one connection), then comes back.
    writeln!(stdin, "quit").unwrap();
    first.join().unwrap();
    let second = upper_server(&listener);
    // Lines written into a connection the server already closed are lost
    // in TCP: wait until the client says it is connected again.
    for expect in [
        "line_client: connection lost, reconnecting\n",
        "line_client: connected\n",
    ] {
        note.clear();
        err.read_line(&mut note).unwrap();
        assert_eq!(note, expect);
    }
    writeln!(stdin, "two").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "TWO\n", "the line was delivered after the reconnect");
    drop(stdin); // end of input: the client exits 0
    assert!(client.wait().unwrap().success());
    drop(listener);
    let _ = second.join();
}
