//! Shared standard input and output for a server with many clients
//! (`listen -k` without `-e`): each chunk of stdin goes to every client,
//! each client's data goes to stdout a whole chunk at a time.
//!
//! Stdin is read only once the first client joins. A client whose queue
//! stays full for [`SLOW`] is disconnected rather than holding up the others.
//! At stdin EOF every client's queue closes (its session half-closes) and
//! later clients get EOF at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Peer;
use super::ends::{BoxWrite, SharedWrite};
use super::event::RelayEvent;
use crate::Shutdown;
use crate::event::Events;

/// How long a client may keep its stdin queue full before it is dropped.
pub(crate) const SLOW: Duration = Duration::from_secs(10);
const QUEUE: usize = 64;

struct Member {
    tx: Option<mpsc::Sender<Bytes>>,
    peer: Peer,
    kick: Shutdown,
}

#[derive(Default)]
struct Inner {
    next: u64,
    members: HashMap<u64, Member>,
    eof: bool,
    reading: bool,
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<Mutex<Inner>>,
    read_stdin: bool,
    events: Events<RelayEvent>,
    /// Shared standard output.
    pub(crate) stdout: SharedWrite,
}

/// Membership of one client; leaving on drop.
pub(crate) struct Membership {
    hub: Hub,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Ok(mut i) = self.hub.inner.lock() {
            i.members.remove(&self.id);
        }
    }
}

impl Hub {
    /// A hub over the process's stdin/stdout; `read_stdin` false never
    /// reads it. Slow clients are reported to `events`.
    pub(crate) fn new(read_stdin: bool, events: Events<RelayEvent>) -> Self {
        let out: BoxWrite = Box::new(tokio::io::stdout());
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            read_stdin,
            events,
            stdout: Arc::new(tokio::sync::Mutex::new(out)),
        }
    }

    /// Join: returns the membership and the client's stdin queue. `kick`
    /// fires if the client is too slow.
    pub(crate) fn join(&self, peer: Peer, kick: Shutdown) -> (Membership, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut start = false;
        let id = {
            let Ok(mut i) = self.inner.lock() else {
                return (
                    Membership {
                        hub: self.clone(),
                        id: u64::MAX,
                    },
                    rx,
                );
            };
            let id = i.next;
            i.next += 1;
            let tx = (!i.eof && self.read_stdin).then_some(tx);
            i.members.insert(id, Member { tx, peer, kick });
            if self.read_stdin && !i.reading {
                i.reading = true;
                start = true;
            }
            id
        };
        if start {
            tokio::spawn(self.clone().read_loop());
        }
        (
            Membership {
                hub: self.clone(),
                id,
            },
            rx,
        )
    }

    async fn read_loop(self) {
        let mut input = stdin_chunks();
        loop {
            let Some(chunk) = input.recv().await else {
                if let Ok(mut i) = self.inner.lock() {
                    i.eof = true;
                    for m in i.members.values_mut() {
                        m.tx = None;
                    }
                }
                return;
            };
            let targets: Vec<(mpsc::Sender<Bytes>, Peer, Shutdown)> = match self.inner.lock() {
                Ok(i) => i
                    .members
                    .values()
                    .filter_map(|m| m.tx.clone().map(|t| (t, m.peer.clone(), m.kick.clone())))
                    .collect(),
                Err(_) => return,
            };
            for (tx, peer, kick) in targets {
                if tokio::time::timeout(SLOW, tx.send(chunk.clone()))
                    .await
                    .is_err()
                {
                    let waited = SLOW;
                    self.events.on_event(&RelayEvent::TooSlow { peer, waited });
                    kick.trigger();
                }
            }
        }
    }
}

/// Standard input as a stream of chunks, read by a plain thread (not the
/// runtime's blocking pool, whose shutdown would wait for a read that may
/// never return). The channel closes at EOF or on a read error.
pub(crate) fn stdin_chunks() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let spawned = std::thread::Builder::new()
        .name("relay-stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("reading standard input: {e}; treating it as its end");
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the stdin reader: {e}; no input will be sent");
    }
    rx
}
