//! Integration tests: the daemon layer (`--daemon`, `--pid-file`, `--user`,
//! `--chroot`, signals, systemd notify, grace), exercised through
//! `sockbox echo`, and `sockbox echo` itself.
//!
//! The test process makes itself a child subreaper, so daemons (orphaned by
//! the double fork) are reparented to it rather than to init: it can then
//! wait for them, see their exit status, and never leaves them behind. Every
//! daemon is held by a [`Daemon`] guard that kills and reaps it on drop.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::util::netns::wait_until;
use crate::util::server::{Guard, Spawned};
use crate::util::{procs, require_root, sockbox, sockbox_std};

const NOBODY: u32 = 65534;

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER"));
}

/// A daemon started by a test: killed (if still running) and reaped on drop.
struct Daemon {
    pid: i32,
}

impl Daemon {
    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid), sig).unwrap();
    }

    /// Wait (bounded) for the daemon to exit; its status.
    fn wait_exit(&self, secs: u64) -> Option<WaitStatus> {
        reap(self.pid, Duration::from_secs(secs))
    }

    fn status(&self) -> String {
        fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.pid);
        if kill(pid, None).is_ok() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = reap(self.pid, Duration::from_secs(5));
        }
    }
}

/// Reap `pid` (our child or, as subreaper, our orphaned grandchild).
fn reap(pid: i32, timeout: Duration) -> Option<WaitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::EINTR) => {}
            Ok(st) => return Some(st),
            // Not our child (should not happen with the subreaper): poll /proc.
            Err(_) => {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return None;
                }
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp directory with the usual file names.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        become_subreaper();
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("echo.pid")
    }
    fn log_file(&self) -> PathBuf {
        self.dir.path().join("echo.log")
    }
    fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }
    fn path_str(p: &Path) -> String {
        p.to_str().unwrap().to_owned()
    }

    /// `sockbox ARGS --daemon --pid-file … --log-file …`, ready to run.
    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> assert_cmd::Command {
        let mut cmd = sockbox();
        cmd.args(args)
            .arg("--daemon")
            .arg("--pid-file")
            .arg(self.pid_file())
            .arg("--log-file")
            .arg(self.log_file())
            .timeout(Duration::from_secs(30));
        cmd
    }

    /// Run `cmd` (from [`Self::command`]): the parent's output, and the
    /// daemon when it started.
    fn run(&self, mut cmd: assert_cmd::Command) -> (Output, Option<Daemon>) {
        let out = cmd.output().unwrap();
        let daemon = out.status.success().then(|| Daemon {
            pid: read_pid(&self.pid_file()),
        });
        (out, daemon)
    }

    /// Run `cmd` and insist the daemon started.
    fn launch(&self, cmd: assert_cmd::Command) -> Daemon {
        let (out, d) = self.run(cmd);
        assert!(
            out.status.success(),
            "status {:?}, stderr: {}\nlog: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        d.unwrap()
    }

    /// `sockbox echo 127.0.0.1 0 --daemon --pid-file … --log-file … EXTRA`:
    /// the parent's output, and the daemon when it started.
    fn start(&self, extra: &[&str]) -> (Output, Option<Daemon>) {
        self.run(self.command(&[&["echo", "127.0.0.1", "0"], extra].concat()))
    }

    /// Start `sockbox echo` and insist it worked.
    fn start_ok(&self, extra: &[&str]) -> Daemon {
        self.launch(self.command(&[&["echo", "127.0.0.1", "0"], extra].concat()))
    }

    /// The port the daemon logged (it binds port 0).
    fn port(&self) -> u16 {
        let mut port = None;
        assert!(
            wait_until(10.0, || {
                port = listening_port(&self.log());
                port.is_some()
            }),
            "no 'listening' line in the log: {}",
            self.log()
        );
        port.unwrap()
    }

    fn wait_log(&self, needle: &str) {
        assert!(
            wait_until(10.0, || self.log().contains(needle)),
            "{needle:?} never appeared in the log: {}",
            self.log()
        );
    }
}

fn read_pid(path: &Path) -> i32 {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "pid file {text:?} ends with a newline"
    );
    text.trim().parse().unwrap()
}

/// The TCP port of an "echo server listening" line, text or JSON.
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .find(|l| l.contains("echo server listening"))
        .and_then(|l| {
            let at = l.find("tcp")?;
            let rest = &l[at..];
            let colon = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
            rest[colon..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
}

fn tcp_echo(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(NetShutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

fn udp_echo(port: u16, data: &[u8]) -> Vec<u8> {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        u.send_to(data, ("127.0.0.1", port)).unwrap();
        if let Ok(n) = u.recv(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no UDP echo from port {port}");
}

/// Processes whose parent is this test process (a subreaper), running
/// `sockbox` with `marker` on the command line and not yet exited (zombies
/// among them are reaped).
fn live_children_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for p in procs::children(std::process::id()) {
        if !procs::cmdline(p.pid).contains(marker) {
            continue;
        }
        if p.state == 'Z' {
            let _ = reap(p.pid as i32, Duration::from_secs(1));
        } else {
            found.push(p.pid as i32);
        }
    }
    found
}

mod lifecycle;
mod privileges;
mod servers;
mod startup;

/// A port free for both TCP and UDP on 127.0.0.1 (released again: a small
/// race with other programs, acceptable on a test machine).
fn free_port() -> u16 {
    for _ in 0..50 {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Start `sockbox ARGS --daemon --pid-file … --log-file …` (`{port}` in ARGS
/// is replaced), check it is detached, locked and serving, then SIGTERM it
/// and check it exits 0 and removes its pid file.
/// What a daemonized server is checked to be serving.
#[derive(Clone, Copy)]
enum Serves {
    /// Accepts TCP on 127.0.0.1:{port}.
    Tcp,
    /// Holds UDP 127.0.0.1:{port}.
    Udp,
    /// Joined group 239.1.2.3 on {port}.
    Group,
}

fn daemonizes(args: &str, serves: Serves) {
    let env = Env::new();
    let port = free_port();
    let args: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let d = env.launch(env.command(&args));
    let f = File::open(env.pid_file()).unwrap();
    assert!(
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err(),
        "{args:?}: pid file not locked"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{}/cwd", d.pid)).unwrap(),
        Path::new("/")
    );
    match serves {
        Serves::Tcp => {
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{args:?}: not serving on {port}: {e}"));
        }
        Serves::Udp => assert!(
            UdpSocket::bind(("127.0.0.1", port)).is_err(),
            "{args:?}: nothing bound UDP port {port}"
        ),
        // A group socket shares its port (SO_REUSEADDR): its log says it joined.
        Serves::Group => env.wait_log(&format!("listening on udp 239.1.2.3:{port}")),
    }
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(20),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0)),
        "{args:?}: log: {}",
        env.log()
    );
    assert!(!env.pid_file().exists(), "{args:?}: pid file left behind");
}

/// Children of `parent` that are zombies (state Z in `/proc/*/stat`).
fn zombie_children(parent: i32) -> Vec<u32> {
    procs::zombies(parent as u32)
}
