//! In-process tests of the chat and broker servers over loopback: the
//! harness (a server task, line clients), and the tests by theme.
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
use crate::net::ServerOptions;
use crate::net::acl::{Acl, SharedAcl};

const T: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<ChatReport, ChatError>>>,
    events: Arc<Mutex<Vec<ChatEvent>>>,
}

impl Server {
    async fn start(mut config: ChatConfig) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        config.events = Arc::new(move |e: &ChatEvent| ev.lock().unwrap().push(e.clone()));
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

    /// Wait (bounded) until `n` clients have joined.
    async fn joins(&self, n: usize) {
        for _ in 0..500 {
            let joined = self
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, ChatEvent::Join { .. }))
                .count();
            if joined >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{n} clients did not join");
    }

    async fn stop(mut self) -> ChatReport {
        self.shutdown.trigger();
        let task = self.task.take().unwrap();
        tokio::time::timeout(T, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
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
        Self::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Connect from `source` (another loopback address), with a receive
    /// buffer of about `rcvbuf` bytes when given (a reader that falls
    /// behind fills the server's queue sooner).
    async fn connect_from(addr: SocketAddr, source: &str, rcvbuf: Option<u32>) -> Self {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        if let Some(n) = rcvbuf {
            sock.set_recv_buffer_size(n).unwrap();
        }
        Self::from_stream(sock.connect(addr).await.unwrap())
    }

    fn from_stream(s: TcpStream) -> Self {
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

mod broker;
mod cluster_drop;
mod drain;
mod limits;
mod messages;
mod participants;
mod slow;
