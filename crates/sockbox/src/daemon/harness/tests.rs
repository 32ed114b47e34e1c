//! Foreground runs of the harness: readiness, shutdown, grace, pid file,
//! queued output, errors.

use super::*;
use crate::daemon::lines;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A program's own error type, with its own exit codes.
#[derive(Debug)]
struct AppError(u8, String);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

impl From<DaemonError> for AppError {
    fn from(e: DaemonError) -> Self {
        Self(if e.is_usage() { 64 } else { 71 }, e.to_string())
    }
}

impl Failure for AppError {
    fn exit_code(&self) -> u8 {
        self.0
    }
}

fn daemon(grace_ms: u64) -> Daemon {
    Daemon::new()
        .grace(Duration::from_millis(grace_ms))
        .install_logger(false)
}

#[test]
fn harness_returns_after_grace_when_the_server_hangs() {
    let t0 = Instant::now();
    let code = daemon(100)
        .try_run(|mut ctx| async move {
            ctx.ready()?;
            // A blocking task that never ends (a stdin reader, say) must not
            // keep the process alive either.
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(60)));
            ctx.shutdown.trigger();
            std::future::pending::<Result<u8, DaemonError>>().await
        })
        .unwrap();
    assert_eq!(code, 0);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) + GRACE_SLACK, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn pid_file_is_released_when_the_server_fails_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let seen = pid.clone();
    let err = daemon(100)
        .pid_file(&pid)
        .try_run(|_ctx| async move {
            assert_eq!(
                std::fs::read_to_string(&seen).unwrap(),
                format!("{}\n", std::process::id())
            );
            Err::<u8, _>(AppError(5, "bad flag".into()))
        })
        .unwrap_err();
    assert_eq!((err.0, err.1.as_str()), (5, "bad flag"));
    assert!(!pid.exists(), "pid file removed after a failed start");
}

#[test]
fn a_foreground_run_is_ready_serves_until_shutdown_and_removes_its_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let seen = pid.clone();
    let code = daemon(1000)
        .pid_file(&pid)
        .try_run(|mut ctx| async move {
            assert!(!ctx.is_ready());
            ctx.ready()?;
            ctx.ready()?; // a second call does nothing
            assert!(ctx.is_ready());
            assert!(seen.exists());
            let stop = ctx.shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                stop.trigger();
            });
            ctx.shutdown.wait().await;
            Ok::<u8, BoxError>(7)
        })
        .unwrap();
    assert_eq!(code, 7, "the body's code is the run's");
    assert!(!pid.exists(), "pid file removed after a clean stop");
}

#[test]
fn queued_output_is_written_before_the_run_returns() {
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    // A slow reader: each batch takes 100 ms to write.
    let out: lines::Output = Box::new(move |batch: &[u8]| {
        std::thread::sleep(Duration::from_millis(100));
        w.fetch_add(memchr::memchr_iter(b'\n', batch).count(), Ordering::SeqCst);
    });
    daemon(5_000)
        .try_run(|mut ctx| async move {
            ctx.ready()?;
            let q = ctx.output_to(out, Box::new(|n| format!("dropped {n}\n").into_bytes()));
            for i in 0..3 {
                assert!(q.push(format!("line {i}").into_bytes()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<u8, DaemonError>(0)
        })
        .unwrap();
    assert_eq!(
        written.load(Ordering::SeqCst),
        3,
        "every queued line written"
    );
}

#[test]
fn settings_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let err = daemon(0)
        .grace(Duration::from_secs(25 * 3600))
        .pid_file(&pid)
        .try_run(|_ctx| async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<u8, AppError>(0)
        })
        .unwrap_err();
    assert_eq!(err.0, 64, "a usage error: {}", err.1);
    assert!(err.1.contains("at most 24 hours"), "{}", err.1);
    assert!(!pid.exists());

    let r = ran.clone();
    let err = daemon(0)
        .pid_file("/nonexistent-sockbox/s.pid")
        .try_run(|_ctx| async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<u8, DaemonError>(0)
        })
        .unwrap_err();
    assert!(matches!(err, DaemonError::MissingDirectory { .. }), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the body never ran");
}

#[test]
fn run_maps_a_body_error_to_its_exit_code() {
    let code = daemon(0).run(|_ctx| async move {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no such option",
        ))?
    });
    assert_eq!(code, ExitCode::from(2));
    let code = daemon(0).run(|mut ctx| async move {
        ctx.ready()?;
        Ok(0)
    });
    assert_eq!(code, ExitCode::SUCCESS);
}
