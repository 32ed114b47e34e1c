//! In-process tests of the chat and broker servers over loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::default_trait_access,
    clippy::format_collect,
    clippy::semicolon_if_nothing_returned
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

use super::*;
use crate::Shutdown;
use crate::relay::acl::{Acl, SharedAcl};

const T: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), ChatError>>>,
    events: Arc<Mutex<Vec<ChatEvent>>>,
}

impl Server {
    async fn start(mut config: ChatConfig) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        config.events = Some(Arc::new(move |e: &ChatEvent| {
            ev.lock().unwrap().push(e.clone())
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = ChatServer::from_listener(listener, config).unwrap();
        let addr = server.local_addr();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Self {
            addr,
            shutdown,
            task: Some(task),
            events,
        }
    }

    async fn stop(mut self) {
        self.shutdown.trigger();
        let task = self.task.take().unwrap();
        tokio::time::timeout(T, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, w) = s.into_split();
        Self {
            r: BufReader::new(r),
            w,
        }
    }

    /// Connect and read the welcome line; returns the client and its nick.
    async fn join(addr: SocketAddr) -> (Self, String) {
        let mut c = Self::connect(addr).await;
        let welcome = c.line().await;
        let nick = welcome
            .strip_prefix("*** welcome, you are ")
            .and_then(|s| s.split(';').next())
            .unwrap_or_else(|| panic!("no welcome: {welcome:?}"))
            .to_owned();
        (c, nick)
    }

    async fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut s = String::new();
        let n = tokio::time::timeout(T, self.r.read_line(&mut s))
            .await
            .expect("line within timeout")
            .unwrap();
        assert!(n > 0, "unexpected EOF");
        s.trim_end_matches('\n').to_owned()
    }

    /// Read lines until one matches `pred`; returns it.
    async fn until(&mut self, pred: impl Fn(&str) -> bool) -> String {
        for _ in 0..100_000 {
            let l = self.line().await;
            if pred(&l) {
                return l;
            }
        }
        panic!("no matching line");
    }

    /// Read to EOF (bounded by time); returns everything.
    async fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = tokio::time::timeout(T, self.r.read_to_string(&mut s)).await;
        s
    }
}

#[tokio::test]
async fn commands_and_messages() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, na) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    assert_ne!(na, nb);
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));

    a.send("hello there\n").await;
    assert_eq!(b.line().await, format!("<{na}> hello there"));

    a.send("/nick Alice\n").await;
    assert_eq!(a.line().await, "*** you are now known as Alice");
    assert_eq!(b.line().await, format!("*** {na} is now known as Alice"));
    b.send("/nick alice\n").await;
    assert_eq!(
        b.line().await,
        "*** cannot change nickname: nickname Alice is taken"
    );
    b.send("/nick 9lives\n").await;
    assert!(b.line().await.starts_with("*** cannot change nickname"));
    b.send("/who\n").await;
    assert_eq!(b.line().await, format!("*** 2 online: Alice, {nb}"));
    b.send("/me waves\n").await;
    assert_eq!(a.line().await, format!("* {nb} waves"));
    b.send("/msg ALICE psst\n").await;
    assert_eq!(a.line().await, format!("*{nb}* psst"));
    assert_eq!(b.line().await, "-> *Alice* psst");
    b.send("/msg nobody hi\n").await;
    assert_eq!(b.line().await, "*** no such nickname: nobody");
    b.send("/frob\n").await;
    assert_eq!(
        b.line().await,
        "*** unknown command /frob; /help lists commands"
    );
    b.send("//slash\n").await;
    assert_eq!(a.line().await, format!("<{nb}> /slash"));
    b.send("/help\n").await;
    assert_eq!(b.line().await, "*** commands:");
    b.until(|l| l.contains("//TEXT")).await;
    b.send("/quit gone fishing\n").await;
    assert_eq!(
        a.line().await,
        format!("*** {nb} left (quit: gone fishing)")
    );
    assert_eq!(b.rest().await, "");
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Nick { new, .. } if new == "Alice"))
    );
    assert!(
        ev.iter().any(
            |e| matches!(e, ChatEvent::Leave { reason, .. } if reason == "quit: gone fishing")
        )
    );
    srv.stop().await;
}

#[tokio::test]
async fn escaping_crlf_and_invalid_utf8() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, na) = Client::join(srv.addr).await;
    let (mut b, _) = Client::join(srv.addr).await;
    a.line().await;
    b.w.write_all(b"x\x1b[31mred\xff\r\n").await.unwrap();
    assert_eq!(a.line().await, format!("<user2> x\\x1b[31mred\\xff"));
    // b sent CRLF, so b now gets CRLF line ends.
    a.send("caf\u{e9}\n").await;
    assert_eq!(b.line().await, format!("<{na}> caf\u{e9}\r"));
    srv.stop().await;
}

#[tokio::test]
async fn oversized_lines_are_cut_with_a_notice() {
    let srv = Server::start(ChatConfig {
        max_line: 100,
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    a.line().await;
    let long = "y".repeat(100_000);
    b.send(&format!("{long}\nafter\n")).await;
    assert_eq!(a.line().await, format!("<{nb}> {}", "y".repeat(100)));
    assert_eq!(a.line().await, format!("<{nb}> after"));
    assert_eq!(
        b.line().await,
        "*** your line was longer than 100 bytes and was cut"
    );
    srv.stop().await;
}

/// Many senders at once: every line reaches every other client intact, and
/// each sender's lines arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_every_line_intact_and_in_order() {
    const CLIENTS: usize = 24;
    const LINES: usize = 300;
    let srv = Server::start(ChatConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::join(srv.addr).await);
    }
    // Everyone is a member once its welcome arrived.
    let mut tasks = Vec::new();
    for (c, nick) in clients {
        tasks.push(tokio::spawn(async move {
            let Client { mut r, mut w } = c;
            let writer = tokio::spawn(async move {
                let mut buf = String::new();
                for i in 0..LINES {
                    // Lines of varied length, some long, written in odd chunks.
                    buf.push_str(&format!("{nick} {i} {}\n", "p".repeat(i * 7 % 1500)));
                    if buf.len() > 3000 || i == LINES - 1 {
                        w.write_all(buf.as_bytes()).await.unwrap();
                        buf.clear();
                    }
                }
                w
            });
            let mut next: std::collections::HashMap<String, usize> = Default::default();
            let mut got = 0;
            let mut line = String::new();
            while got < (CLIENTS - 1) * LINES {
                line.clear();
                let n = tokio::time::timeout(T * 3, r.read_line(&mut line))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0);
                let l = line.trim_end_matches('\n');
                let Some(body) = l.strip_prefix('<') else {
                    continue;
                };
                let (from, text) = body.split_once("> ").unwrap();
                let mut parts = text.splitn(3, ' ');
                assert_eq!(parts.next().unwrap(), from, "corrupted: {l:?}");
                let i: usize = parts.next().unwrap().parse().unwrap();
                assert_eq!(parts.next().unwrap(), "p".repeat(i * 7 % 1500), "corrupted");
                let want = next.entry(from.to_owned()).or_default();
                assert_eq!(i, *want, "out of order from {from}");
                *want += 1;
                got += 1;
            }
            let _w = writer.await.unwrap();
            got
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (CLIENTS - 1) * LINES);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_kicked_while_others_keep_receiving() {
    let srv = Server::start(ChatConfig {
        queue_limit: 64 * 1024,
        ..ChatConfig::default()
    })
    .await;
    let (mut fast, _) = Client::join(srv.addr).await;
    // The slow client never reads after its welcome.
    let (slow, slow_nick) = Client::join(srv.addr).await;
    let (mut sender, ns) = Client::join(srv.addr).await;
    fast.until(|l| l.contains(&format!("{ns} joined"))).await;
    let line = "z".repeat(1000);
    let lines = 20_000; // ~20 MB: far beyond socket buffers plus the queue.
    let writer = tokio::spawn(async move {
        for i in 0..lines {
            sender.send(&format!("{i} {line}\n")).await;
        }
        sender
    });
    let mut seen = 0;
    let mut kicked = false;
    while seen < lines {
        let l = fast.line().await;
        if l.starts_with(&format!("<{ns}> ")) {
            assert!(l.starts_with(&format!("<{ns}> {seen} ")), "{l}");
            seen += 1;
        } else if l.starts_with(&format!("*** {slow_nick} left (too slow")) {
            kicked = true;
        }
    }
    assert!(kicked, "slow client was not kicked");
    let _sender = writer.await.unwrap();
    let ev = srv.events.lock().unwrap().clone();
    assert!(ev.iter().any(
        |e| matches!(e, ChatEvent::Leave { nick, reason, .. } if *nick == slow_nick && reason.starts_with("too slow"))
    ));
    drop(slow);
    srv.stop().await;
}

#[tokio::test]
async fn full_room_denied_peer_and_idle_timeout() {
    let srv = Server::start(ChatConfig {
        max_clients: 2,
        idle_timeout: Some(Duration::from_millis(400)),
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (_b, nb) = Client::join(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    assert_eq!(
        c.line().await,
        "*** server full (2 clients), try again later"
    );
    // a keeps talking for a while, b stays silent and is timed out.
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));
    for _ in 0..8 {
        a.send("still here\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.line().await, format!("*** {nb} left (idle for 400ms)"));
    // Then a falls silent too.
    assert_eq!(a.line().await, "*** idle for 400ms, disconnecting");
    assert_eq!(a.rest().await, "");
    srv.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let denyfile = dir.path().join("deny");
    std::fs::write(&denyfile, "127.0.0.0/8\n").unwrap();
    let deny = SharedAcl::new(Acl::new(&[], &[], &[], std::slice::from_ref(&denyfile)).unwrap());
    let srv = Server::start(ChatConfig {
        access: deny.clone(),
        ..ChatConfig::default()
    })
    .await;
    let mut d = Client::connect(srv.addr).await;
    assert_eq!(d.rest().await, "");
    // Swap the list at run time (what SIGHUP does).
    std::fs::write(&denyfile, "# nobody\n").unwrap();
    deny.reload().unwrap();
    let (_e, _) = Client::join(srv.addr).await;
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Refused { reason, .. } if reason == "denied"))
    );
    srv.stop().await;
}

#[tokio::test]
async fn rate_limit_slows_without_dropping() {
    let srv = Server::start(ChatConfig {
        rate: Some(Rate {
            per_sec: 40.0,
            burst: 5.0,
        }),
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    a.line().await;
    let start = std::time::Instant::now();
    let burst: String = (0..25).map(|i| format!("m{i}\n")).collect();
    b.send(&burst).await;
    for i in 0..25 {
        assert_eq!(a.line().await, format!("<{nb}> m{i}"));
    }
    let took = start.elapsed();
    // 20 lines over the burst at 40/s: about half a second.
    assert!(took >= Duration::from_millis(400), "{took:?}");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_and_closes() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));
    srv.stop().await;
    assert_eq!(a.rest().await, format!("{SHUTDOWN_NOTICE}\n"));
    assert_eq!(b.rest().await, format!("{SHUTDOWN_NOTICE}\n"));
}

#[tokio::test]
async fn broker_fans_out_raw_bytes() {
    let srv = Server::start(ChatConfig {
        mode: Mode::Broker,
        ..ChatConfig::default()
    })
    .await;
    let mut a = Client::connect(srv.addr).await;
    let mut b = Client::connect(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    // Wait until all three joined.
    for _ in 0..100 {
        if srv
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ChatEvent::Join { .. }))
            .count()
            == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    a.w.write_all(&data).await.unwrap();
    for r in [&mut b, &mut c] {
        let mut got = vec![0u8; data.len()];
        tokio::time::timeout(T, r.r.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(got == data, "broker changed the bytes");
    }
    b.w.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    a.r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"x");
    srv.stop().await;
    // The broker adds nothing to the stream on shutdown: it just closes.
    assert_eq!(c.rest().await, "x");
}

/// Regression: a client refused by a full broker, or timed out as idle, got
/// the chat's text notices ("*** server full …", "*** idle for …") as if
/// they were data from another client.
#[tokio::test]
async fn broker_refuses_and_times_out_without_adding_bytes() {
    let srv = Server::start(ChatConfig {
        mode: Mode::Broker,
        max_clients: 1,
        idle_timeout: Some(Duration::from_millis(300)),
        ..ChatConfig::default()
    })
    .await;
    let mut a = Client::connect(srv.addr).await;
    for _ in 0..100 {
        if srv.events.lock().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut b = Client::connect(srv.addr).await;
    assert_eq!(b.rest().await, "");
    // a stays silent and is timed out: the connection just closes.
    assert_eq!(a.rest().await, "");
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Refused { reason, .. } if reason == "full")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Leave { reason, .. } if reason.starts_with("idle"))),
        "{ev:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn operator_participates_through_any_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = ChatServer::from_listener(listener, ChatConfig::default()).unwrap();
    let addr = server.local_addr();
    let (op_side, server_side) = tokio::io::duplex(4096);
    let (sr, sw) = tokio::io::split(server_side);
    server.add_participant(sr, sw, Some("operator".into()));
    let shutdown = Shutdown::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let (mut op_r, mut op_w) = tokio::io::split(op_side);
    let mut op_r = BufReader::new(&mut op_r);
    let mut l = String::new();
    op_r.read_line(&mut l).await.unwrap();
    assert!(l.starts_with("*** welcome, you are operator"), "{l}");
    let (mut a, na) = Client::join(addr).await;
    l.clear();
    op_r.read_line(&mut l).await.unwrap();
    assert_eq!(l, format!("*** {na} joined (2 online)\n"));
    op_w.write_all(b"hi from the console\n").await.unwrap();
    assert_eq!(a.line().await, "<operator> hi from the console");
    a.send("hi back\n").await;
    l.clear();
    op_r.read_line(&mut l).await.unwrap();
    assert_eq!(l, format!("<{na}> hi back\n"));
    shutdown.trigger();
    tokio::time::timeout(T, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn tls_chat() {
    let files = crate::tls::testcert::write();
    let acceptor = crate::tls::ServerTls {
        cert: files.cert.clone(),
        key: files.key.clone(),
    }
    .acceptor()
    .unwrap();
    let srv = Server::start(ChatConfig {
        tls: Some(acceptor),
        ..ChatConfig::default()
    })
    .await;
    let connector = crate::tls::ClientTls {
        ca: Some(files.cert.clone()),
        insecure: false,
    }
    .connector()
    .unwrap();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let tls = crate::tls::connect(&connector, "localhost", tcp)
            .await
            .unwrap();
        let (r, w) = tokio::io::split(tls);
        let mut r = BufReader::new(r);
        let mut l = String::new();
        r.read_line(&mut l).await.unwrap();
        assert!(l.starts_with("*** welcome"), "{l}");
        clients.push((r, w));
    }
    clients[1].1.write_all(b"secret\n").await.unwrap();
    let mut l = String::new();
    loop {
        l.clear();
        clients[0].0.read_line(&mut l).await.unwrap();
        if l.starts_with('<') {
            break;
        }
    }
    assert_eq!(l, "<user2> secret\n");
    // A plain-text client is refused without disturbing anyone.
    let mut plain = Client::connect(srv.addr).await;
    plain.send("hello\n").await;
    let _ = plain.rest().await;
    srv.stop().await;
}
