//! Integration tests: `sockbox chat` and `sockbox broker` over loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::netns::wait_until;
use crate::util::sockbox_std;

const T: Duration = Duration::from_secs(20);

/// A server process, killed on drop; its stderr/stdout are collected.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Server {
    fn start(sub: &str, args: &[&str]) -> Self {
        let mut cmd = sockbox_std();
        cmd.args([sub, "127.0.0.1", "0"]).args(args);
        Self::spawn(cmd, args.contains(&"--json"))
    }

    fn spawn(cmd: std::process::Command, json: bool) -> Self {
        Self::spawn_with_stdin(cmd, json, Stdio::null())
    }

    /// Start the server with `stdin` (piped for `--stdin`), and wait until it
    /// reports its address (a JSON event with `json`, else a log line).
    fn spawn_with_stdin(mut cmd: std::process::Command, json: bool, stdin: Stdio) -> Self {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().unwrap(), stderr.clone());
        collect(child.stdout.take().unwrap(), stdout.clone());
        let mut addr = None;
        wait_until(10.0, || {
            let lines = if json { &stdout } else { &stderr };
            for l in lines.lock().unwrap().iter() {
                let found = if json {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["addr"].as_str().map(str::to_owned))
                } else {
                    l.split("listening on ").nth(1).map(str::to_owned)
                };
                if let Some(a) = found {
                    addr = a.parse().ok();
                }
            }
            addr.is_some()
        });
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "server did not report its address: {:?}",
                stderr.lock().unwrap()
            )
        });
        Self {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    fn sigterm(&mut self) -> i32 {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + T;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Self {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self.r.read_line(&mut s).unwrap();
        assert!(n > 0, "unexpected EOF");
        s.trim_end_matches('\n').to_owned()
    }

    fn send(&mut self, s: &[u8]) {
        self.w.write_all(s).unwrap();
    }

    fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}

#[test]
fn chat_messages_cut_lines_and_sigterm_tells_everyone() {
    let mut srv = Server::start("chat", &["--max-line", "12"]);
    // (a cut command is refused rather than run cut)
    let mut a = Client::connect(srv.addr);
    assert!(a.line().starts_with("*** welcome, you are user1;"));
    let mut b = Client::connect(srv.addr);
    assert!(b.line().starts_with("*** welcome, you are user2;"));
    assert_eq!(a.line(), "*** user2 joined (2 online)");
    b.send(b"/nick user1\n");
    assert_eq!(
        b.line(),
        "*** cannot change nickname: nickname user1 is taken"
    );
    b.send(b"/nick abcdefghijk\n");
    assert_eq!(b.line(), "*** command longer than 12 bytes ignored");
    b.send(b"0123456789abcdef\r\nok\r\n");
    assert_eq!(a.line(), "<user2> 0123456789ab");
    assert_eq!(a.line(), "<user2> ok");
    assert_eq!(
        b.line(),
        "*** your line was longer than 12 bytes and was cut\r"
    );
    assert_eq!(srv.sigterm(), 0);
    assert_eq!(a.rest(), "*** server is shutting down\n");
    assert_eq!(b.rest(), "*** server is shutting down\r\n");
    let log = srv.stderr.lock().unwrap().join("\n");
    assert!(log.contains("join user2 from 127.0.0.1:"), "{log}");
}

#[test]
fn chat_json_logs_joins_nicks_and_leaves() {
    let mut srv = Server::start("chat", &["--json"]);
    let mut a = Client::connect(srv.addr);
    a.line();
    a.send(b"/nick Ann\n");
    a.line();
    a.send(b"/quit bye\n");
    assert_eq!(a.rest(), "");
    assert!(wait_until(5.0, || srv.stdout.lock().unwrap().len() >= 4));
    assert_eq!(srv.sigterm(), 0);
    let events: Vec<serde_json::Value> = srv
        .stdout
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["listening", "join", "nick", "leave"]);
    assert_eq!(events[1]["nick"], "user1");
    assert_eq!(events[2]["new"], "Ann");
    assert_eq!(events[3]["nick"], "Ann");
    assert_eq!(events[3]["reason"], "quit: bye");
}

#[test]
fn broker_passes_bytes_unchanged() {
    let mut srv = Server::start("broker", &[]);
    let mut a = Client::connect(srv.addr);
    let mut b = Client::connect(srv.addr);
    let mut c = Client::connect(srv.addr);
    assert!(wait_until(5.0, || {
        srv.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" join "))
            .count()
            == 3
    }));
    let data: Vec<u8> = (0..=255u8).cycle().take(50_000).collect();
    a.send(&data);
    for r in [&mut b, &mut c] {
        let mut got = vec![0; data.len()];
        r.r.read_exact(&mut got).unwrap();
        assert!(got == data);
    }
    assert_eq!(srv.sigterm(), 0);
    // Raw bytes only: the broker closes without adding a notice.
    assert_eq!(a.rest(), "");
}

#[test]
fn chat_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut srv = Server::start(
        "chat",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let connector = sockbox::tls::ClientTls {
            ca: Some(cert.clone()),
            insecure: false,
        }
        .connector()
        .unwrap();
        let mut conns = Vec::new();
        for _ in 0..2 {
            let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
            let tls = sockbox::tls::connect(&connector, "localhost", tcp)
                .await
                .unwrap();
            let (r, w) = tokio::io::split(tls);
            let mut r = tokio::io::BufReader::new(r);
            let mut l = String::new();
            r.read_line(&mut l).await.unwrap();
            assert!(l.starts_with("*** welcome"), "{l}");
            conns.push((r, w));
        }
        conns[1].1.write_all(b"over tls\n").await.unwrap();
        let mut l = String::new();
        while !l.starts_with('<') {
            l.clear();
            conns[0].0.read_line(&mut l).await.unwrap();
        }
        l
    });
    assert_eq!(got, "<user2> over tls\n");
    assert_eq!(srv.sigterm(), 0);
}

/// `--stdin`: the operator's terminal is a participant.
#[test]
fn stdin_operator_takes_part() {
    let mut cmd = sockbox_std();
    cmd.args(["chat", "127.0.0.1", "0", "--stdin", "--nick", "op"]);
    let mut srv = Server::spawn_with_stdin(cmd, false, Stdio::piped());
    let mut stdin = srv.child.stdin.take().unwrap();
    let (addr, stdout) = (srv.addr, srv.stdout.clone());
    let mut a = Client::connect(addr);
    assert!(a.line().starts_with("*** welcome, you are user"));
    stdin.write_all(b"hello from the console\n").unwrap();
    assert_eq!(a.line(), "<op> hello from the console");
    a.send(b"hi op\n");
    assert!(wait_until(10.0, || {
        stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.ends_with("> hi op"))
    }));
    let out = stdout.lock().unwrap().clone();
    assert!(out[0].starts_with("*** welcome, you are op;"), "{out:?}");
    drop(stdin);
    assert_eq!(srv.sigterm(), 0);
}

mod cluster;
mod cluster_access;
mod cluster_creds;
mod cluster_routes;
mod drain;
mod events;
mod flags;
mod limits;
mod load;
