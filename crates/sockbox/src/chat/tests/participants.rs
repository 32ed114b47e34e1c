//! Other ways in: the operator's own stream (`--stdin`) and TLS clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

type OpReader = BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>;
type OpWriter = tokio::io::WriteHalf<tokio::io::DuplexStream>;

/// A server under `config` with the operator on an in-memory stream,
/// running, its welcome read.
struct Operated {
    addr: SocketAddr,
    r: OpReader,
    w: OpWriter,
    shutdown: Shutdown,
    task: JoinHandle<Result<ChatReport, ChatError>>,
}

impl Operated {
    async fn start(config: ChatConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = ChatServer::from_listener(listener, config).unwrap();
        let addr = server.local_addr();
        let (op_side, server_side) = tokio::io::duplex(4096);
        let (sr, sw) = tokio::io::split(server_side);
        server.add_participant(sr, sw, Some("operator".into()));
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        let (r, w) = tokio::io::split(op_side);
        let mut op = Self {
            addr,
            r: BufReader::new(r),
            w,
            shutdown,
            task,
        };
        let l = op.line().await;
        assert!(l.starts_with("*** welcome, you are operator"), "{l}");
        op
    }

    /// The operator's next line, with its newline.
    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        l
    }

    async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(T, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// The operator is a participant like any client, but not a network one:
/// a slow line from its terminal is not cut by the line timeout.
#[tokio::test]
async fn operator_participates_through_any_stream() {
    let mut op = Operated::start(ChatConfig {
        line_timeout: Some(Duration::from_millis(200)),
        ..ChatConfig::default()
    })
    .await;
    let (mut a, na) = Client::join(op.addr).await;
    assert_eq!(op.line().await, format!("*** {na} joined (2 online)\n"));
    op.w.write_all(b"hi from ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.w.write_all(b"the console\n").await.unwrap();
    assert_eq!(a.line().await, "<operator> hi from the console");
    a.send("hi back\n").await;
    assert_eq!(op.line().await, format!("<{na}> hi back\n"));
    op.stop().await;
}

/// The idle timeout is for network clients: the operator may just read.
#[tokio::test]
async fn the_operator_is_not_disconnected_for_being_idle() {
    let mut op = Operated::start(ChatConfig {
        idle_timeout: Some(Duration::from_millis(200)),
        ..ChatConfig::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    op.w.write_all(b"/who\n").await.unwrap();
    let l = op.line().await;
    assert!(l.contains("operator") && !l.contains("idle"), "{l}");
    op.stop().await;
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
