//! What happens to the connections of a relay, reported to an
//! [`Observer`](crate::event::Observer) (the accept loop's own events —
//! refusals, back-off, drain — are [`ServerEvent`](crate::net::ServerEvent)s).

use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use super::{Outcome, Peer, RelayError, Report};
use crate::event::Events;

/// One thing that happened to a relayed connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A UDP peer sent its first datagram and has a session now.
    NewPeer {
        /// The peer, canonical.
        peer: Peer,
    },
    /// A connection (or UDP peer session) ended without error.
    Closed {
        /// The peer.
        peer: Peer,
        /// How it ended and what moved.
        report: Report,
    },
    /// A connection ended with an error. (A single-client server returns
    /// its client's error from `run` instead.)
    Failed {
        /// The peer.
        peer: Peer,
        /// What went wrong.
        error: RelayError,
    },
    /// The program run for a connection ended (it is always waited for).
    ProgramEnded {
        /// The peer it served.
        peer: Peer,
        /// The program, as shown to people.
        program: String,
        /// Its exit status, or why it could not be waited for.
        status: io::Result<ExitStatus>,
    },
    /// A client sharing standard input kept its queue full that long and
    /// was disconnected, so it does not hold up the others.
    TooSlow {
        /// The client.
        peer: Peer,
        /// How long it did not take its input.
        waited: Duration,
    },
    /// A datagram from a UDP peer was dropped: its session's queue was full.
    QueueFull {
        /// The peer.
        peer: Peer,
    },
}

/// "exited with status 3" / "killed by signal 9".
pub fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".to_owned(),
    }
}

/// An observer that writes [`RelayEvent`]s to `tracing` (the default).
pub fn log_events() -> Events<RelayEvent> {
    Arc::new(log_event)
}

fn log_event(e: &RelayEvent) {
    match e {
        RelayEvent::NewPeer { peer } => tracing::info!(%peer, "new peer"),
        RelayEvent::Closed { peer, report } => {
            let (sent, received) = (report.sent, report.received);
            if let Outcome::Idle(d) = report.outcome {
                tracing::info!(%peer, "closed after {d:?} idle: sent {sent}, received {received}");
            } else {
                tracing::info!(%peer, "closed: sent {sent}, received {received}");
            }
        }
        RelayEvent::Failed { peer, error } => tracing::warn!(%peer, "{error}"),
        RelayEvent::ProgramEnded {
            peer,
            program,
            status,
        } => match status {
            Ok(s) if s.success() => tracing::info!(%peer, "{program}: exited with status 0"),
            Ok(s) => tracing::warn!(%peer, "{program}: {}", describe_status(*s)),
            Err(e) => tracing::warn!(%peer, "{program}: cannot wait for it: {e}"),
        },
        RelayEvent::TooSlow { peer, waited } => tracing::warn!(
            %peer,
            "has not taken standard input for {waited:?}: disconnecting it"
        ),
        RelayEvent::QueueFull { peer } => {
            tracing::debug!(%peer, "dropped a datagram: the peer's queue is full");
        }
    }
}
