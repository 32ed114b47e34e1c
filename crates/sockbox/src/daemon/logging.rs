//! Server logging: tracing events as text or JSON lines, to standard error
//! or to a log file, with the file swapped in place on SIGHUP.
//!
//! Each event is formatted whole and queued in a [`LineQueue`], whose own
//! thread writes it (batches in one `write` call on a file opened with
//! `O_APPEND`), so lines never interleave and a log nobody reads (standard
//! error a full pipe) never stalls the server: lines beyond the queue's
//! capacity are dropped and a line says how many. The level comes from the
//! environment (a variable the program names, then `$RUST_LOG`), else the
//! default the caller passes.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

use super::error::DaemonError;
use super::lines::{self, LineQueue, Notice};
use super::logfile::LogFile;

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines: time, level, message, fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`).
    Json,
}

/// The log's current file (`None`: standard error), swapped on SIGHUP.
type Target = Arc<Mutex<Option<Arc<File>>>>;

/// Where log lines go now; cheap to clone.
#[derive(Clone)]
pub(super) struct LogSink {
    file: Target,
    queue: LineQueue,
}

/// One event's writer: collects the formatted event and queues it whole
/// when dropped.
///
/// Logging is best effort and never fails: a line that cannot be written
/// (standard error closed, `sockbox echo 2>&1 | head`; disk full) is
/// dropped. An error here would make tracing-subscriber report it with
/// `eprintln!`, which panics on a closed standard error, and a panic in the
/// signal task would leave the server deaf to SIGTERM.
pub(super) struct SinkWriter<'a> {
    buf: Vec<u8>,
    queue: &'a LineQueue,
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SinkWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.queue.push(std::mem::take(&mut self.buf));
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter {
            buf: Vec::new(),
            queue: &self.queue,
        }
    }
}

/// Write a batch to the current target: the file, or standard error.
fn write_to(target: &Target, batch: &[u8]) {
    let file = target
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let _ = if let Some(f) = file {
        (&*f).write_all(batch)
    } else {
        let mut e = io::stderr().lock();
        e.write_all(batch).and_then(|()| e.flush())
    };
}

/// The line that says `n` log lines were dropped, in the log's format.
fn dropped_notice(format: LogFormat) -> Notice {
    Box::new(move |n| {
        let mut ts = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut ts));
        let msg = "log lines dropped: the log output was not read fast enough";
        let line = match format {
            LogFormat::Text => format!("{ts}  WARN {n} {msg}\n"),
            LogFormat::Json => {
                let v = serde_json::json!({
                    "timestamp": ts,
                    "level": "WARN",
                    "fields": {"message": msg, "dropped": n},
                });
                format!("{v}\n")
            }
        };
        line.into_bytes()
    })
}

impl LogSink {
    /// Start the thread that writes the log; until then each line is
    /// written synchronously. Call it after the hardening that precedes a
    /// user switch, which only threads created later inherit.
    pub(super) fn start(&self) {
        self.queue.start("sockbox-log");
    }

    /// Wait until every queued log line is written, or until `deadline`.
    pub(super) fn flush(&self, deadline: Instant) -> bool {
        self.queue.flush(deadline)
    }

    /// Open `log` again (after `mv log log.1`) and write there from now on.
    /// A daemon's standard error follows, so panics land in the new file too.
    pub(super) fn reopen(&self, log: &LogFile, daemon: bool) -> Result<(), DaemonError> {
        let file = log.open()?;
        if daemon {
            // Best effort: the tracing output switches either way.
            let _ = nix::unistd::dup2_stderr(&file);
        }
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(file));
        Ok(())
    }
}

/// A sink writing to `file` (or standard error) in `format`; it writes
/// synchronously until [`LogSink::start`].
pub(super) fn sink(format: LogFormat, file: Option<File>) -> LogSink {
    let target: Target = Arc::new(Mutex::new(file.map(Arc::new)));
    let out = target.clone();
    LogSink {
        file: target,
        queue: LineQueue::new(
            lines::CAPACITY,
            Box::new(move |batch: &[u8]| write_to(&out, batch)),
            dropped_notice(format),
        ),
    }
}

/// Install the global subscriber writing to `sink` at `default_level`
/// unless the environment says otherwise (`env_var`, then `$RUST_LOG`).
/// False when a global subscriber was already installed (it is kept).
pub(super) fn install(
    sink: &LogSink,
    format: LogFormat,
    env_var: Option<&str>,
    default_level: tracing::Level,
) -> bool {
    let to_file = sink
        .file
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some();
    let ansi = !to_file && io::stderr().is_terminal();
    let filter = env_var
        .and_then(|v| EnvFilter::try_from_env(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default_level.as_str().to_ascii_lowercase()));
    let builder = tracing_subscriber::fmt()
        .with_writer(sink.clone())
        .with_env_filter(filter)
        .with_target(false)
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if installed.is_ok() {
        let _ = INSTALLED.set(sink.clone());
    }
    installed.is_ok()
}

/// The sink of the global subscriber, once [`install`] installed one.
static INSTALLED: OnceLock<LogSink> = OnceLock::new();

/// Wait until the global log's queued lines are written, or until
/// `deadline` (true at once when no log was installed).
pub(super) fn flush(deadline: Instant) -> bool {
    INSTALLED.get().is_none_or(|s| s.flush(deadline))
}
