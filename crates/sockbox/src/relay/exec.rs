//! A program per connection (`-e CMD`, `-c SHELL-CMD`), inetd style: its
//! stdin receives what the peer sends, its stdout goes to the peer, stderr
//! is inherited. Children are always waited for, so none is left a zombie,
//! and their exit status is logged.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::ends::{LocalIn, LocalOut, RemoteIn, RemoteOut};
use super::event::RelayEvent;
use super::session::{self, Ends, Extras};
use super::{Outcome, Peer, RelayError, RelayOptions, Report};
use crate::Shutdown;
use crate::event::Events;

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

    /// Check, before serving, that the program can be found: a path with a
    /// `/` is made absolute (so it still names the same file once a daemon
    /// runs in `/`) and must be an executable file; a bare name must be an
    /// executable file in `$PATH`. `/bin/sh -c` command lines are left as
    /// they are.
    pub fn resolve_program(self) -> Result<Self, RelayError> {
        let Self::Argv(mut argv) = self else {
            return Ok(self);
        };
        let Some(prog) = argv.first() else {
            return Ok(Self::Argv(argv));
        };
        let fail = |source: io::Error| RelayError::Exec {
            cmd: prog.clone(),
            source,
        };
        if prog.contains('/') {
            let path = std::path::absolute(prog).map_err(fail)?;
            check_executable(&path).map_err(fail)?;
            if let Ok(p) = path.into_os_string().into_string() {
                argv[0] = p;
            }
        } else {
            let search = std::env::var_os("PATH").unwrap_or_default();
            if !std::env::split_paths(&search).any(|d| check_executable(&d.join(prog)).is_ok()) {
                return Err(fail(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such program in $PATH; give its path (e.g. ./prog)",
                )));
            }
        }
        Ok(Self::Argv(argv))
    }

    /// How it reads in messages.
    pub fn display(&self) -> String {
        match self {
            Self::Argv(v) => v.join(" "),
            Self::Shell(s) => format!("sh -c {s:?}"),
        }
    }

    /// Start it with piped stdin/stdout. The environment tells the program
    /// who it talks to (see [`program_env`]).
    pub fn spawn(
        &self,
        peer: &Peer,
        local: Option<&Peer>,
        proto: &str,
    ) -> Result<Child, RelayError> {
        let mut cmd = match self {
            Self::Argv(v) => {
                let Some((prog, args)) = v.split_first() else {
                    return Err(RelayError::Exec {
                        cmd: String::new(),
                        source: io::Error::new(io::ErrorKind::InvalidInput, "no program given"),
                    });
                };
                let mut c = Command::new(prog);
                c.args(args);
                c
            }
            Self::Shell(s) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(s);
                c
            }
        };
        crate::daemon::prepare_child(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .envs(program_env(peer, local, proto));
        cmd.spawn().map_err(|source| RelayError::Exec {
            cmd: self.display(),
            source,
        })
    }
}

/// The environment of a program run for a connection: sockbox's own names
/// and ncat's, so scripts written for `ncat -e` work unchanged.
///
/// - `SOCKBOX_REMOTE_ADDR`, `SOCKBOX_REMOTE_PORT`, `SOCKBOX_LOCAL_ADDR`,
///   `SOCKBOX_LOCAL_PORT`: the addresses and ports; for a UNIX-domain
///   socket the path (empty when unnamed) and an empty port.
/// - `SOCKBOX_PROTO`: `tcp`, `tls`, `udp`, `unix` or `unixgram`.
/// - `NCAT_REMOTE_ADDR`, `NCAT_REMOTE_PORT`, `NCAT_LOCAL_ADDR`,
///   `NCAT_LOCAL_PORT`, `NCAT_PROTO`: as ncat sets them — `localhost` and
///   an empty port for a UNIX-domain socket, `TCP` or `UDP` (a TLS or UNIX
///   stream is `TCP`, a UNIX datagram socket `UDP`).
pub fn program_env(peer: &Peer, local: Option<&Peer>, proto: &str) -> Vec<(String, String)> {
    let ours = |p: &Peer| match p {
        Peer::Inet(a) => (a.ip().to_canonical().to_string(), a.port().to_string()),
        Peer::Unix(path) => (
            path.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            String::new(),
        ),
    };
    let ncat = |p: &Peer| match p {
        Peer::Inet(a) => (a.ip().to_canonical().to_string(), a.port().to_string()),
        Peer::Unix(_) => ("localhost".to_owned(), String::new()),
    };
    let mut env = Vec::new();
    let mut add = |side: &str, p: &Peer| {
        let (addr, port) = ours(p);
        env.push((format!("SOCKBOX_{side}_ADDR"), addr));
        env.push((format!("SOCKBOX_{side}_PORT"), port));
        let (addr, port) = ncat(p);
        env.push((format!("NCAT_{side}_ADDR"), addr));
        env.push((format!("NCAT_{side}_PORT"), port));
    };
    add("REMOTE", peer);
    if let Some(l) = local {
        add("LOCAL", l);
    }
    env.push(("SOCKBOX_PROTO".to_owned(), proto.to_owned()));
    let ncat_proto = if matches!(proto, "udp" | "unixgram") {
        "UDP"
    } else {
        "TCP"
    };
    env.push(("NCAT_PROTO".to_owned(), ncat_proto.to_owned()));
    env
}

/// The program side of a session: what to run, for whom.
pub(crate) struct Program<'a> {
    /// What to run.
    pub spec: &'a ExecSpec,
    /// The peer it talks to.
    pub peer: Peer,
    /// This end of the connection, when known.
    pub local: Option<Peer>,
    /// `tcp`, `udp` or `tls`, for `SOCKBOX_PROTO`.
    pub proto: &'a str,
}

/// How long a program whose output ended may take to exit.
const QUIT_PATIENCE: Duration = Duration::from_secs(1);

/// Start the program and relay the connection (`remote`) to its standard
/// input and output until the session ends (`stop` cuts it short). The
/// end of the program's output ends the conversation unless `-q` says
/// otherwise. The
/// program is always reaped: given time to finish after a clean end, cut at
/// once otherwise or when `reap_stop` fires.
pub(crate) async fn relay_program(
    prog: Program<'_>,
    remote: (RemoteIn, RemoteOut),
    opts: &RelayOptions,
    extras: &Extras,
    initial_rx: Option<&[u8]>,
    stop: &Shutdown,
    reap_stop: &Shutdown,
) -> Result<Report, RelayError> {
    let Program {
        spec,
        peer,
        local,
        proto,
    } = prog;
    let (remote_in, remote_out) = remote;
    let mut child = spec.spawn(&peer, local.as_ref(), proto)?;
    let (Some(cin), Some(cout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(RelayError::Exec {
            cmd: spec.display(),
            source: io::Error::other("the program's pipes are missing"),
        });
    };
    // The program's end of output ends the conversation (as ncat does),
    // unless -q says how long to go on: a program that printed its answer
    // and exited does not keep the connection, its slot and itself (a
    // zombie) until the client hangs up.
    let mut opts = opts.clone();
    if opts.quit_after_eof.is_none() {
        opts.quit_after_eof = Some(Duration::ZERO);
    }
    let ends = Ends {
        local_in: LocalIn::Reader(Box::new(cout)),
        local_out: LocalOut::Writer(Box::new(cin)),
        remote_in,
        remote_out,
        peer: peer.clone(),
        finish_input: true,
    };
    let result = session::run(ends, &opts, extras, initial_rx, stop).await;
    let patience = match &result {
        Ok(r) if matches!(r.outcome, Outcome::Done | Outcome::OutputClosed) => None,
        // Its output ended: it is exiting, or has (a program that closed
        // its output and runs on is stopped after a moment).
        Ok(r) if r.outcome == Outcome::Quit => Some(QUIT_PATIENCE),
        _ => Some(Duration::ZERO),
    };
    reap(
        child,
        peer,
        &spec.display(),
        patience,
        reap_stop,
        &extras.events,
    )
    .await;
    result
}

/// `Ok` when `path` is a file with an execute bit set.
fn check_executable(path: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not executable (chmod +x it)",
        ));
    }
    Ok(())
}

/// Wait for a child whose session is over and report how it ended
/// ([`RelayEvent::ProgramEnded`]). After `patience` (or once `stop` fires)
/// it is sent SIGTERM, and SIGKILL a second later; it is always reaped
/// before this returns.
pub async fn reap(
    mut child: Child,
    peer: Peer,
    cmd: &str,
    patience: Option<Duration>,
    stop: &Shutdown,
    events: &Events<RelayEvent>,
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
    let status = match waited {
        Some(s) => s,
        None => terminate(&mut child).await,
    };
    let ok = status.as_ref().ok().copied();
    events.on_event(&RelayEvent::ProgramEnded {
        peer,
        program: cmd.to_owned(),
        status,
    });
    ok
}

/// SIGTERM, a second's patience, then SIGKILL; reaped either way.
async fn terminate(child: &mut Child) -> io::Result<ExitStatus> {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if let Ok(s) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
        return s;
    }
    let _ = child.start_kill();
    child.wait().await
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

    #[test]
    fn programs_are_checked_and_relative_paths_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("handler.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let spec = |p: &str| ExecSpec::from_words(&format!("{p} arg")).unwrap();
        let err = |p: &str| spec(p).resolve_program().unwrap_err().to_string();
        assert!(err(script.to_str().unwrap()).contains("not executable"));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = spec(script.to_str().unwrap()).resolve_program().unwrap();
        assert_eq!(
            ok,
            ExecSpec::Argv(vec![script.to_str().unwrap().into(), "arg".into()])
        );
        // The same script by a relative path: made absolute.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count() - 1);
        let rel = format!("{up}{}", script.strip_prefix("/").unwrap().display());
        let ExecSpec::Argv(v) = spec(&rel).resolve_program().unwrap() else {
            unreachable!()
        };
        assert_eq!(
            std::fs::canonicalize(&v[0]).unwrap(),
            script.canonicalize().unwrap()
        );
        assert!(v[0].starts_with('/'), "{v:?}");
        assert!(err("/nonexistent/prog").contains("/nonexistent/prog"));
        assert!(err(dir.path().to_str().unwrap()).contains("not a regular file"));
        assert!(err("sockbox-no-such-program").contains("$PATH"));
        assert!(spec("sh").resolve_program().is_ok());
        let shell = ExecSpec::Shell("./anything".into());
        assert_eq!(shell.clone().resolve_program().unwrap(), shell);
    }

    #[test]
    fn programs_get_sockbox_and_ncat_names() {
        let get = |env: &[(String, String)], k: &str| {
            let found = env.iter().find(|(n, _)| n == k);
            found.unwrap_or_else(|| panic!("{k} missing")).1.clone()
        };
        let peer = Peer::Inet("[::ffff:10.1.2.3]:4000".parse().unwrap());
        let local = Peer::Inet("[::1]:7000".parse().unwrap());
        let env = program_env(&peer, Some(&local), "tls");
        for (k, v) in [
            ("SOCKBOX_REMOTE_ADDR", "10.1.2.3"),
            ("NCAT_REMOTE_ADDR", "10.1.2.3"),
            ("SOCKBOX_REMOTE_PORT", "4000"),
            ("NCAT_REMOTE_PORT", "4000"),
            ("SOCKBOX_LOCAL_ADDR", "::1"),
            ("NCAT_LOCAL_PORT", "7000"),
            ("SOCKBOX_PROTO", "tls"),
            ("NCAT_PROTO", "TCP"),
        ] {
            assert_eq!(get(&env, k), v, "{k}");
        }
        let unix = Peer::Unix(Some("/run/s.sock".into()));
        let env = program_env(&Peer::Unix(None), Some(&unix), "unixgram");
        for (k, v) in [
            ("SOCKBOX_REMOTE_ADDR", ""),
            ("NCAT_REMOTE_ADDR", "localhost"),
            ("NCAT_REMOTE_PORT", ""),
            ("SOCKBOX_LOCAL_ADDR", "/run/s.sock"),
            ("NCAT_LOCAL_ADDR", "localhost"),
            ("SOCKBOX_PROTO", "unixgram"),
            ("NCAT_PROTO", "UDP"),
        ] {
            assert_eq!(get(&env, k), v, "{k}");
        }
        let env = program_env(&peer, None, "udp");
        assert!(!env.iter().any(|(k, _)| k.contains("LOCAL")));
        assert_eq!(get(&env, "NCAT_PROTO"), "UDP");
    }

    #[tokio::test]
    async fn missing_program_is_named() {
        let spec = ExecSpec::from_words("/nonexistent/prog").unwrap();
        let err = spec
            .spawn(&Peer::Inet("127.0.0.1:1".parse().unwrap()), None, "tcp")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/prog"), "{err}");
    }

    #[tokio::test]
    async fn reap_reports_status_and_kills_stragglers() {
        let peer = Peer::Inet("127.0.0.1:1".parse().unwrap());
        let c = ExecSpec::Shell("exit 3".into())
            .spawn(&peer, None, "tcp")
            .unwrap();
        let stop = Shutdown::new();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let events: Events<RelayEvent> = std::sync::Arc::new(move |e: &RelayEvent| {
            if let RelayEvent::ProgramEnded { status, .. } = e {
                log.lock()
                    .unwrap()
                    .push(status.as_ref().ok().and_then(ExitStatus::code));
            }
        });
        let s = reap(c, peer.clone(), "x", None, &stop, &events)
            .await
            .unwrap();
        assert_eq!(s.code(), Some(3));
        let c = ExecSpec::Shell("sleep 30".into())
            .spawn(&peer, None, "tcp")
            .unwrap();
        let s = reap(
            c,
            peer,
            "x",
            Some(Duration::from_millis(50)),
            &stop,
            &events,
        )
        .await
        .unwrap();
        assert!(!s.success());
        // Both were reported: status 3, then killed by a signal (no code).
        assert_eq!(*seen.lock().unwrap(), vec![Some(3), None]);
    }
}
