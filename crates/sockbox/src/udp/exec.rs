//! Running a program per datagram (a listener's [`ReplyMode::Exec`](super::ReplyMode::Exec)): the
//! payload goes to its stdin, its stdout becomes the reply.
//!
//! Each run is bounded: a time limit after which the whole process group is
//! killed and reaped, and a cap on how much output is read. The program runs
//! under `/bin/sh -c`, in its own process group, with `SOCKBOX_PEER_ADDR`
//! and `SOCKBOX_PEER_PORT` in its environment (and, as `listen -e` programs
//! get them, `SOCKBOX_REMOTE_ADDR`, `SOCKBOX_REMOTE_PORT`,
//! `SOCKBOX_LOCAL_ADDR`, `SOCKBOX_LOCAL_PORT`, `SOCKBOX_PROTO=udp`), in the
//! directory sockbox was started from even when it runs as a daemon.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// What to run and within which bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// The shell command line.
    pub command: String,
    /// Kill the program (and its process group) after this long.
    pub timeout: Duration,
    /// Read at most this many bytes of output (more is an error: no reply).
    pub max_output: usize,
}

/// Why a run produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started.
    #[error("cannot start `{0}`: {1}")]
    Spawn(String, #[source] std::io::Error),
    /// It ran past the time limit and was killed.
    #[error("`{0}` ran longer than {1:?} and was killed")]
    Timeout(String, Duration),
    /// It wrote more than one datagram can carry.
    #[error("`{0}` wrote more than {1} bytes, over one datagram; no reply sent")]
    TooMuchOutput(String, usize),
    /// It exited unsuccessfully.
    #[error("`{0}` exited with {1}; no reply sent")]
    Failed(String, std::process::ExitStatus),
    /// Reading or writing its pipes failed.
    #[error("talking to `{0}`: {1}")]
    Io(String, #[source] std::io::Error),
}

/// Kills the program's process group if the run is abandoned (its future
/// dropped, e.g. by a server shutting down) before the child was reaped.
struct GroupGuard {
    pid: Option<u32>,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pid);
        }
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `sh -c COMMAND` with the environment that names both ends, in its own
/// process group, its pipes ready.
fn command(cfg: &ExecConfig, peer: SocketAddr, local: SocketAddr) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&cfg.command)
        .env("SOCKBOX_PEER_ADDR", peer.ip().to_string())
        .env("SOCKBOX_PEER_PORT", peer.port().to_string())
        // The names `listen -e` programs get, so one script serves both.
        .env("SOCKBOX_REMOTE_ADDR", peer.ip().to_string())
        .env("SOCKBOX_REMOTE_PORT", peer.port().to_string())
        .env("SOCKBOX_LOCAL_ADDR", local.ip().to_canonical().to_string())
        .env("SOCKBOX_LOCAL_PORT", local.port().to_string())
        .env("SOCKBOX_PROTO", "udp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    crate::daemon::prepare_child(&mut cmd);
    cmd
}

/// Run the program once for a datagram `payload` from `peer` that arrived on
/// `local`, and return what it wrote to stdout. An empty output means "do
/// not reply". The child is always waited for, so no zombie stays behind.
pub async fn run(
    cfg: &ExecConfig,
    payload: &[u8],
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<Vec<u8>, ExecError> {
    let name = || cfg.command.clone();
    let mut cmd = command(cfg, peer, local);
    let mut child = cmd.spawn().map_err(|e| ExecError::Spawn(name(), e))?;
    let pid = child.id();
    let mut guard = GroupGuard { pid, armed: true };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        kill_group(pid);
        let _ = child.wait().await;
        return Err(ExecError::Io(
            name(),
            std::io::Error::other("child pipes missing"),
        ));
    };
    let limit = cfg.max_output;
    let work = async {
        // Write and read at once: a program that answers before reading all
        // of a large payload must not deadlock against us.
        let write = async {
            // A program that exits without reading its stdin is fine.
            let _ = stdin.write_all(payload).await;
            drop(stdin);
        };
        let read = async {
            let mut out = Vec::new();
            stdout
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .await
                .map(|_| out)
        };
        let ((), out) = tokio::join!(write, read);
        let out = out.map_err(|e| ExecError::Io(name(), e))?;
        if out.len() > limit {
            return Err(ExecError::TooMuchOutput(name(), limit));
        }
        let status = child.wait().await.map_err(|e| ExecError::Io(name(), e))?;
        if status.success() {
            Ok(out)
        } else {
            Err(ExecError::Failed(name(), status))
        }
    };
    let result = tokio::time::timeout(cfg.timeout, work).await;
    let outcome = match result {
        // Reaped by `work`: nothing left to kill.
        Ok(r @ (Ok(_) | Err(ExecError::Failed(..)))) => r,
        // Too much output or a pipe error: the program may still run.
        Ok(Err(e)) => {
            kill_group(pid);
            let _ = child.wait().await;
            Err(e)
        }
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            Err(ExecError::Timeout(name(), cfg.timeout))
        }
    };
    // The child is reaped now; its pid may be reused, so never signal it again.
    guard.armed = false;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(cmd: &str, ms: u64) -> ExecConfig {
        ExecConfig {
            command: cmd.to_owned(),
            timeout: Duration::from_millis(ms),
            max_output: 1000,
        }
    }

    fn peer() -> SocketAddr {
        "10.1.2.3:4567".parse().unwrap()
    }

    fn local() -> SocketAddr {
        "0.0.0.0:9999".parse().unwrap()
    }

    #[tokio::test]
    async fn stdout_is_the_reply_and_env_names_the_peer() {
        let out = run(
            &cfg(
                "tr a-z A-Z; echo \" $SOCKBOX_PEER_ADDR $SOCKBOX_PEER_PORT $SOCKBOX_LOCAL_PORT $SOCKBOX_REMOTE_ADDR $SOCKBOX_PROTO\"",
                5000,
            ),
            b"hello",
            peer(),
            local(),
        )
        .await
        .unwrap();
        assert_eq!(out, b"HELLO 10.1.2.3 4567 9999 10.1.2.3 udp\n");
    }

    #[tokio::test]
    async fn a_slow_program_and_its_children_are_killed() {
        let t = std::time::Instant::now();
        let e = run(
            &cfg("sleep 30 & sleep 30; echo late", 200),
            b"",
            peer(),
            local(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ExecError::Timeout(..)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn failures_give_no_reply() {
        let e = run(&cfg("echo partial; exit 3", 5000), b"", peer(), local())
            .await
            .unwrap_err();
        assert!(matches!(e, ExecError::Failed(..)), "{e}");
        let e = run(&cfg("head -c 5000 /dev/zero", 5000), b"", peer(), local())
            .await
            .unwrap_err();
        assert!(matches!(e, ExecError::TooMuchOutput(..)), "{e}");
    }

    #[tokio::test]
    async fn a_program_that_ignores_a_large_stdin_still_answers() {
        let big = vec![b'x'; 200_000];
        let out = run(&cfg("echo ok", 5000), &big, peer(), local())
            .await
            .unwrap();
        assert_eq!(out, b"ok\n");
    }
}
