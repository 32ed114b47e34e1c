//! A clustered server that goes away stops dialling NATS.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::*;
use crate::chat::cluster::ClusterConfig;

/// A "NATS server" that accepts connections and never says a word (each
/// attempt times out), counting the attempts.
async fn silent_server() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            seen.fetch_add(1, Relaxed);
            held.push(s);
            held.truncate(64);
        }
    });
    (addr, count, task)
}

async fn attempts_reach(count: &AtomicUsize, n: usize) {
    for _ in 0..200 {
        if count.load(Relaxed) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("only {} connection attempts in 10 s", count.load(Relaxed));
}

/// A chat server joined to a room through `nats`, which never answers:
/// it starts split and keeps trying in the background.
async fn split_server(nats: SocketAddr) -> ChatServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut server = ChatServer::from_listener(listener, ChatConfig::default()).unwrap();
    let mut cluster = ClusterConfig::new(vec![format!("nats://{nats}")], "drop");
    cluster.connect_timeout = Duration::from_millis(200);
    server.join_cluster(cluster).await.unwrap();
    server
}

/// After the server is gone, a retry already waiting (at most a second,
/// plus the attempt's own 200 ms) may still go out; after that, none.
async fn no_more_attempts(count: &AtomicUsize) {
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let settled = count.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count.load(Relaxed), settled, "still dialling NATS");
}

/// A server started split (no NATS answered) keeps trying in the
/// background while it runs; once its run is dropped (not shut down: the
/// future is simply gone, as a library user may do), the attempts stop.
#[tokio::test]
async fn a_dropped_cluster_server_stops_trying_to_reach_nats() {
    let (nats, count, fake) = silent_server().await;
    let server = split_server(nats).await;
    assert!(server.is_split());
    let run = tokio::spawn(server.run(Shutdown::new()));
    // The first try, then the background retries.
    attempts_reach(&count, 3).await;
    run.abort();
    let _ = run.await;
    no_more_attempts(&count).await;
    fake.abort();
}

/// The same for a server dropped before it ever ran.
#[tokio::test]
async fn a_cluster_server_dropped_before_running_stops_trying() {
    let (nats, count, fake) = silent_server().await;
    let server = split_server(nats).await;
    attempts_reach(&count, 3).await;
    drop(server);
    no_more_attempts(&count).await;
    fake.abort();
}
