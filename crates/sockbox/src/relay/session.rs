//! The async engine: one relayed connection between a [`LocalIn`]/[`LocalOut`]
//! pair and a [`RemoteIn`]/[`RemoteOut`] pair, under the same lifecycle rules
//! as the blocking pump.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::dump::{Dir, Dump};
use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::life::{Activity, Life, Step};
use super::pump::peer_error;
use super::{Flow, Outcome, RelayError, RelayOptions, Report};
use crate::Shutdown;
use crate::daemon::ServerStats;

/// Everything one session moves data between.
pub(crate) struct Ends {
    pub(crate) local_in: LocalIn,
    pub(crate) local_out: LocalOut,
    pub(crate) remote_in: RemoteIn,
    pub(crate) remote_out: RemoteOut,
    pub(crate) peer: SocketAddr,
}

/// Extras shared by the sessions of a server.
#[derive(Clone, Default)]
pub(crate) struct Extras {
    pub(crate) dump: Option<Dump>,
    pub(crate) stats: Option<ServerStats>,
}

enum DirEnd {
    Read(io::Error),
    Write(io::Error),
}

/// Run one session until the rules end it or `stop` fires.
pub(crate) async fn run(
    ends: Ends,
    opts: &RelayOptions,
    extras: &Extras,
    initial_rx: Option<&[u8]>,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    let Ends {
        mut local_in,
        mut local_out,
        mut remote_in,
        mut remote_out,
        peer,
    } = ends;
    let datagram = remote_out.is_datagram();
    let cap = opts.buffer_size.clamp(16 * 1024, 256 * 1024);
    let activity = Activity::new();
    let sent = AtomicU64::new(0);
    let received = AtomicU64::new(0);
    let dump = extras.dump.as_ref();
    if let Some(d) = dump {
        d.opened(peer);
    }
    let mut tx_dump = dump.map(|d| d.direction(peer, Dir::Sent));
    let mut rx_dump = dump.map(|d| d.direction(peer, Dir::Received));
    if opts.flow == Flow::SendOnly {
        local_out = LocalOut::Discard;
    }
    let account = |n: usize, counter: &AtomicU64, inbound: bool| {
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
        if let Some(s) = &extras.stats {
            if inbound {
                s.add_in(n as u64);
            } else {
                s.add_out(n as u64);
            }
        }
    };

    let tx = async {
        let mut buf = Vec::with_capacity(cap);
        loop {
            let n = local_in
                .read_chunk(&mut buf, cap)
                .await
                .map_err(DirEnd::Read)?;
            if n == 0 {
                break;
            }
            remote_out.write_all(&buf).await.map_err(DirEnd::Write)?;
            if let Some(d) = &mut tx_dump {
                d.record(&buf);
            }
            account(n, &sent, false);
        }
        if opts.half_close {
            remote_out.close().await;
        }
        Ok::<(), DirEnd>(())
    };
    let rx = async {
        if let Some(first) = initial_rx {
            if let Some(d) = &mut rx_dump {
                d.record(first);
            }
            account(first.len(), &received, true);
            local_out.write_all(first).await.map_err(DirEnd::Write)?;
        }
        let mut buf = Vec::with_capacity(cap);
        loop {
            let n = remote_in
                .read_chunk(&mut buf, cap)
                .await
                .map_err(DirEnd::Read)?;
            if n == 0 {
                break;
            }
            if let Some(d) = &mut rx_dump {
                d.record(&buf);
            }
            account(n, &received, true);
            local_out.write_all(&buf).await.map_err(DirEnd::Write)?;
        }
        local_out.close().await;
        Ok::<(), DirEnd>(())
    };
    tokio::pin!(tx, rx);

    let mut life = Life::new(opts);
    let mut tx_done = opts.flow == Flow::RecvOnly;
    let mut rx_done = false;
    let mut output_closed = false;
    let counts = || {
        (
            sent.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
        )
    };
    let result: Result<Outcome, RelayError> = loop {
        let deadline = life.deadline(activity.last());
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            r = &mut tx, if !tx_done => {
                tx_done = true;
                match r {
                    Ok(()) => life.local_eof(Instant::now()),
                    Err(DirEnd::Read(e)) => break Err(RelayError::LocalRead(e)),
                    Err(DirEnd::Write(e)) => break Err(peer_error(peer, e, datagram, true, counts())),
                }
            }
            r = &mut rx, if !rx_done => {
                rx_done = true;
                match r {
                    Ok(()) => life.remote_eof(),
                    Err(DirEnd::Read(e)) => break Err(peer_error(peer, e, datagram, false, counts())),
                    Err(DirEnd::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                        // The program stopped reading; let it finish writing.
                        output_closed = true;
                        Step::Continue
                    }
                    Err(DirEnd::Write(e)) => break Err(RelayError::LocalWrite(e)),
                }
            }
            () = timer => life.on_timer(Instant::now(), activity.last()),
            () = stop.wait() => Step::Finish(Outcome::Stopped),
        };
        if let Step::Finish(o) = step {
            break Ok(o);
        }
        if tx_done && rx_done {
            break Ok(if output_closed {
                Outcome::OutputClosed
            } else {
                Outcome::Done
            });
        }
    };
    let (s, r) = counts();
    if let Some(d) = dump {
        d.closed(peer, s, r);
    }
    result.map(|outcome| Report {
        outcome,
        sent: s,
        received: r,
    })
}
