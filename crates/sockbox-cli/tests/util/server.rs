//! A sockbox process a test starts and talks to (a server, usually): its
//! standard error (and, when asked, standard output) is read line by line on
//! threads, it can be waited for with a bound, and it is killed and reaped
//! on drop, even when the test fails.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running sockbox process; see the module documentation.
pub struct Spawned {
    /// The process. Its `stdout` is still there when it was not collected.
    pub child: Child,
    out: Option<Receiver<String>>,
    err: Receiver<String>,
    log: Arc<Mutex<String>>,
    err_reader: Option<JoinHandle<()>>,
}

/// Send every line of `r` to a channel (and, with `log`, append it there).
fn read_lines(
    r: impl Read + Send + 'static,
    log: Option<Arc<Mutex<String>>>,
) -> (Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = channel();
    let handle = std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(log) = &log {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
            let _ = tx.send(line);
        }
    });
    (rx, handle)
}

impl Spawned {
    /// Start `cmd` with standard input from `/dev/null`, its standard output
    /// collected line by line ([`line`](Self::line)).
    pub fn start(cmd: Command) -> Self {
        let mut s = Self::start_with(cmd, Stdio::null(), Stdio::piped());
        let stdout = s.child.stdout.take().unwrap();
        s.out = Some(read_lines(stdout, None).0);
        s
    }

    /// Start `cmd` with these standard input and output, left to the caller
    /// (`child.stdin` / `child.stdout` when piped).
    pub fn start_with(mut cmd: Command, stdin: Stdio, stdout: Stdio) -> Self {
        let mut child = cmd
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockbox");
        let log = Arc::new(Mutex::new(String::new()));
        let (err, handle) = read_lines(child.stderr.take().unwrap(), Some(log.clone()));
        Self {
            child,
            out: None,
            err,
            log,
            err_reader: Some(handle),
        }
    }

    /// Send it a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Everything the process wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait for a line of standard error containing `needle` (looking only
    /// at lines no earlier call has passed over) and return it; panics with
    /// the log when none comes within `within`.
    pub fn wait_for_stderr(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.err.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no {needle:?} line on standard error: {}", self.log());
    }

    /// Wait for the line naming where the server listens (`… MARKER ADDR …`,
    /// the first word after `marker` that is a socket address) and return
    /// that address.
    pub fn wait_addr(&self, marker: &str) -> SocketAddr {
        let line = self.wait_for_stderr(marker, Duration::from_secs(20));
        line.split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"))
    }

    /// The next line of standard output, within `within`.
    pub fn line(&self, within: Duration) -> Option<String> {
        let out = self.out.as_ref().expect("standard output is collected");
        out.recv_timeout(within).ok()
    }

    /// Wait up to `within` for the process to exit; then the whole of its
    /// standard error is in [`log`](Self::log).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader ends at end of file, unless a program the server started
        // still holds standard error open: wait a little, not forever.
        if let Some(h) = self.err_reader.take() {
            let until = Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        Some(status)
    }

    /// Like [`wait_exit`](Self::wait_exit), but a process still running
    /// after `within` is killed and the test fails.
    pub fn must_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(s) = self.wait_exit(within) {
            return s;
        }
        let _ = self.child.kill();
        panic!(
            "process did not exit within {within:?}; its log: {}",
            self.log()
        );
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// A child process that is killed and reaped on drop, for tests that need
/// its pipes to themselves.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        kill_and_reap(&mut self.0);
    }
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
