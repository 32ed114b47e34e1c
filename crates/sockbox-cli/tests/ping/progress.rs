//! The sweep progress bar: drawn when stderr is a terminal (a
//! pseudo-terminal here), redrawn at a bounded rate, never mixed into
//! stdout, erased at the end and on Ctrl-C before the summary; absent when
//! stderr is not a terminal, with --json and with -q.
//!
//! Each run has a network namespace of its own, loopback only: a raw ICMP
//! socket sees every echo reply of its namespace, and the sweeps here would
//! otherwise show up as foreign replies in the other ping tests.

use std::fs::File;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

use super::Guard;
use crate::util::netns::Netns;
use crate::util::require_root;

/// What the bar writes before each draw and to erase itself.
const ERASE: &[u8] = b"\r\x1b[2K";
/// The text of every drawn bar.
const BAR: &str = " targets done";
/// The bar is drawn at most this often (`REDRAW_EVERY` in the code).
const REDRAW: Duration = Duration::from_millis(100);

/// A `sockbox` run with its stderr on a pseudo-terminal and stdout piped.
struct TtyRun {
    child: Guard,
    /// Everything the child writes to the terminal, chunk by chunk.
    tty: mpsc::Receiver<Vec<u8>>,
    stdout: JoinHandle<Vec<u8>>,
    seen: Vec<u8>,
    /// Dropped last, after the child is gone.
    _ns: Netns,
}

impl TtyRun {
    fn spawn(args: &[&str]) -> Self {
        let ns = Netns::new("pg");
        let size = Winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).unwrap();
        let child = {
            // The command holds the slave end: dropped with it at the end
            // of this block, so the master reads EOF (EIO) once the child
            // has exited.
            // `ip netns exec` execs sockbox: the child is sockbox itself.
            let mut cmd: Command = ns.sockbox();
            cmd.args(args)
                .env("TERM", "xterm")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(pty.slave));
            cmd.spawn().unwrap()
        };
        let mut child = Guard(child);
        let mut out = child.0.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let (tx, tty) = mpsc::channel();
        let mut master = File::from(pty.master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO when no slave end is open any more.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            tty,
            stdout,
            seen: Vec::new(),
            _ns: ns,
        }
    }

    /// Read the terminal until `pred` holds for what was seen (bounded).
    fn read_until(&mut self, limit: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let end = Instant::now() + limit;
        while !pred(&self.seen) {
            let left = end.saturating_duration_since(Instant::now());
            match self.tty.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(_) => return false,
            }
        }
        true
    }

    /// Wait for the exit (bounded), then read the rest of the terminal
    /// output and stdout. Returns (exit code, terminal bytes, stdout).
    fn finish(mut self, limit: Duration) -> (Option<i32>, Vec<u8>, String) {
        let status = wait_exit(&mut self.child.0, limit);
        // The reader ends on EIO once the child has exited.
        while let Ok(chunk) = self.tty.recv_timeout(Duration::from_secs(5)) {
            self.seen.extend_from_slice(&chunk);
        }
        let stdout = String::from_utf8(self.stdout.join().unwrap()).unwrap();
        (status, self.seen, stdout)
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(
            Instant::now() < end,
            "sockbox still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[test]
fn sweep_draws_a_bar_on_a_terminal_and_erases_it() {
    if !require_root("sweep_draws_a_bar_on_a_terminal_and_erases_it") {
        return;
    }
    let t0 = Instant::now();
    // 254 targets 10 ms apart: about 2.5 s.
    let run = TtyRun::spawn(&["ping", "-g", "127.0.0.0/24"]);
    let (code, tty, stdout) = run.finish(Duration::from_secs(30));
    let took = t0.elapsed();
    let text = String::from_utf8_lossy(&tty);
    assert_eq!(code, Some(0), "{text:?}");

    // The bar appeared, with its count.
    assert!(text.contains("/254 targets done"), "{text:?}");
    assert!(text.contains("[#"), "{text:?}");
    // Redrawn at a bounded rate, not once per target.
    let draws = text.matches(BAR).count();
    let most = usize::try_from(took.as_millis() / REDRAW.as_millis()).unwrap() + 2;
    assert!(
        (2..=most).contains(&draws),
        "{draws} draws in {took:?}: {text:?}"
    );
    // Every draw starts by erasing the line, and the run ends erased: the
    // last bytes on the terminal are the erase sequence.
    assert!(count(&tty, ERASE) > draws, "{text:?}");
    assert!(tty.ends_with(ERASE), "{text:?}");

    // Stdout has the results only, no piece of the bar.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 254, "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("127.0.0.") && l.ends_with(" is alive")),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    assert!(!stdout.contains(BAR), "{stdout}");
}

/// Ctrl-C: the bar is erased before the per-target summary is printed.
#[test]
fn interrupt_erases_the_bar_before_the_summary() {
    if !require_root("interrupt_erases_the_bar_before_the_summary") {
        return;
    }
    let mut run = TtyRun::spawn(&["ping", "-c", "1000", "-p", "20", "127.0.0.1", "127.0.0.2"]);
    let drawn = run.read_until(Duration::from_secs(10), |s| {
        String::from_utf8_lossy(s).contains("0/2 targets done")
    });
    assert!(drawn, "no bar: {:?}", String::from_utf8_lossy(&run.seen));
    // Both targets probed a few times before the interrupt.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(run.child.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let (code, tty, stdout) = run.finish(Duration::from_secs(10));
    let text = String::from_utf8_lossy(&tty);
    assert_eq!(code, Some(0), "{text:?}");
    // The summary comes after the last erase, and no bar after it.
    let erased = rfind(&tty, ERASE).unwrap();
    let tail = String::from_utf8_lossy(&tty[erased + ERASE.len()..]);
    assert!(tail.contains("127.0.0.1 : xmt/rcv/%loss = "), "{text:?}");
    assert!(tail.contains("127.0.0.2 : xmt/rcv/%loss = "), "{text:?}");
    assert!(!tail.contains(BAR), "{text:?}");
    // On the screen every summary line is a line of its own: what is left
    // of each line after the erasures starts with the target.
    for l in text.split("\r\n").filter(|l| l.contains("xmt/rcv")) {
        let shown = l.rsplit("\r\x1b[2K").next().unwrap_or(l);
        assert!(shown.starts_with("127.0.0."), "{l:?} in {text:?}");
        assert!(!shown.contains(BAR), "{l:?} in {text:?}");
    }
    assert!(stdout.contains("127.0.0.1 : [0], 64 bytes"), "{stdout}");
    assert!(
        !stdout.contains('\x1b') && !stdout.contains(BAR),
        "{stdout:?}"
    );
}

/// --json (machine output) and -q (silence) draw no bar even on a terminal.
#[test]
fn json_and_quiet_never_draw_the_bar() {
    if !require_root("json_and_quiet_never_draw_the_bar") {
        return;
    }
    for flag in ["--json", "-q"] {
        let run = TtyRun::spawn(&["ping", "-g", "127.0.0.0/28", "-i", "5ms", flag]);
        let (code, tty, _) = run.finish(Duration::from_secs(30));
        assert_eq!(code, Some(0), "{flag}");
        let text = String::from_utf8_lossy(&tty);
        assert!(
            !text.contains(BAR) && !text.contains('\x1b'),
            "{flag}: {text:?}"
        );
    }
}

/// Stderr not a terminal (a pipe): no bar bytes at all.
#[test]
fn no_bar_when_stderr_is_not_a_terminal() {
    if !require_root("no_bar_when_stderr_is_not_a_terminal") {
        return;
    }
    let ns = Netns::new("pn");
    let mut child = Guard(
        ns.sockbox()
            .args(["ping", "-g", "127.0.0.0/24"])
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (mut out, mut err) = (
        child.0.stdout.take().unwrap(),
        child.0.stderr.take().unwrap(),
    );
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    assert_eq!(wait_exit(&mut child.0, Duration::from_secs(30)), Some(0));
    let o = std::process::Output {
        status: child.0.wait().unwrap(),
        stdout,
        stderr: err.join().unwrap(),
    };
    assert!(
        o.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 254);
    assert!(!stdout.contains('\x1b') && !stdout.contains(BAR));
}
