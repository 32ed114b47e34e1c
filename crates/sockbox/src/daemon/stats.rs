//! Live server statistics: counters every server updates and SIGUSR1 logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Counters shared between a server and whoever reports on it. Cheap to
/// clone (an `Arc`); all updates are relaxed atomics.
#[derive(Clone, Debug)]
pub struct ServerStats {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    accepted: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A point-in-time copy of [`ServerStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Time since the server started.
    #[serde(serialize_with = "ser_secs")]
    pub uptime: Duration,
    /// Connections (or peers) accepted so far.
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections refused (limits, allow/deny).
    pub refused: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for ServerStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerStats {
    /// Fresh counters; uptime starts now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                accepted: AtomicU64::new(0),
                active: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
            }),
        }
    }

    /// A connection was accepted; the returned guard counts it as active
    /// until dropped.
    pub fn connection(&self) -> ActiveGuard {
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        self.inner.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard {
            stats: self.clone(),
        }
    }

    /// A connection was refused.
    pub fn refused(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` bytes came in from a client.
    pub fn add_in(&self, n: u64) {
        self.inner.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes went out to a client.
    pub fn add_out(&self, n: u64) {
        self.inner.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Read all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let i = &self.inner;
        StatsSnapshot {
            uptime: i.started.elapsed(),
            accepted: i.accepted.load(Ordering::Relaxed),
            active: i.active.load(Ordering::Relaxed),
            refused: i.refused.load(Ordering::Relaxed),
            bytes_in: i.bytes_in.load(Ordering::Relaxed),
            bytes_out: i.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// Counts one active connection while alive.
#[derive(Debug)]
pub struct ActiveGuard {
    stats: ServerStats,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.stats.inner.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_tracks_active_connections() {
        let s = ServerStats::new();
        let g1 = s.connection();
        let g2 = s.connection();
        s.add_in(10);
        s.add_out(5);
        s.refused();
        assert_eq!(s.snapshot().active, 2);
        drop(g1);
        drop(g2);
        let snap = s.snapshot();
        assert_eq!((snap.accepted, snap.active, snap.refused), (2, 0, 1));
        assert_eq!((snap.bytes_in, snap.bytes_out), (10, 5));
    }
}
