//! The listener's [`DatagramHandler`]: report each datagram, answer it
//! (echo, fixed text) on the receive loop, or run a program for it on a
//! task of its own within a bounded number of slots.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::{ListenConfig, ListenEvent, ReplyMode};
use crate::Shutdown;
use crate::event::Events;
use crate::net::{Answer, Datagram, DatagramCtx, DatagramHandler};
use crate::udp::Error;
use crate::udp::exec::{self, ExecConfig};

/// Answers datagrams as [`ReplyMode`] says.
pub(super) struct Responder {
    reply: ReplyMode,
    slots: Arc<Semaphore>,
    count: Option<u64>,
    /// Datagrams seen (also those past `count`).
    seen: AtomicU64,
    /// Datagrams reported.
    handled: AtomicU64,
    busy: AtomicU64,
    events: Events<ListenEvent>,
    /// Fired when `count` datagrams came.
    stop: OnceLock<Shutdown>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("reply", &self.reply)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// A copy of a send error for an event (an `io::Error` is not `Clone`).
fn copy(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl Responder {
    pub(super) fn new(cfg: &ListenConfig) -> Self {
        Self {
            reply: cfg.reply.clone(),
            slots: Arc::new(Semaphore::new(
                cfg.max_children.clamp(1, Semaphore::MAX_PERMITS),
            )),
            count: cfg.count,
            seen: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            events: cfg.events.clone(),
            stop: OnceLock::new(),
        }
    }

    /// Stop the server through `stop` once `count` datagrams came.
    pub(super) fn stop_with(&self, stop: Shutdown) {
        let _ = self.stop.set(stop);
    }

    pub(super) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub(super) fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    /// False for a datagram past `count` (it arrived before the receive
    /// loop saw the stop); the last one wanted fires the stop.
    fn wanted(&self) -> bool {
        let Some(max) = self.count else {
            return true;
        };
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n == max
            && let Some(stop) = self.stop.get()
        {
            stop.trigger();
        }
        n <= max
    }

    /// Run the program for `dg` on a task of its own, if a slot is free.
    fn spawn_program(&self, cfg: &ExecConfig, dg: &Datagram<'_>, ctx: &DatagramCtx) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            ctx.stats().refused();
            self.busy.fetch_add(1, Ordering::Relaxed);
            self.events.on_event(&ListenEvent::Busy { from: dg.peer });
            return;
        };
        let cfg = cfg.clone();
        let payload = dg.payload.to_vec();
        // The program sees the address it was asked on.
        let (peer, here) = (dg.peer, dg.here());
        let replier = ctx.replier(dg);
        let events = self.events.clone();
        ctx.spawn(async move {
            let _permit = permit;
            let event = match exec::run(&cfg, &payload, peer, here).await {
                // No output: no answer, and nothing went wrong.
                Ok(out) if out.is_empty() => return,
                Ok(out) => match replier.send(&out).await {
                    Ok(len) => ListenEvent::Replied { to: peer, len },
                    Err(e) => ListenEvent::ReplyFailed {
                        to: peer,
                        error: Error::Send(e, peer),
                    },
                },
                Err(e) => ListenEvent::ReplyFailed {
                    to: peer,
                    error: Error::Exec(e),
                },
            };
            events.on_event(&event);
        });
    }
}

impl DatagramHandler for Responder {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, ctx: &DatagramCtx) -> Answer<'a> {
        if !self.wanted() {
            return Answer::Nothing;
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.events.on_event(&ListenEvent::Datagram {
            from: dg.peer,
            to: dg.dst,
            payload: Bytes::copy_from_slice(dg.payload),
        });
        match &self.reply {
            ReplyMode::None => Answer::Nothing,
            ReplyMode::Echo => Answer::Reply(dg.payload),
            ReplyMode::Text(t) => Answer::Reply(t),
            ReplyMode::Exec(cfg) => {
                self.spawn_program(cfg, dg, ctx);
                Answer::Nothing
            }
        }
    }

    fn answered(&self, to: SocketAddr, result: &io::Result<usize>) {
        self.events.on_event(&match result {
            Ok(len) => ListenEvent::Replied { to, len: *len },
            Err(e) => ListenEvent::ReplyFailed {
                to,
                error: Error::Send(copy(e), to),
            },
        });
    }

    fn denied(&self, from: SocketAddr, len: usize) {
        self.events.on_event(&ListenEvent::Denied { from, len });
    }
}
