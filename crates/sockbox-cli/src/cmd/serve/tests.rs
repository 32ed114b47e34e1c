//! Unit tests of the serve harness.

use super::*;
use std::time::Instant;

fn args(grace_ms: u64) -> DaemonArgs {
    DaemonArgs {
        grace: Duration::from_millis(grace_ms),
        ..DaemonArgs::default()
    }
}

#[test]
fn harness_returns_after_grace_when_the_server_hangs() {
    let t0 = Instant::now();
    let code = serve(&args(100), |mut ctx| async move {
        ctx.ready()?;
        // A blocking task that never ends (a stdin reader, say) must not
        // keep the process alive either.
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(60)));
        ctx.shutdown.trigger();
        std::future::pending::<anyhow::Result<u8>>().await
    })
    .unwrap();
    assert_eq!(code, exit::SUCCESS);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) + GRACE_SLACK, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn pid_file_is_released_when_the_server_fails_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let mut a = args(100);
    a.pid_file = Some(pid.clone());
    let seen = pid.clone();
    let err = serve(&a, |_ctx| async move {
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            format!("{}\n", std::process::id())
        );
        Err::<u8, _>(exit::usage("bad flag"))
    })
    .unwrap_err();
    assert_eq!(exit::code_for(&err), exit::USAGE);
    assert!(!pid.exists(), "pid file removed after a failed start");
}
