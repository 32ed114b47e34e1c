//! Unit tests of the adapter between the daemon flags and the library's
//! harness (the harness itself is tested in `sockbox::daemon`).

use super::*;
use std::time::Duration;

fn args(grace_ms: u64) -> DaemonArgs {
    DaemonArgs {
        grace: Duration::from_millis(grace_ms),
        ..DaemonArgs::default()
    }
}

#[test]
fn a_usage_error_of_the_body_comes_back_whole_and_the_pid_file_goes() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let mut a = args(100);
    a.pid_file = Some(pid.clone());
    let seen = pid.clone();
    let err = serve_with(&a, tracing::Level::WARN, |_ctx| async move {
        assert!(seen.exists(), "the pid file exists while the body runs");
        Err::<u8, _>(exit::usage("bad flag"))
    })
    .unwrap_err();
    assert_eq!(exit::code_for(&err), exit::USAGE);
    assert_eq!(exit::render(&err), "bad flag");
    assert!(!pid.exists(), "pid file removed after a failed start");
}

#[test]
fn the_body_code_is_the_exit_code() {
    let code = serve_with(&args(100), tracing::Level::WARN, |mut ctx| async move {
        ctx.ready()?;
        Ok(exit::PARTIAL)
    })
    .unwrap();
    assert_eq!(code, exit::PARTIAL);
}

#[test]
fn daemon_errors_name_the_flag_and_keep_their_exit_code() {
    let e = daemon_err(DaemonError::NotRoot {
        step: DropStep::Chroot,
        uid: 1000,
    });
    assert_eq!(exit::code_for(&e), exit::USAGE);
    assert!(exit::render(&e).starts_with("--chroot needs root, but sockbox runs as uid 1000"));

    let mut a = args(100);
    a.log_file = Some("/nonexistent-sockbox/x.log".into());
    let e = serve_with(&a, tracing::Level::WARN, |_ctx| async move { Ok(0) }).unwrap_err();
    let text = exit::render(&e);
    assert_eq!(exit::code_for(&e), exit::USAGE, "{text}");
    assert!(
        text.starts_with("--log-file: log file /nonexistent-sockbox/x.log")
            && text.contains("mkdir -p /nonexistent-sockbox"),
        "{text}"
    );

    let e = daemon_err(DaemonError::Vanished { log: None });
    assert_eq!(exit::code_for(&e), exit::SYSTEM);
    assert!(exit::render(&e).contains("--log-file"));

    let e = serve_with(
        &args(25 * 3600 * 1000),
        tracing::Level::WARN,
        |_ctx| async move { Ok(0) },
    )
    .unwrap_err();
    assert_eq!(exit::code_for(&e), exit::USAGE);
    assert!(exit::render(&e).starts_with("--grace: "), "{e}");
}
