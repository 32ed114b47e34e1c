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
use std::process::{Child, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::util::netns::wait_until;
use crate::util::{require_root, sockbox, sockbox_std};

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

/// A foreground server: killed and reaped on drop.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

    /// `sockbox echo 127.0.0.1 0 --daemon --pid-file … --log-file … EXTRA`:
    /// the parent's output, and the daemon when it started.
    fn start(&self, extra: &[&str]) -> (Output, Option<Daemon>) {
        let out = sockbox()
            .args(["echo", "127.0.0.1", "0", "--daemon"])
            .arg("--pid-file")
            .arg(self.pid_file())
            .arg("--log-file")
            .arg(self.log_file())
            .args(extra)
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let daemon = out.status.success().then(|| Daemon {
            pid: read_pid(&self.pid_file()),
        });
        (out, daemon)
    }

    /// Start and insist it worked.
    fn start_ok(&self, extra: &[&str]) -> Daemon {
        let (out, d) = self.start(extra);
        assert!(
            out.status.success(),
            "status {:?}, stderr: {}\nlog: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        d.unwrap()
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

/// Processes whose parent is this test process, running `sockbox echo`
/// with `marker` on the command line and not yet exited.
fn live_children_with(marker: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if fields.get(1) == Some(&me.as_str()) && cmdline.contains(marker) {
            if fields[0] == "Z" {
                let _ = reap(pid, Duration::from_secs(1));
            } else {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn daemon_parent_exits_0_once_ready_and_the_daemon_is_detached() {
    let env = Env::new();
    let d = env.start_ok(&[]);
    let port = env.port();
    // Ready means serving: both protocols answer at once.
    assert_eq!(tcp_echo(port, b"hello daemon"), b"hello daemon");
    assert_eq!(udp_echo(port, b"datagram"), b"datagram");

    let status = d.status();
    assert!(status.contains("Umask:\t0027"), "{status}");
    // SIGPIPE (13) is ignored: a client vanishing mid-write cannot kill it.
    let sig_ign = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .map(|m| u64::from_str_radix(m, 16).unwrap())
        .unwrap();
    assert_ne!(
        sig_ign & (1 << (13 - 1)),
        0,
        "SIGPIPE not ignored: {status}"
    );
    let proc = PathBuf::from(format!("/proc/{}", d.pid));
    assert_eq!(fs::read_link(proc.join("cwd")).unwrap(), Path::new("/"));
    assert_eq!(
        fs::read_link(proc.join("fd/0")).unwrap(),
        Path::new("/dev/null")
    );
    assert_eq!(
        fs::read_link(proc.join("fd/1")).unwrap(),
        Path::new("/dev/null")
    );
    assert_eq!(fs::read_link(proc.join("fd/2")).unwrap(), env.log_file());
    // Not a session leader (second fork), no controlling terminal, and in a
    // session of its own.
    let stat = fs::read_to_string(proc.join("stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let (sid, tty): (i32, i32) = (fields[3].parse().unwrap(), fields[4].parse().unwrap());
    assert_ne!(sid, d.pid, "the daemon must not be a session leader");
    assert_ne!(sid, nix::unistd::getsid(None).unwrap().as_raw());
    assert_eq!(tty, 0, "no controlling terminal");
}

#[test]
fn pid_file_holds_the_pid_and_is_locked() {
    let env = Env::new();
    let d = env.start_ok(&[]);
    assert!(Path::new(&format!("/proc/{}", d.pid)).exists());
    let f = File::open(env.pid_file()).unwrap();
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Err((_, e)) => assert_eq!(e, nix::Error::EWOULDBLOCK),
        Ok(_) => panic!("the pid file is not locked by the daemon"),
    }
    // Only the pid file and the log are in the directory: no temporary left.
    let mut names: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["echo.log", "echo.pid"]);
}

#[test]
fn second_instance_exits_2_naming_the_running_pid() {
    let env = Env::new();
    let d = env.start_ok(&[]);
    let (out, second) = env.start(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(second.is_none());
    assert!(
        err.contains(&format!("already running as pid {}", d.pid)),
        "{err}"
    );
    // The first one is untouched.
    assert_eq!(read_pid(&env.pid_file()), d.pid);
    assert_eq!(tcp_echo(env.port(), b"still here"), b"still here");
}

#[test]
fn stale_pid_file_is_taken_over_with_a_notice() {
    let env = Env::new();
    // A pid that is certainly gone: a child we started and reaped.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    fs::write(env.pid_file(), format!("{dead_pid}\n")).unwrap();
    let (out, d) = env.start(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let d = d.unwrap();
    assert!(
        err.contains("stale") && err.contains(&dead_pid.to_string()),
        "notice: {err}"
    );
    assert_ne!(d.pid as u32, dead_pid);
    assert!(env.log().contains("took over stale pid file"));
}

#[test]
fn sigterm_leaves_no_pid_file_and_no_process() {
    let env = Env::new();
    let d = env.start_ok(&[]);
    env.port();
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(15);
    assert_eq!(
        st,
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0)),
        "log: {}",
        env.log()
    );
    assert!(!env.pid_file().exists(), "pid file removed");
    assert!(
        !Path::new(&format!("/proc/{}", d.pid)).exists(),
        "process gone"
    );
    let log = env.log();
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "{log}");
}

#[test]
fn sighup_reopens_the_log_file() {
    let env = Env::new();
    let d = env.start_ok(&[]);
    let port = env.port();
    env.wait_log("ready");
    let rotated = env.dir.path().join("echo.log.1");
    fs::rename(env.log_file(), &rotated).unwrap();
    d.signal(Signal::SIGHUP);
    env.wait_log("log file reopened");
    assert_eq!(tcp_echo(port, b"after rotation"), b"after rotation");
    env.wait_log("tcp session closed");
    let old = fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains("ready") && !old.contains("tcp session"),
        "old log: {old}"
    );
    // The daemon's stderr follows the new file too.
    assert_eq!(
        fs::read_link(format!("/proc/{}/fd/2", d.pid)).unwrap(),
        env.log_file()
    );
}

#[test]
fn sigusr1_logs_statistics_as_json() {
    let env = Env::new();
    let d = env.start_ok(&["--log-format", "json"]);
    let port = env.port();
    assert_eq!(tcp_echo(port, b"12345"), b"12345");
    env.wait_log("tcp session closed");
    d.signal(Signal::SIGUSR1);
    env.wait_log("statistics");
    let log = env.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let stats = lines
        .iter()
        .find(|v| v["fields"]["message"] == "statistics")
        .unwrap();
    assert_eq!(stats["fields"]["accepted"], 1, "{stats}");
    assert_eq!(stats["fields"]["active"], 0, "{stats}");
    assert_eq!(stats["fields"]["bytes_in"], 5, "{stats}");
    assert_eq!(stats["fields"]["bytes_out"], 5, "{stats}");
}

#[test]
fn user_nobody_drops_every_id_on_every_thread_and_still_serves() {
    if !require_root("user_nobody_drops_every_id_on_every_thread_and_still_serves") {
        return;
    }
    let env = Env::new();
    let d = env.start_ok(&["--user", "nobody"]);
    let port = env.port();
    let tasks: Vec<PathBuf> = fs::read_dir(format!("/proc/{}/task", d.pid))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(tasks.len() > 1, "the runtime has worker threads");
    let want = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
    for task in tasks {
        let st = fs::read_to_string(task.join("status")).unwrap();
        let field = |k: &str| {
            st.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
                .unwrap()
                .to_owned()
        };
        // real, effective, saved (and filesystem) ids.
        assert_eq!(field("Uid"), want, "{}", task.display());
        assert_eq!(field("Gid"), want, "{}", task.display());
        for cap in ["CapPrm", "CapEff", "CapAmb", "CapBnd"] {
            assert_eq!(
                field(cap),
                "0000000000000000",
                "{cap} of {}",
                task.display()
            );
        }
        assert_eq!(field("NoNewPrivs"), "1");
    }
    assert!(env.log().contains("dropped privileges"));
    assert_eq!(tcp_echo(port, b"as nobody"), b"as nobody");
    assert_eq!(udp_echo(port, b"udp as nobody"), b"udp as nobody");
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
    // nobody may not unlink in this root-only directory: the pid file is
    // emptied instead, and unlocked it counts as stale.
    let left = fs::read_to_string(env.pid_file()).unwrap_or_default();
    assert_eq!(left, "", "pid file removed or emptied");
}

#[test]
fn chroot_with_user_jails_the_daemon() {
    if !require_root("chroot_with_user_jails_the_daemon") {
        return;
    }
    let env = Env::new();
    let jail = tempfile::tempdir().unwrap();
    let jail_path = Env::path_str(jail.path());
    let d = env.start_ok(&["--user", "nobody", "--chroot", &jail_path]);
    let port = env.port();
    assert_eq!(
        fs::read_link(format!("/proc/{}/root", d.pid)).unwrap(),
        fs::canonicalize(jail.path()).unwrap()
    );
    assert_eq!(tcp_echo(port, b"jailed"), b"jailed");
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}

#[test]
fn user_flag_is_refused_without_root() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        // Already unprivileged: try directly.
        let out = sockbox_std()
            .args(["echo", "0", "--user", "nobody"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        return;
    }
    let out = sockbox_std()
        .args(["echo", "127.0.0.1", "0", "--user", "nobody"])
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping: the sockbox binary is not executable as nobody: {e}");
            return;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--user needs root") && err.contains("65534"),
        "{err}"
    );
}

#[test]
fn bind_failure_makes_the_parent_exit_nonzero_with_the_bind_error() {
    let env = Env::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sockbox()
        .args(["echo", "127.0.0.1", &port, "--daemon", "--pid-file"])
        .arg(env.pid_file())
        .arg("--log-file")
        .arg(env.log_file())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("bind TCP 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    assert!(!env.pid_file().exists(), "no pid file left behind");
    // The daemon exited by itself: nothing of ours is left running.
    let marker = format!("127.0.0.1 {port}");
    assert!(
        wait_until(10.0, || live_children_with(&marker).is_empty()),
        "daemon still running: {:?}",
        live_children_with(&marker)
    );
    assert!(env.log().contains("in use"), "the log has the error too");
}

#[test]
fn notify_socket_receives_ready_and_stopping() {
    let env = Env::new();
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let out = sockbox()
        .args([
            "echo",
            "127.0.0.1",
            "0",
            "--daemon",
            "--notify",
            "--pid-file",
        ])
        .arg(env.pid_file())
        .arg("--log-file")
        .arg(env.log_file())
        .env("NOTIFY_SOCKET", &sock_path)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Daemon {
        pid: read_pid(&env.pid_file()),
    };
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", d.pid)), "{msg}");
    d.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}

#[test]
fn grace_bounds_the_shutdown_when_a_client_does_not_read() {
    let env = Env::new();
    let d = env.start_ok(&["--grace", "1s", "--buffer", "65536"]);
    let port = env.port();
    // Send without ever reading until the server blocks writing back.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.write_all(&chunk).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server never stopped reading"
        );
    }
    let t0 = Instant::now();
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(10);
    assert_eq!(
        st,
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0)),
        "log: {}",
        env.log()
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "waited for the grace period: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "but not much longer: {took:?}"
    );
    assert!(env.log().contains("grace period over"), "{}", env.log());
}

#[test]
fn the_daemon_keeps_no_descriptor_it_inherited() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    // A pipe whose write end only the sockbox child gets, as fd 100
    // (without close-on-exec, as a shell or CI runner would pass it).
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let raw_tx = tx.as_raw_fd();
    let mut cmd = sockbox_std();
    cmd.args(["echo", "127.0.0.1", "0", "--daemon", "--pid-file"])
        .arg(env.pid_file())
        .arg("--log-file")
        .arg(env.log_file())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[allow(unsafe_code)]
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child only.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw_tx, 100) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    drop(tx);
    assert!(status.success());
    let d = Daemon {
        pid: read_pid(&env.pid_file()),
    };
    assert!(
        !Path::new(&format!("/proc/{}/fd/100", d.pid)).exists(),
        "the daemon kept the inherited fd 100"
    );
    // EOF on the read end: no process holds the write end any more.
    let mut rx = File::from(rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = done_tx.send(rx.read(&mut b).map(|n| n == 0));
    });
    let eof = done_rx.recv_timeout(Duration::from_secs(10));
    assert!(
        matches!(eof, Ok(Ok(true))),
        "the daemon still holds the inherited pipe"
    );
}

#[test]
fn startup_errors_exit_with_their_code_before_forking() {
    if require_root("startup_errors_exit_with_their_code_before_forking") {
        sockbox()
            .args(["echo", "0", "--daemon", "--user", "no-such-user-sockbox"])
            .timeout(Duration::from_secs(10))
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no-such-user-sockbox"));
    }
    sockbox()
        .args([
            "echo",
            "0",
            "--daemon",
            "--log-file",
            "/nonexistent-sockbox/x.log",
        ])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("/nonexistent-sockbox/x.log"));
    sockbox().args(["echo", "70000"]).assert().code(2);
    sockbox()
        .args(["echo", "0", "--tcp-only", "--udp-only"])
        .assert()
        .code(2);
}

#[test]
fn foreground_echo_serves_tcp_and_udp_and_stops_on_ctrl_c() {
    let mut child = Foreground(
        sockbox_std()
            .args(["echo", "127.0.0.1", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read the log lines from stderr on a thread.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let port = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("a log line");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(p) = listening_port(&line) {
            break p;
        }
        assert!(Instant::now() < deadline, "{seen}");
    };
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(tcp_echo(port, &big), big, "large echo, byte for byte");
    assert_eq!(udp_echo(port, b"udp"), b"udp");
    // A client that leaves ends its session.
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"bye").unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).unwrap();
    }
    let mut closed = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while closed < 2 && Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            closed += usize::from(line.contains("tcp session closed"));
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    assert_eq!(
        closed, 2,
        "both sessions ended when their clients left: {seen}"
    );
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

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
fn daemonizes(args: &str, tcp: bool) {
    let env = Env::new();
    let port = free_port();
    let args: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let out = sockbox()
        .args(&args)
        .arg("--daemon")
        .arg("--pid-file")
        .arg(env.pid_file())
        .arg("--log-file")
        .arg(env.log_file())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {:?} {}\nlog: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        env.log()
    );
    let d = Daemon {
        pid: read_pid(&env.pid_file()),
    };
    let f = File::open(env.pid_file()).unwrap();
    assert!(
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err(),
        "{args:?}: pid file not locked"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{}/cwd", d.pid)).unwrap(),
        Path::new("/")
    );
    if tcp {
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{args:?}: not serving on {port}: {e}"));
    } else {
        assert!(
            UdpSocket::bind(("127.0.0.1", port)).is_err(),
            "{args:?}: nothing bound UDP port {port}"
        );
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

#[test]
fn listen_daemonizes() {
    daemonizes("listen -k 127.0.0.1 {port} -e cat", true);
}

#[test]
fn chat_daemonizes() {
    daemonizes("chat 127.0.0.1 {port}", true);
}

#[test]
fn broker_daemonizes() {
    daemonizes("broker 127.0.0.1 {port}", true);
}

#[test]
fn udp_listen_daemonizes() {
    daemonizes("udp listen 127.0.0.1 {port}", false);
}

#[test]
fn wake_listen_daemonizes() {
    daemonizes("wake listen --bind 127.0.0.1 -p {port}", false);
}

/// Children of `parent` that are zombies (state Z in `/proc/*/stat`).
fn zombie_children(parent: i32) -> Vec<i32> {
    let parent = parent.to_string();
    let mut z = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut f = after.split_whitespace();
        if let (Some(state), Some(ppid)) = (f.next(), f.next())
            && state == "Z"
            && ppid == parent
        {
            z.push(pid);
        }
    }
    z
}

#[test]
fn five_hundred_exec_connections_leave_zero_zombies() {
    let env = Env::new();
    let port = free_port();
    let out = sockbox()
        .args([
            "listen",
            "-k",
            "127.0.0.1",
            &port.to_string(),
            "-e",
            "cat",
            "--daemon",
        ])
        .arg("--pid-file")
        .arg(env.pid_file())
        .arg("--log-file")
        .arg(env.log_file())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Daemon {
        pid: read_pid(&env.pid_file()),
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut most_zombies = 0;
    for i in 0..500u32 {
        assert!(
            Instant::now() < deadline,
            "too slow: {i} connections in 240 s"
        );
        let msg = format!("exec {i}\n");
        assert_eq!(
            tcp_echo(port, msg.as_bytes()),
            msg.as_bytes(),
            "connection {i}"
        );
        if i % 25 == 0 {
            most_zombies = most_zombies.max(zombie_children(d.pid).len());
        }
    }
    // Every `cat` has exited by now (each saw EOF and its output was read):
    // each must have been reaped, promptly.
    assert!(
        wait_until(5.0, || zombie_children(d.pid).is_empty()),
        "zombie children of the daemon: {:?}",
        zombie_children(d.pid)
    );
    assert!(
        most_zombies <= 2,
        "zombies piled up while serving: {most_zombies}"
    );
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(20),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}
