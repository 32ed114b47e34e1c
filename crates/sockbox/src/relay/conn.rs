//! What every connection of a relay server shares, and the three ways a
//! connection is relayed: to a program, to standard input/output shared by
//! every client, or (a single client) through the blocking pump.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::config::{ListenConfig, Local};
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::event::RelayEvent;
use super::exec::{Program, relay_program};
use super::hub::{Hub, stdin_chunks};
use super::pump::{PumpEnds, PumpExtras, Stopper, pump, stdio_fds};
use super::session::{self, Ends, Extras};
use super::{Flow, Peer, RelayError, RelayOptions, Report};
use crate::Shutdown;

/// The context shared by the connections of one relay server.
pub(crate) struct Shared {
    /// The server's bound address (for the program's environment).
    pub(crate) local_addr: Peer,
    local: Local,
    opts: RelayOptions,
    pub(crate) extras: Extras,
    hub: Option<Hub>,
    once: bool,
    single: Mutex<Option<Result<Report, RelayError>>>,
    served: AtomicU64,
    refused: AtomicU64,
}

/// The remote side of one connection, for the async engine.
pub(crate) struct Remote {
    pub(crate) peer: Peer,
    pub(crate) read: RemoteIn,
    pub(crate) write: RemoteOut,
    /// `tcp`, `tls`, `udp`, `unix` or `unixgram`, for the program's environment.
    pub(crate) proto: &'static str,
    /// Data already received (a UDP peer's first datagram).
    pub(crate) first: Option<Bytes>,
    /// This end of the connection, when it differs from the server's
    /// bound address (a TCP connection accepted on a wildcard).
    pub(crate) local: Option<Peer>,
}

impl Shared {
    /// The context for `cfg`, bound at `local_addr`.
    pub(crate) fn new(cfg: &ListenConfig, local_addr: Peer) -> Arc<Self> {
        let once = cfg.server.once;
        let mut opts = cfg.opts.clone();
        opts.end_on_remote_eof = match cfg.local {
            Local::Exec(_) => false,
            Local::Stdio => once && opts.flow != Flow::SendOnly,
        };
        let hub = (!once && cfg.local == Local::Stdio)
            .then(|| Hub::new(opts.flow != Flow::RecvOnly, cfg.events.clone()));
        Arc::new(Self {
            local_addr,
            local: cfg.local.clone(),
            opts,
            extras: Extras {
                dump: cfg.dump.clone(),
                stats: Some(cfg.server.stats.clone()),
                events: cfg.events.clone(),
            },
            hub,
            once,
            single: Mutex::new(None),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// True for a single-client server.
    pub(crate) fn once(&self) -> bool {
        self.once
    }

    /// True when each client gets its own program.
    pub(crate) fn runs_programs(&self) -> bool {
        matches!(self.local, Local::Exec(_))
    }

    /// Count a client served.
    pub(crate) fn count_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a client refused (beyond what the accept loop counts).
    pub(crate) fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Clients served and refused so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.served.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// One connection ended: a single-client server keeps the result for
    /// `run` to return; otherwise it becomes an event.
    pub(crate) fn finished(&self, peer: Peer, result: Result<Report, RelayError>) {
        let events = &self.extras.events;
        if let Ok(report) = &result {
            events.on_event(&RelayEvent::Closed {
                peer: peer.clone(),
                report: *report,
            });
        }
        if self.once {
            *self.single.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        } else if let Err(error) = result {
            events.on_event(&RelayEvent::Failed { peer, error });
        }
    }

    /// The single client's result, once it ended.
    pub(crate) fn take_single(&self) -> Option<Result<Report, RelayError>> {
        self.single
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Relay one connection with the async engine, to whatever the local
    /// side is. `stop` ends it (and cuts its program short).
    pub(crate) async fn relay(
        &self,
        remote: Remote,
        stop: &Shutdown,
    ) -> Result<Report, RelayError> {
        let Remote {
            peer,
            read,
            write,
            proto,
            first,
            local,
        } = remote;
        if let Local::Exec(spec) = &self.local {
            let prog = Program {
                spec,
                peer,
                local: Some(local.unwrap_or_else(|| self.local_addr.clone())),
                proto,
            };
            let (opts, extras) = (&self.opts, &self.extras);
            return relay_program(
                prog,
                (read, write),
                opts,
                extras,
                first.as_deref(),
                stop,
                stop,
            )
            .await;
        }
        let mut opts = self.opts.clone();
        let (local_in, local_out, kick, _member) = if let Some(hub) = &self.hub {
            let kick = stop.child();
            let (member, chunks) = hub.join(peer.clone(), kick.clone());
            opts.end_on_remote_eof = !write.is_datagram();
            let out = LocalOut::Shared(Arc::clone(&hub.stdout));
            (LocalIn::Chunks(chunks), out, kick, Some(member))
        } else {
            let out = LocalOut::Writer(Box::new(tokio::io::stdout()));
            (LocalIn::Chunks(stdin_chunks()), out, stop.clone(), None)
        };
        let ends = Ends {
            local_in,
            local_out,
            remote_in: read,
            remote_out: write,
            peer,
            finish_input: self.hub.is_none(),
        };
        session::run(ends, &opts, &self.extras, first.as_deref(), &kick).await
    }

    /// Relay one connected socket to standard input/output with the
    /// blocking pump, on a blocking thread; `stop` stops it.
    pub(crate) async fn pump(
        &self,
        socket: OwnedFd,
        peer: (Peer, bool),
        initial_rx: Vec<u8>,
        stop: &Shutdown,
    ) -> Result<Report, RelayError> {
        self.pump_with(socket, peer, initial_rx, stop, false).await
    }

    /// [`Shared::pump`]; `recv_only` never sends (a peer that cannot be
    /// answered).
    pub(crate) async fn pump_with(
        &self,
        socket: OwnedFd,
        (peer, datagram): (Peer, bool),
        initial_rx: Vec<u8>,
        stop: &Shutdown,
        recv_only: bool,
    ) -> Result<Report, RelayError> {
        let (input, output) = stdio_fds()?;
        let stopper = Stopper::new()?;
        let ends = PumpEnds {
            input,
            output,
            socket,
            peer,
            datagram,
        };
        let extras = PumpExtras {
            dump: self.extras.dump.clone(),
            stats: self.extras.stats.clone(),
            initial_rx,
        };
        let mut opts = self.opts.clone();
        if recv_only {
            opts.flow = Flow::RecvOnly;
        }
        let worker = stopper.clone();
        let job = tokio::task::spawn_blocking(move || pump(ends, &opts, &extras, &worker));
        let watcher = {
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.wait().await;
                stopper.stop();
            })
        };
        let r = job.await;
        watcher.abort();
        r.map_err(|e| RelayError::Setup(std::io::Error::other(e)))?
    }
}
