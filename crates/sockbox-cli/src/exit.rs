//! Exit codes and error reporting, shared by every subcommand.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the job ran but did not fully succeed (no reply, unreachable host) |
//! | 2 | usage or input error |
//! | 3 | system failure (socket, permission, I/O) |

use std::fmt;
use std::process::ExitCode;

/// The job ran and did everything it was asked.
pub const SUCCESS: u8 = 0;
/// The job ran but did not fully succeed.
pub const PARTIAL: u8 = 1;
/// The command line or an input was wrong.
pub const USAGE: u8 = 2;
/// The system refused: sockets, permissions, I/O.
pub const SYSTEM: u8 = 3;

/// The exit-code table, for `--help` texts.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 ran but did not fully succeed \
(no reply, unreachable host); 2 usage or input error; 3 system failure.";

/// An error in what the user gave us: exits with code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand: a usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Marks any error as the user's input being wrong (exit 2).
pub trait UsageContext<T> {
    /// Turn an error into a usage error whose message is `msg: error`.
    fn usage_err(self, msg: impl fmt::Display) -> anyhow::Result<T>;
}

impl<T, E: fmt::Display> UsageContext<T> for Result<T, E> {
    fn usage_err(self, msg: impl fmt::Display) -> anyhow::Result<T> {
        self.map_err(|e| usage(format!("{msg}: {e}")))
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code an error maps to: 2 for a [`UsageError`] or a daemon
/// error that is the user's input, 3 for the rest.
pub fn code_for(err: &anyhow::Error) -> u8 {
    let usage = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<UsageError>().is_some()
            || c.downcast_ref::<sockbox::daemon::DaemonError>()
                .is_some_and(sockbox::daemon::DaemonError::is_usage)
    };
    if err.chain().any(usage) {
        USAGE
    } else {
        SYSTEM
    }
}

/// Print an error (if any) and turn the outcome into the process exit code.
/// A broken pipe on stdout (`sockbox … | head`) exits 0 quietly.
pub fn report(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) if is_broken_pipe(&err) => ExitCode::from(SUCCESS),
        Err(err) => {
            crate::output::errln!("sockbox: {}", render(&err));
            ExitCode::from(code_for(&err))
        }
    }
}

/// `outer: inner: innermost`, skipping a cause whose text is already shown.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    if let Some(hint) = tls_flag_hint(err.as_ref()) {
        out.push_str(hint);
    }
    out
}

/// The flags that answer a refused server certificate, wherever in the
/// chain the TLS error sits.
pub fn tls_flag_hint(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use sockbox::tls::CertProblem;
    let mut cause = Some(err);
    let mut problem = None;
    while let Some(c) = cause {
        problem = c.downcast_ref::<std::io::Error>().and_then(CertProblem::of);
        if problem.is_some() {
            break;
        }
        cause = c.source();
    }
    let problem = problem?;
    Some(match problem {
        CertProblem::Untrusted => {
            "; --tls-ca FILE trusts a certificate or its CA; --tls-insecure skips the check (for testing only)"
        }
        CertProblem::NoNames | CertProblem::WrongName => {
            "; --tls-insecure skips the check (for testing only)"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_others_3() {
        let e = usage("bad MAC");
        assert_eq!(code_for(&e), USAGE);
        let e = anyhow::Error::new(std::io::Error::other("boom")).context("while binding");
        assert_eq!(code_for(&e), SYSTEM);
        let e: anyhow::Result<()> = Err("x").usage_err("reading --hex");
        assert_eq!(code_for(&e.unwrap_err()), USAGE);
    }

    #[test]
    fn render_skips_repeated_causes() {
        let e =
            anyhow::Error::new(std::io::Error::other("refused")).context("connect to 127.0.0.1:1");
        assert_eq!(render(&e), "connect to 127.0.0.1:1: refused");
    }
}
