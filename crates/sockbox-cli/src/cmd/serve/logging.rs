//! Server logging: tracing events as text or JSON lines, to standard error
//! or to `--log-file`, with the file swapped in place on SIGHUP.
//!
//! Each event is formatted whole and queued in a [`LineQueue`], whose own
//! thread writes it (batches in one `write` call on a file opened with
//! `O_APPEND`), so lines never interleave and a log nobody reads (standard
//! error a full pipe) never stalls the server: lines beyond the queue's
//! capacity are dropped and a line says how many. The level comes from
//! `$SOCKBOX_LOG` (or `$RUST_LOG`), else the default the caller passes.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Instant, SystemTime};

use sockbox::daemon::{DaemonError, LogFile};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::LogFormat;
use super::lines::{self, LineQueue, Notice};

/// The log's current file (`None`: standard error), swapped on SIGHUP.
type Target = Arc<Mutex<Option<Arc<File>>>>;

/// Where log lines go now; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
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
pub struct SinkWriter<'a> {
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
        let ts = humantime::format_rfc3339_micros(SystemTime::now());
        let msg = "log lines dropped: the log output was not read fast enough";
        let line = match format {
            LogFormat::Text => format!("{ts}  WARN {n} {msg}\n"),
            LogFormat::Json => {
                let v = serde_json::json!({
                    "timestamp": ts.to_string(),
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
    /// written synchronously. Call it after the `--user` hardening, which
    /// only threads created later inherit.
    pub fn start(&self) {
        self.queue.start("sockbox-log");
    }

    /// Wait until every queued log line is written, or until `deadline`.
    pub fn flush(&self, deadline: Instant) -> bool {
        self.queue.flush(deadline)
    }

    /// Open `log` again (after `mv log log.1`) and write there from now on.
    /// A daemon's standard error follows, so panics land in the new file too.
    pub fn reopen(&self, log: &LogFile, daemon: bool) -> Result<(), DaemonError> {
        let file = log.open()?;
        if daemon {
            // Best effort: the tracing output switches either way.
            let _ = nix::unistd::dup2_stderr(&file);
        }
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(file));
        Ok(())
    }
}

/// Install the global subscriber writing to `file` (or standard error) at
/// `default_level` unless the environment says otherwise; the sink writes
/// synchronously until [`LogSink::start`]. A second call
/// keeps the first subscriber.
pub fn init(format: LogFormat, file: Option<File>, default_level: tracing::Level) -> LogSink {
    let ansi = file.is_none() && io::stderr().is_terminal();
    let target: Target = Arc::new(Mutex::new(file.map(Arc::new)));
    let out = target.clone();
    let sink = LogSink {
        file: target,
        queue: LineQueue::new(
            lines::CAPACITY,
            Box::new(move |batch: &[u8]| write_to(&out, batch)),
            dropped_notice(format),
        ),
    };
    let filter = EnvFilter::try_from_env("SOCKBOX_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level.as_str().to_ascii_lowercase()));
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
    sink
}

/// The sink of the global subscriber, once [`init`] installed one.
static INSTALLED: OnceLock<LogSink> = OnceLock::new();

/// Wait until the global log's queued lines are written, or until
/// `deadline` (true at once when no log was installed).
pub fn flush(deadline: Instant) -> bool {
    INSTALLED.get().is_none_or(|s| s.flush(deadline))
}
