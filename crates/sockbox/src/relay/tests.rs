//! The relay server through its library API: `from_listener` /
//! `from_socket`, `run(shutdown)`, events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::*;
use crate::Shutdown;
use crate::event::Events;

fn cat() -> Local {
    Local::Exec(ExecSpec::Argv(vec!["/bin/cat".into()]))
}

/// A config whose relay events are collected as short strings.
fn config(local: Local) -> (ListenConfig, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let events: Events<RelayEvent> = Arc::new(move |e: &RelayEvent| {
        let line = match e {
            RelayEvent::NewPeer { .. } => "new".to_owned(),
            RelayEvent::Closed { report, .. } => format!("closed {}", report.received),
            RelayEvent::ProgramEnded { status, .. } => {
                format!(
                    "ended {:?}",
                    status
                        .as_ref()
                        .ok()
                        .and_then(std::process::ExitStatus::code)
                )
            }
            other => format!("{other:?}"),
        };
        log.lock().unwrap().push(line);
    });
    let mut cfg = ListenConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.local = local;
    cfg.events = events;
    cfg.server.grace = Duration::from_secs(2);
    (cfg, seen)
}

async fn echo_over_tcp(addr: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).await.unwrap();
    v
}

#[tokio::test]
async fn keep_open_tcp_gives_each_client_its_program_and_counts_them() {
    let (cfg, seen) = config(cat());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = RelayServer::from_listener(listener, cfg).unwrap();
    let addr = server.local_addr().inet().unwrap();
    let stop = Shutdown::new();
    let run = tokio::spawn(server.run(stop.clone()));
    assert_eq!(echo_over_tcp(addr, b"one").await, b"one");
    assert_eq!(echo_over_tcp(addr, b"two!").await, b"two!");
    stop.trigger();
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.served, report.refused, report.single), (2, 0, None));
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        ["closed 3", "closed 4", "ended Some(0)", "ended Some(0)"]
    );
}

#[tokio::test]
async fn a_single_client_server_returns_its_clients_report() {
    let (mut cfg, _) = config(Local::Exec(ExecSpec::Shell("echo hi".into())));
    cfg.server.once = true;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = RelayServer::from_listener(listener, cfg).unwrap();
    let addr = server.local_addr().inet().unwrap();
    let run = tokio::spawn(server.run(Shutdown::new()));
    assert_eq!(echo_over_tcp(addr, b"").await, b"hi\n");
    let report = run.await.unwrap().unwrap();
    let single = report.single.expect("the client's report");
    assert_eq!((report.served, single.sent, single.received), (1, 3, 0));
    // The listening socket closed when the client arrived.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn udp_peers_are_told_apart_and_answered_from_the_address_written_to() {
    let (mut cfg, seen) = config(cat());
    cfg.proto = Proto::Udp;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = RelayServer::from_socket(socket, cfg).unwrap();
    let addr = server.local_addr().inet().unwrap();
    let stop = Shutdown::new();
    let run = tokio::spawn(server.run(stop.clone()));
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send_to(b"from a", addr).await.unwrap();
    b.send_to(b"from b", addr).await.unwrap();
    let mut buf = [0u8; 64];
    for (s, want) in [(&a, b"from a"), (&b, b"from b")] {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&want[..], addr));
    }
    stop.trigger();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.served, 2);
    let news = seen.lock().unwrap().iter().filter(|l| *l == "new").count();
    assert_eq!(news, 2);
}

#[tokio::test]
async fn a_unix_stream_server_serves_programs_and_removes_its_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.sock");
    // A stale socket from a dead server is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let (mut cfg, _seen) = config(cat());
    cfg.unix = Some(path.clone());
    let server = RelayServer::bind(cfg).unwrap();
    assert_eq!(server.local_addr(), Peer::Unix(Some(path.clone())));
    let stop = Shutdown::new();
    let run = tokio::spawn(server.run(stop.clone()));
    for msg in [&b"one"[..], b"two"] {
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        s.write_all(msg).await.unwrap();
        s.shutdown().await.unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).await.unwrap();
        assert_eq!(v, msg);
    }
    stop.trigger();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.served, 2);
    assert!(!path.exists(), "socket file left behind");
    // A regular file at the path is refused and left alone.
    std::fs::write(&path, "data").unwrap();
    let (mut cfg, _) = config(cat());
    cfg.unix = Some(path.clone());
    let err = RelayServer::bind(cfg).unwrap_err();
    assert!(
        matches!(err, RelayError::UnixBind { in_use: false, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
}
