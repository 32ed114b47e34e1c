//! The daemon layer shared by every server: live statistics, reload
//! notifications, and (being written) daemonizing, pid files, privilege drop
//! and signal handling.

pub mod stats;

pub use stats::{ServerStats, StatsSnapshot};

use tokio::sync::watch;

/// Tells a running server that its configuration files (allow/deny lists)
/// should be re-read: the CLI bumps it on SIGHUP.
#[derive(Clone, Debug)]
pub struct Reload {
    rx: watch::Receiver<u64>,
}

/// The sending side of [`Reload`].
#[derive(Debug)]
pub struct ReloadTrigger {
    tx: watch::Sender<u64>,
}

/// A connected reload trigger and receiver.
pub fn reload_channel() -> (ReloadTrigger, Reload) {
    let (tx, rx) = watch::channel(0);
    (ReloadTrigger { tx }, Reload { rx })
}

impl ReloadTrigger {
    /// Ask every receiver to reload.
    pub fn trigger(&self) {
        self.tx.send_modify(|g| *g += 1);
    }
}

impl Reload {
    /// A receiver that never fires (for servers run without a daemon layer).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(0);
        // Keep the sender alive forever so `changed` pends instead of erroring.
        std::mem::forget(tx);
        Self { rx }
    }

    /// Wait for the next reload request. Pends forever when the trigger is gone.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
