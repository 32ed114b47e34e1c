//! Unit tests of the echo server on loopback.

use super::*;
use crate::daemon::ServerStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::UdpSocket;

fn local() -> EchoConfig {
    let mut c = EchoConfig::new("127.0.0.1:0".parse().unwrap());
    c.server.grace = Duration::from_secs(2);
    c
}

fn start(
    cfg: EchoConfig,
) -> (
    SocketAddr,
    Shutdown,
    ServerStats,
    tokio::task::JoinHandle<Result<EchoReport, EchoError>>,
) {
    let stats = cfg.server.stats.clone();
    let server = EchoServer::bind(cfg).unwrap();
    let addr = server.tcp_addr().or(server.udp_addr()).unwrap();
    if let (Some(t), Some(u)) = (server.tcp_addr(), server.udp_addr()) {
        assert_eq!(t.port(), u.port(), "TCP and UDP share the port");
    }
    let sd = Shutdown::new();
    let h = tokio::spawn(server.run(sd.clone()));
    (addr, sd, stats, h)
}

#[tokio::test]
async fn tcp_and_udp_echo_on_one_port() {
    let (addr, sd, stats, h) = start(local());
    let mut c = TcpStream::connect(addr).await.unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut rd, mut wr) = c.split();
    let send = async {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = rd.read_to_end(&mut back);
    let ((), got) = tokio::join!(send, recv);
    got.unwrap();
    assert_eq!(back, data, "echoed byte for byte, and closed after our EOF");

    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(b"ping", addr).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), u.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], addr));

    sd.trigger();
    let sum = h.await.unwrap().unwrap();
    assert_eq!((sum.sessions, sum.datagrams, sum.cut_at_grace), (1, 1, 0));
    let snap = stats.snapshot();
    assert_eq!(snap.bytes_in, 100_004);
    assert_eq!(snap.bytes_out, 100_004);
    assert_eq!(snap.active, 0);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let mut cfg = local();
    cfg.server.max_conns = 1;
    cfg.udp = false;
    let (addr, sd, stats, h) = start(cfg);
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    first.read_exact(&mut b).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut b))
        .await
        .unwrap();
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the second connection is closed"
    );
    assert_eq!(stats.snapshot().refused, 1);
    sd.trigger();
    h.await.unwrap().unwrap();
}

#[tokio::test]
async fn idle_sessions_are_closed() {
    let mut cfg = local();
    cfg.idle_timeout = Some(Duration::from_millis(100));
    let (addr, sd, _stats, h) = start(cfg);
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    sd.trigger();
    h.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_closes_sessions_and_cuts_stuck_ones_at_grace() {
    let mut cfg = local();
    cfg.server.grace = Duration::from_millis(300);
    cfg.buffer_size = 64 * 1024;
    let (addr, sd, _stats, h) = start(cfg);
    // A polite client: its session ends on shutdown with EOF.
    let mut polite = TcpStream::connect(addr).await.unwrap();
    // A client that writes without reading until the server blocks.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let filled = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            stuck.write_all(&chunk).await.unwrap();
        }
    })
    .await;
    assert!(filled.is_err(), "writes eventually block");
    sd.trigger();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), polite.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "polite session closed on shutdown");
    let sum = tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(sum.cut_at_grace, 1);
}

#[tokio::test]
async fn a_taken_port_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = EchoServer::bind(EchoConfig::new(taken.local_addr().unwrap())).unwrap_err();
    assert!(
        e.to_string()
            .contains(&taken.local_addr().unwrap().to_string()),
        "{e}"
    );
    let mut off = local();
    (off.tcp, off.udp) = (false, false);
    assert!(matches!(
        EchoServer::bind(off),
        Err(EchoError::NothingToServe)
    ));
}
