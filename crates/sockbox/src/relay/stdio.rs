//! Standard input and output for the blocking pump. Standard output is
//! *taken* (fd 1 then points to `/dev/null`), so that the relay closing its
//! copy closes the pipe.

use std::os::fd::OwnedFd;

use super::RelayError;
use crate::sys::splice;

/// This process's stdin and stdout for a [`pump`](super::pump::pump): a duplicate of stdin,
/// and standard output *taken* — the process's fd 1 then points to
/// `/dev/null`, so that when the relay drops its copy at the peer's EOF the
/// reader of standard output sees the end at once (`connect … | tar x`
/// finishes while standard input is still open, as with ncat). A closed
/// stdin or stdout is replaced by `/dev/null`.
pub fn stdio_fds() -> Result<(OwnedFd, OwnedFd), RelayError> {
    let input = match splice::dup(std::io::stdin()) {
        Ok(fd) => fd,
        Err(_) => open_null(false)?,
    };
    Ok((input, take_stdout()?))
}

fn open_null(write: bool) -> Result<OwnedFd, RelayError> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(RelayError::Setup)
}

/// Standard output as an owned fd, with the process's fd 1 pointed at
/// `/dev/null` (see [`stdio_fds`]); `/dev/null` itself when fd 1 is closed.
pub fn take_stdout() -> Result<OwnedFd, RelayError> {
    let null = open_null(true)?;
    let Ok(out) = splice::dup(std::io::stdout()) else {
        return Ok(null);
    };
    // Nothing else writes to standard output once the relay owns it (logs
    // go to standard error); if the swap fails the relay still works, the
    // reader just sees the end only when the process exits.
    let _ = nix::unistd::dup2_stdout(&null);
    Ok(out)
}
