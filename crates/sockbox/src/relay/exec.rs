//! A program per connection (`-e CMD`, `-c SHELL-CMD`), inetd style: its
//! stdin receives what the peer sends, its stdout goes to the peer, stderr
//! is inherited. Children are always waited for, so none is left a zombie,
//! and their exit status is logged.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::RelayError;
use crate::Shutdown;

/// What to run per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecSpec {
    /// A program and its arguments, run directly (`-e "cmd arg"`, split on whitespace).
    Argv(Vec<String>),
    /// A command line for `/bin/sh -c` (`-c`).
    Shell(String),
}

impl ExecSpec {
    /// `-e` text split on whitespace; `None` when empty.
    pub fn from_words(text: &str) -> Option<Self> {
        let argv: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        (!argv.is_empty()).then_some(Self::Argv(argv))
    }

    /// How it reads in messages.
    pub fn display(&self) -> String {
        match self {
            Self::Argv(v) => v.join(" "),
            Self::Shell(s) => format!("sh -c {s:?}"),
        }
    }

    /// Start it with piped stdin/stdout. The environment tells the program
    /// who it talks to: `SOCKBOX_REMOTE_ADDR`, `SOCKBOX_REMOTE_PORT`,
    /// `SOCKBOX_LOCAL_ADDR`, `SOCKBOX_LOCAL_PORT`, `SOCKBOX_PROTO`.
    pub fn spawn(
        &self,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        proto: &str,
    ) -> Result<Child, RelayError> {
        let mut cmd = match self {
            Self::Argv(v) => {
                let mut c = Command::new(&v[0]);
                c.args(&v[1..]);
                c
            }
            Self::Shell(s) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(s);
                c
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .env("SOCKBOX_REMOTE_ADDR", peer.ip().to_canonical().to_string())
            .env("SOCKBOX_REMOTE_PORT", peer.port().to_string())
            .env("SOCKBOX_PROTO", proto);
        if let Some(l) = local {
            cmd.env("SOCKBOX_LOCAL_ADDR", l.ip().to_canonical().to_string())
                .env("SOCKBOX_LOCAL_PORT", l.port().to_string());
        }
        cmd.spawn().map_err(|source| RelayError::Exec {
            cmd: self.display(),
            source,
        })
    }
}

/// Wait for a child whose session is over and log how it ended. After
/// `patience` (or once `stop` fires) it is sent SIGTERM, and SIGKILL a
/// second later; it is always reaped before this returns.
pub async fn reap(
    mut child: Child,
    peer: SocketAddr,
    cmd: &str,
    patience: Option<Duration>,
    stop: &Shutdown,
) -> Option<ExitStatus> {
    let limit = async {
        match patience {
            Some(p) => tokio::time::sleep(p).await,
            None => std::future::pending().await,
        }
    };
    let waited = tokio::select! {
        s = child.wait() => Some(s),
        () = limit => None,
        () = stop.wait() => None,
    };
    let status = if let Some(s) = waited {
        s
    } else {
        {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if let Ok(s) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                s
            } else {
                let _ = child.start_kill();
                child.wait().await
            }
        }
    };
    match &status {
        Ok(s) if s.success() => tracing::info!(%peer, "{cmd}: exited with status 0"),
        Ok(s) => tracing::warn!(%peer, "{cmd}: {}", describe(*s)),
        Err(e) => tracing::warn!(%peer, "{cmd}: cannot wait for it: {e}"),
    }
    status.ok()
}

/// "exited with status 3" / "killed by signal 9".
pub fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split() {
        assert_eq!(
            ExecSpec::from_words(" cat  -u "),
            Some(ExecSpec::Argv(vec!["cat".into(), "-u".into()]))
        );
        assert_eq!(ExecSpec::from_words("  "), None);
    }

    #[tokio::test]
    async fn missing_program_is_named() {
        let spec = ExecSpec::from_words("/nonexistent/prog").unwrap();
        let err = spec
            .spawn("127.0.0.1:1".parse().unwrap(), None, "tcp")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/prog"), "{err}");
    }

    #[tokio::test]
    async fn reap_reports_status_and_kills_stragglers() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let c = ExecSpec::Shell("exit 3".into())
            .spawn(peer, None, "tcp")
            .unwrap();
        let stop = Shutdown::new();
        let s = reap(c, peer, "x", None, &stop).await.unwrap();
        assert_eq!(s.code(), Some(3));
        let c = ExecSpec::Shell("sleep 30".into())
            .spawn(peer, None, "tcp")
            .unwrap();
        let s = reap(c, peer, "x", Some(Duration::from_millis(50)), &stop)
            .await
            .unwrap();
        assert!(!s.success());
    }
}
