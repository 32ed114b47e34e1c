//! Building the tokio runtime and wiring OS signals to a [`Shutdown`].
//!
//! The runtime is built by each async subcommand *after* any daemon fork, so
//! no runtime threads exist when the process forks.

use std::future::Future;

use sockbox::Shutdown;

/// Build the multi-threaded runtime every async subcommand uses.
pub fn build() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Build a multi-threaded runtime and run `fut` to completion on it.
pub fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    Ok(build()?.block_on(fut))
}

/// Trigger `shutdown` on SIGINT or SIGTERM. A second SIGINT exits at once
/// with code 130. Must be called inside a runtime.
pub fn shutdown_on_signals(shutdown: &Shutdown) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let sd = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        sd.trigger();
        if int.recv().await.is_some() {
            std::process::exit(130);
        }
    });
    Ok(())
}
