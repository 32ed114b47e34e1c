//! How the error of a server body becomes an exit code and a message, for
//! the log and for the process waiting on a detached daemon.

use std::error::Error;
use std::fmt;
use std::io;

use super::error::DaemonError;

/// The error type [`Daemon::run`](super::Daemon::run) bodies return: any
/// error converts into it with `?`.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What the harness needs from the error type of a server body: a message
/// (`Display`), an exit code, and a way to carry the harness's own errors
/// (`From<DaemonError>`, so `ctx.ready()?` works in the body).
///
/// Implemented for [`DaemonError`], [`io::Error`] and boxed errors
/// ([`BoxError`]). The codes follow the convention of the `sockbox`
/// command: 2 when the input was wrong ([`DaemonError::is_usage`], or an
/// `io::Error` of kind `InvalidInput`), 3 when the system refused (other
/// daemon and I/O errors), 1 for any other boxed error. A program with its
/// own codes implements this trait for its error type.
pub trait Failure: fmt::Display + From<DaemonError> {
    /// The process's exit code for this error; 0 is taken as 1.
    fn exit_code(&self) -> u8;
}

/// Exit code for wrong input.
const USAGE: u8 = 2;
/// Exit code for a refusal of the system.
const SYSTEM: u8 = 3;
/// Exit code for anything else.
const OTHER: u8 = 1;

impl Failure for DaemonError {
    fn exit_code(&self) -> u8 {
        if self.is_usage() { USAGE } else { SYSTEM }
    }
}

impl Failure for io::Error {
    fn exit_code(&self) -> u8 {
        if let Some(d) = self.get_ref().and_then(|e| e.downcast_ref::<DaemonError>()) {
            return d.exit_code();
        }
        if self.kind() == io::ErrorKind::InvalidInput {
            USAGE
        } else {
            SYSTEM
        }
    }
}

/// The code of a boxed error: that of the first daemon or I/O error in its
/// chain of sources, else 1.
fn boxed_code(e: &(dyn Error + 'static)) -> u8 {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<DaemonError>() {
            return d.exit_code();
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return io.exit_code();
        }
        cur = err.source();
    }
    OTHER
}

impl Failure for Box<dyn Error + Send + Sync> {
    fn exit_code(&self) -> u8 {
        boxed_code(&**self)
    }
}

impl Failure for Box<dyn Error> {
    fn exit_code(&self) -> u8 {
        boxed_code(&**self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_kind_of_failure() {
        let usage = DaemonError::UnknownUser("x".into());
        assert_eq!(usage.exit_code(), USAGE);
        let system = DaemonError::Threaded(4);
        assert_eq!(system.exit_code(), SYSTEM);
        assert_eq!(
            io::Error::from(DaemonError::UnknownUser("x".into())).exit_code(),
            USAGE
        );
        assert_eq!(io::Error::other("boom").exit_code(), SYSTEM);
        let boxed: BoxError = DaemonError::UnknownGroup("g".into()).into();
        assert_eq!(boxed.exit_code(), USAGE);
        let boxed: BoxError = io::Error::other("refused").into();
        assert_eq!(boxed.exit_code(), SYSTEM);
        let boxed: BoxError = "bad config".into();
        assert_eq!(boxed.exit_code(), OTHER);
    }
}
