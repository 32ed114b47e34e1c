//! Start-up failures of servers: what the user sees when a server cannot
//! start (a missing directory, a taken port, an unknown interface).

use super::*;
use crate::util::netns::Netns;

/// Regression: a missing directory for `--pid-file` or `--log-file` exited
/// 3 (a system failure), while a missing `-x` or `--allowfile` directory
/// exited 2. A path the user gave that does not exist is a usage error,
/// named with its fix, in the foreground and with `--daemon` alike.
#[test]
fn missing_directory_for_pid_file_log_file_or_chroot_is_a_usage_error() {
    for (flag, path) in [
        ("--pid-file", "/nonexistent-sockbox/x.pid"),
        ("--log-file", "/nonexistent-sockbox/x.log"),
    ] {
        for daemon in [false, true] {
            let mut cmd = sockbox();
            cmd.args(["echo", "127.0.0.1", "0", flag, path])
                .timeout(Duration::from_secs(10));
            if daemon {
                cmd.arg("--daemon");
            }
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{flag} (daemon {daemon}): {err}"
            );
            assert!(
                err.contains(path) && err.contains("mkdir -p /nonexistent-sockbox"),
                "{flag}: names the path and the fix: {err}"
            );
            assert!(err.contains(flag), "{flag}: names the flag: {err}");
        }
    }
    if !require_root("missing_directory_for_pid_file_log_file_or_chroot_is_a_usage_error") {
        return;
    }
    let out = sockbox()
        .args(["echo", "127.0.0.1", "0", "--user", "nobody"])
        .args(["--chroot", "/nonexistent-sockbox/jail"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--chroot")
            && err.contains("/nonexistent-sockbox/jail does not exist")
            && err.contains("mkdir -p"),
        "{err}"
    );
}

/// Run a server that cannot start; its exit code and standard error.
fn failed_start(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Check the error comes first and no "stopped" summary follows.
fn error_first(what: &str, (code, err): (Option<i32>, String), needle: &str) {
    assert!(matches!(code, Some(2 | 3)), "{what}: exit {code:?}: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("sockbox: ") && first.contains(needle),
        "{what}: the error is the first line, got {first:?} in: {err}"
    );
    assert!(
        !err.contains("stopped"),
        "{what}: no 'stopped' line for a server that never started: {err}"
    );
}

/// Regression: a server that failed to start printed `INFO stopped
/// uptime_secs=0 accepted=0 …` before its error, as if it had run.
#[test]
fn a_server_that_fails_to_start_prints_its_error_first_and_no_stopped_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for server in ["echo", "listen", "chat"] {
        let mut cmd = sockbox_std();
        cmd.args([server, "127.0.0.1", &port]);
        error_first(server, failed_start(&mut cmd), "in use");
    }
    let mut cmd = sockbox_std();
    cmd.args(["mcast", "listen", "239.1.2.3", "5000", "-i", "nosuch0"]);
    error_first("mcast listen", failed_start(&mut cmd), "nosuch0");

    // Detached, the error goes to the log, again without a summary.
    let env = Env::new();
    let (out, _) = env.run(env.command(&["echo", "127.0.0.1", &port]));
    assert_eq!(out.status.code(), Some(3));
    env.wait_log("in use");
    assert!(!env.log().contains("stopped"), "{}", env.log());

    // A name that does not resolve (inside a namespace of our own, so the
    // DNS query goes nowhere).
    if require_root("a_server_that_fails_to_start_prints_its_error_first_and_no_stopped_line") {
        let ns = Netns::new("nr");
        let mut cmd = ns.sockbox();
        cmd.args(["echo", "nosuch..invalid", "7101"]);
        error_first(
            "echo nosuch..invalid",
            failed_start(&mut cmd),
            "nosuch..invalid",
        );
    }
}
