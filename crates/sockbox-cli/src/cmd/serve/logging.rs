//! Server logging: tracing events as text or JSON lines, to standard error
//! or to `--log-file`, with the file swapped in place on SIGHUP.
//!
//! Each event is formatted whole and written with one `write` call on a file
//! opened with `O_APPEND`, so lines never interleave. The level comes from
//! `$SOCKBOX_LOG` (or `$RUST_LOG`), else the default the caller passes.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sockbox::daemon::{DaemonError, LogFile};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::LogFormat;

/// Where log lines go now; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct LogSink {
    /// `None`: standard error.
    file: Arc<Mutex<Option<File>>>,
}

/// One event's writer: holds the sink's lock while the line is written.
///
/// Logging is best effort and never fails: a line that cannot be written
/// (standard error closed, `sockbox echo 2>&1 | head`; disk full) is
/// dropped. An error here would make tracing-subscriber report it with
/// `eprintln!`, which panics on a closed standard error, and a panic in the
/// signal task would leave the server deaf to SIGTERM.
pub struct SinkWriter<'a> {
    guard: MutexGuard<'a, Option<File>>,
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = match self.guard.as_mut() {
            Some(f) => f.write_all(buf),
            None => io::stderr().write_all(buf),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = match self.guard.as_mut() {
            Some(f) => f.flush(),
            None => io::stderr().flush(),
        };
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter {
            guard: self.file.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }
}

impl LogSink {
    /// Open `log` again (after `mv log log.1`) and write there from now on.
    /// A daemon's standard error follows, so panics land in the new file too.
    pub fn reopen(&self, log: &LogFile, daemon: bool) -> Result<(), DaemonError> {
        let file = log.open()?;
        if daemon {
            // Best effort: the tracing output switches either way.
            let _ = nix::unistd::dup2_stderr(&file);
        }
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = Some(file);
        Ok(())
    }
}

/// Install the global subscriber writing to `file` (or standard error) at
/// `default_level` unless the environment says otherwise. A second call
/// keeps the first subscriber.
pub fn init(format: LogFormat, file: Option<File>, default_level: tracing::Level) -> LogSink {
    let ansi = file.is_none() && io::stderr().is_terminal();
    let sink = LogSink {
        file: Arc::new(Mutex::new(file)),
    };
    let filter = EnvFilter::try_from_env("SOCKBOX_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level.as_str().to_ascii_lowercase()));
    let builder = tracing_subscriber::fmt()
        .with_writer(sink.clone())
        .with_env_filter(filter)
        .with_target(false)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    sink
}
