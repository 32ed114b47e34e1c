//! Output that never blocks a server: log lines and JSON events go into a
//! bounded queue that one dedicated thread writes out.
//!
//! A server must not stall because nobody reads its standard output or
//! standard error (a pipe to a stuck consumer, a paused terminal, a
//! journal under pressure). [`LineQueue::push`] only takes a short lock and
//! appends to a queue of at most [`CAPACITY`] lines; when the queue is full
//! the line is dropped and counted. Each time the writer thread takes what
//! is queued and writes it, it follows it with one line (made by the
//! queue's `notice` function) saying how many lines were dropped since the
//! previous write, so the gap is visible exactly where it happened.
//!
//! The harness ([`Daemon`](super::Daemon)) flushes every queue made by
//! [`Ctx::output`](super::Ctx::output) when the server stops, waiting at
//! most until the end of the grace period ([`LineQueue::flush`]). A queue
//! can also be used on its own.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most lines that wait for the writer; more are dropped and counted.
pub const CAPACITY: usize = 10_000;

/// Writes one batch of whole lines; errors are the writer's to ignore.
pub type Output = Box<dyn FnMut(&[u8]) + Send>;

/// Formats the line that reports `n` dropped lines (with its newline).
pub type Notice = Box<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// The least time queued output gets to be written after the server stopped.
pub const FLUSH_MIN: Duration = Duration::from_millis(200);

/// Standard output or standard error, for [`Ctx::output`](super::Ctx::output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// An [`Output`] writing (and flushing) each batch to this stream.
    pub fn output(self) -> Output {
        match self {
            Stream::Stdout => Box::new(|b: &[u8]| {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(b).and_then(|()| o.flush());
            }),
            Stream::Stderr => Box::new(|b: &[u8]| {
                let mut o = std::io::stderr().lock();
                let _ = o.write_all(b).and_then(|()| o.flush());
            }),
        }
    }
}

/// When the harness stops waiting for queued output: `bound` after the
/// shutdown fired (after `now` when the server stopped on its own), and no
/// sooner than [`FLUSH_MIN`] from `now` whatever the server used up.
pub fn flush_deadline(stopped_at: Option<Instant>, bound: Duration, now: Instant) -> Instant {
    (stopped_at.unwrap_or(now) + bound).max(now + FLUSH_MIN)
}

/// The queue's bookkeeping without threads: bounded, drops and counts.
#[derive(Debug)]
pub struct Backlog {
    lines: VecDeque<Vec<u8>>,
    cap: usize,
    dropped: u64,
}

impl Backlog {
    /// An empty backlog holding at most `cap` lines (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// Queue `line`; false (and counted) when the backlog is full.
    pub fn push(&mut self, line: Vec<u8>) -> bool {
        if self.lines.len() >= self.cap {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.lines.push_back(line);
        true
    }

    /// Everything queued, and how many lines were dropped after it (the
    /// queue only drops once full, so the drops all came after these lines).
    /// Both are reset.
    pub fn take(&mut self) -> (VecDeque<Vec<u8>>, u64) {
        (
            std::mem::take(&mut self.lines),
            std::mem::take(&mut self.dropped),
        )
    }

    /// True when nothing is queued and nothing was dropped since the last take.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.dropped == 0
    }
}

struct State {
    backlog: Backlog,
    /// The writer has taken a batch and not finished writing it.
    busy: bool,
    /// Every handle is gone: write what is left, then stop.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: lines queued, or closed.
    more: Condvar,
    /// Wakes flushers: a batch was written.
    idle: Condvar,
    out: Mutex<Output>,
    notice: Notice,
    /// No writer thread runs (not started, or it could not be): `push`
    /// writes directly.
    inline: AtomicBool,
    /// [`LineQueue::start`] was called.
    started: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, lines: VecDeque<Vec<u8>>, dropped: u64) {
        let mut batch = Vec::with_capacity(lines.iter().map(Vec::len).sum::<usize>() + 64);
        for l in lines {
            batch.extend_from_slice(&l);
        }
        if dropped > 0 {
            batch.extend_from_slice(&(self.notice)(dropped));
        }
        if !batch.is_empty() {
            (self.out.lock().unwrap_or_else(PoisonError::into_inner))(&batch);
        }
    }

    /// The writer thread: take everything queued, write it, repeat.
    fn run(&self) {
        loop {
            let (lines, dropped) = {
                let mut st = self.state();
                while st.backlog.is_empty() && !st.closed {
                    st = self.more.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                if st.backlog.is_empty() {
                    return;
                }
                st.busy = true;
                st.backlog.take()
            };
            self.write(lines, dropped);
            self.state().busy = false;
            self.idle.notify_all();
        }
    }
}

/// Tells the writer to finish once the last [`LineQueue`] clone is gone.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.state().closed = true;
        self.0.more.notify_all();
    }
}

/// A bounded line queue drained by its own writer thread; cheap to clone.
#[derive(Clone)]
pub struct LineQueue {
    handle: Arc<Closer>,
}

impl LineQueue {
    /// A queue that writes to `out`, reporting drops with `notice`. Until
    /// [`LineQueue::start`] it has no thread and writes each line
    /// synchronously: the harness starts the log's writer only after the
    /// hardening that precedes a user switch, so that every thread inherits
    /// it.
    pub fn new(capacity: usize, out: Output, notice: Notice) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                backlog: Backlog::new(capacity),
                busy: false,
                closed: false,
            }),
            more: Condvar::new(),
            idle: Condvar::new(),
            out: Mutex::new(out),
            notice,
            inline: AtomicBool::new(true),
            started: AtomicBool::new(false),
        });
        Self {
            handle: Arc::new(Closer(shared)),
        }
    }

    /// Start the writer thread, named `name` (once; later calls do
    /// nothing). Should no thread be available, lines go on being written
    /// synchronously (the old behaviour) rather than lost; false then.
    pub fn start(&self, name: &str) -> bool {
        let shared = &self.handle.0;
        if shared.started.swap(true, Ordering::AcqRel) {
            return !shared.inline.load(Ordering::Acquire);
        }
        let writer = shared.clone();
        let ok = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || writer.run())
            .is_ok();
        if ok {
            shared.inline.store(false, Ordering::Release);
        }
        ok
    }

    /// [`LineQueue::new`] and [`LineQueue::start`] in one.
    pub fn spawn(name: &str, capacity: usize, out: Output, notice: Notice) -> Self {
        let q = Self::new(capacity, out, notice);
        q.start(name);
        q
    }

    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    /// Queue one line (a newline is added when missing). Never waits for
    /// the output; returns false when the line was dropped because the
    /// queue is full.
    pub fn push(&self, mut line: Vec<u8>) -> bool {
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let shared = self.shared();
        if shared.inline.load(Ordering::Acquire) {
            shared.write(VecDeque::from([line]), 0);
            return true;
        }
        let queued = shared.state().backlog.push(line);
        if queued {
            shared.more.notify_one();
        }
        queued
    }

    /// Wait until everything queued so far (and the dropped-count line, if
    /// due) has been written, or until `deadline`. True when flushed.
    pub fn flush(&self, deadline: Instant) -> bool {
        let shared = self.shared();
        let mut st = shared.state();
        while !st.backlog.is_empty() || st.busy {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = shared
                .idle
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn backlog_drops_and_counts_when_full_and_resets_on_take() {
        let mut b = Backlog::new(3);
        assert!(b.is_empty());
        for i in 0..3u8 {
            assert!(b.push(vec![i]));
        }
        assert!(!b.push(vec![9]));
        assert!(!b.push(vec![9]));
        let (lines, dropped) = b.take();
        assert_eq!(lines, [vec![0], vec![1], vec![2]]);
        assert_eq!(dropped, 2);
        assert!(b.is_empty());
        assert!(b.push(vec![4]), "room again after the take");
        assert_eq!(b.take(), (VecDeque::from([vec![4]]), 0));
        assert_eq!(Backlog::new(0).cap, 1);
    }

    /// An output that blocks until the test lets it go, recording batches.
    fn gated() -> (Output, mpsc::Sender<()>, Arc<Mutex<Vec<u8>>>) {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let out: Output = Box::new(move |b: &[u8]| {
            let _ = go_rx.recv_timeout(Duration::from_secs(10));
            w.lock().unwrap().extend_from_slice(b);
        });
        (out, go_tx, written)
    }

    fn notice() -> Notice {
        Box::new(|n| format!("dropped {n}\n").into_bytes())
    }

    #[test]
    fn a_stuck_output_never_blocks_push_and_drops_are_reported_once_it_catches_up() {
        let (out, go, written) = gated();
        let q = LineQueue::spawn("test-lines", 5, out, notice());
        let t0 = Instant::now();
        assert!(q.push(b"first".to_vec()));
        // Let the writer take "first" and block on it.
        let taken = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            q.shared().state().busy
        });
        assert!(taken, "writer never took the first line");
        let results: Vec<bool> = (0..12)
            .map(|i| q.push(format!("l{i}").into_bytes()))
            .collect();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "push waited for the output"
        );
        assert_eq!(results.iter().filter(|&&ok| ok).count(), 5);
        assert!(
            !q.flush(Instant::now() + Duration::from_millis(50)),
            "still stuck"
        );
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert!(q.flush(Instant::now() + Duration::from_secs(10)));
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "first\nl0\nl1\nl2\nl3\nl4\ndropped 7\n");
        // Later lines flow normally, with no further notice.
        go.send(()).unwrap();
        assert!(q.push(b"after\n".to_vec()));
        assert!(q.flush(Instant::now() + Duration::from_secs(10)));
        assert!(written.lock().unwrap().ends_with(b"dropped 7\nafter\n"));
    }

    #[test]
    fn before_start_lines_are_written_synchronously() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let q = LineQueue::new(
            2,
            Box::new(move |b: &[u8]| w.lock().unwrap().extend_from_slice(b)),
            notice(),
        );
        for i in 0..5 {
            assert!(
                q.push(format!("{i}").into_bytes()),
                "nothing dropped inline"
            );
        }
        assert_eq!(&*written.lock().unwrap(), b"0\n1\n2\n3\n4\n");
        assert!(q.start("test-lines"));
        assert!(q.start("test-lines"), "a second start changes nothing");
        q.push(b"5".to_vec());
        assert!(q.flush(Instant::now() + Duration::from_secs(10)));
        assert!(written.lock().unwrap().ends_with(b"4\n5\n"));
    }

    #[test]
    fn flush_deadline_counts_from_the_shutdown_with_a_floor() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(flush_deadline(Some(t), s, t), t + s);
        assert_eq!(flush_deadline(None, s, t + s), t + 2 * s);
        assert_eq!(flush_deadline(Some(t), s, t + 5 * s), t + 5 * s + FLUSH_MIN);
    }

    #[test]
    fn dropping_the_last_handle_writes_what_is_left() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let q = LineQueue::spawn(
            "test-lines",
            CAPACITY,
            Box::new(move |b: &[u8]| w.lock().unwrap().extend_from_slice(b)),
            notice(),
        );
        for i in 0..100 {
            q.push(format!("{i}").into_bytes());
        }
        drop(q);
        let done = (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            written.lock().unwrap().ends_with(b"99\n")
        });
        assert!(done, "the writer did not finish after the last handle went");
    }
}
