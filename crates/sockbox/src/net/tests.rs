//! Tests of the server skeletons over loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::*;
use crate::Shutdown;

/// Echoes lines until the client leaves or shutdown begins; then says bye.
struct Echo;

impl Handler for Echo {
    async fn serve(&self, mut conn: Connection) {
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                r = conn.stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        conn.stats.add_in(n as u64);
                        if conn.stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                },
                () = conn.drain.soft().wait() => {
                    let _ = conn.stream.write_all(b"bye\n").await;
                    return;
                }
            }
        }
    }

    async fn refuse(&self, mut refused: Refused) {
        let msg = format!("no: {}\n", refused.reason);
        let _ = refused.stream.write_all(msg.as_bytes()).await;
    }
}

fn start<H: Handler>(
    handler: H,
    opts: ServerOptions,
) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<ServerReport>) {
    let server =
        TcpServer::bind(&Bind::new("127.0.0.1:0".parse().unwrap()), handler, opts).unwrap();
    let addr = server.local_addr();
    let stop = Shutdown::new();
    let task = tokio::spawn(server.run(stop.clone()));
    (addr, stop, task)
}

async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_cap_refuses_with_the_handlers_goodbye_and_drain_says_bye() {
    let opts = ServerOptions {
        max_conns: 1,
        ..ServerOptions::default()
    };
    let (addr, stop, task) = start(Echo, opts);
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"ping").await.unwrap();
    let mut b = [0u8; 4];
    first.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"ping");
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        read_all(&mut second).await,
        "no: 1 connections already open\n"
    );
    stop.trigger();
    assert_eq!(read_all(&mut first).await, "bye\n");
    let report = task.await.unwrap();
    assert_eq!(
        (report.accepted, report.refused, report.cut_at_grace),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn zero_connections_refuses_everyone_and_the_acl_denies() {
    let (addr, stop, task) = start(
        Echo,
        ServerOptions {
            max_conns: 0,
            ..ServerOptions::default()
        },
    );
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_all(&mut c).await, "no: 0 connections already open\n");
    stop.trigger();
    assert_eq!(task.await.unwrap().refused, 1);

    let acl = SharedAcl::new(Acl::new(&[], &["127.0.0.0/8".into()], &[], &[]).unwrap());
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let opts = ServerOptions {
        acl,
        events: Arc::new(move |e: &ServerEvent| {
            if let ServerEvent::Refused { reason, .. } = e {
                seen.lock().unwrap().push(*reason);
            }
        }),
        ..ServerOptions::default()
    };
    let (addr, stop, task) = start(Echo, opts);
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert!(read_all(&mut c).await.contains("allow/deny"));
    stop.trigger();
    task.await.unwrap();
    assert_eq!(*events.lock().unwrap(), vec![Refusal::Denied]);
}

#[tokio::test]
async fn the_per_address_cap_counts_open_connections() {
    let opts = ServerOptions {
        max_per_addr: Some(2),
        ..ServerOptions::default()
    };
    let (addr, stop, task) = start(Echo, opts);
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        open.push(c);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(read_all(&mut third).await.contains("from this address"));
    // One leaves: a new one is admitted.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"y").await.unwrap();
        let mut b = [0u8; 1];
        if c.read_exact(&mut b).await.is_ok() && &b == b"y" {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "a slot freed by a closed connection was not reused"
    );
    stop.trigger();
    task.await.unwrap();
}

/// Ignores shutdown: only the hard stage ends it.
struct Stubborn(Arc<Mutex<Vec<&'static str>>>);

impl Handler for Stubborn {
    async fn serve(&self, conn: Connection) {
        conn.drain.hard().wait().await;
        self.0.lock().unwrap().push("hard");
    }

    async fn draining(&self) {
        self.0.lock().unwrap().push("draining");
    }
}

#[tokio::test(start_paused = true)]
async fn grace_ends_in_the_hard_stage() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = ServerOptions {
        grace: Duration::from_secs(3),
        ..ServerOptions::default()
    };
    let (addr, stop, task) = start(Stubborn(log.clone()), opts);
    let _c = TcpStream::connect(addr).await.unwrap();
    // Let the server accept before stopping it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.trigger();
    let report = task.await.unwrap();
    assert_eq!(report.cut_at_grace, 1);
    assert_eq!(*log.lock().unwrap(), vec!["draining", "hard"]);
}

#[tokio::test]
async fn once_serves_one_client_and_returns() {
    let opts = ServerOptions {
        once: true,
        ..ServerOptions::default()
    };
    let (addr, _stop, task) = start(Echo, opts);
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"one").await.unwrap();
    let mut b = [0u8; 3];
    c.read_exact(&mut b).await.unwrap();
    drop(c);
    let report = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("a once server returns when its client leaves")
        .unwrap();
    assert_eq!(report.accepted, 1);
    // The listening socket is closed.
    assert!(TcpStream::connect(addr).await.is_err());
}

/// Answers "pong" at once, and "late" from a task after 50 ms.
struct Pong(Arc<Mutex<Vec<String>>>);

impl DatagramHandler for Pong {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, ctx: &DatagramCtx) -> Answer<'a> {
        if dg.payload == b"later" {
            let replier = ctx.replier(dg);
            ctx.spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = replier.send(b"late").await;
            });
            return Answer::Nothing;
        }
        Answer::Reply(b"pong")
    }

    fn answered(&self, to: SocketAddr, result: &std::io::Result<usize>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{to} {}", result.as_ref().map_or(0, |n| *n)));
    }

    fn denied(&self, from: SocketAddr, len: usize) {
        self.0.lock().unwrap().push(format!("denied {from} {len}"));
    }
}

#[tokio::test]
async fn datagrams_are_answered_now_or_later_and_denied_ones_dropped() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let acl = SharedAcl::new(Acl::new(&[], &["127.0.0.2".into()], &[], &[]).unwrap());
    let opts = ServerOptions {
        acl,
        ..ServerOptions::default()
    };
    let server = UdpServer::bind(
        &Bind::new("0.0.0.0:0".parse().unwrap()),
        Pong(log.clone()),
        opts,
    )
    .unwrap();
    let port = server.local_addr().port();
    let stop = Shutdown::new();
    let task = tokio::spawn(server.run(stop.clone()));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = client.local_addr().unwrap();
    client.send_to(b"ping", ("127.0.0.1", port)).await.unwrap();
    let mut b = [0u8; 16];
    let (n, from) = client.recv_from(&mut b).await.unwrap();
    assert_eq!(&b[..n], b"pong");
    assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], port)));
    client.send_to(b"later", ("127.0.0.1", port)).await.unwrap();
    let (n, _) = client.recv_from(&mut b).await.unwrap();
    assert_eq!(&b[..n], b"late");

    let denied = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    denied.send_to(b"xyz", ("127.0.0.1", port)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(200), denied.recv_from(&mut b)).await;
    assert!(got.is_err(), "a denied sender got an answer");

    stop.trigger();
    let report = task.await.unwrap().unwrap();
    assert_eq!((report.accepted, report.refused), (2, 1));
    let log = log.lock().unwrap();
    assert_eq!(log[0], format!("{me} 4"));
    assert!(
        log.iter().any(|l| l.starts_with("denied 127.0.0.2:")),
        "{log:?}"
    );
}
