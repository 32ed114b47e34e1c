//! Detach, readiness, pid file, signals, log rotation, systemd notify,
//! grace: the daemon layer driven through `sockbox echo`.

use super::*;

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
    env.wait_log("took over stale pid file");
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
fn bind_failure_makes_the_parent_exit_nonzero_with_the_bind_error() {
    let env = Env::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (out, _) = env.run(env.command(&["echo", "127.0.0.1", &port]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("TCP: cannot bind 127.0.0.1:{port}")) && err.contains("in use"),
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
    let mut cmd = env.command(&["echo", "127.0.0.1", "0", "--notify"]);
    cmd.env("NOTIFY_SOCKET", &sock_path);
    let d = env.launch(cmd);
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
    #[expect(unsafe_code)]
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
        .code(2)
        .stderr(predicates::str::contains("/nonexistent-sockbox/x.log"));
    sockbox().args(["echo", "70000"]).assert().code(2);
    sockbox()
        .args(["echo", "0", "--tcp-only", "--udp-only"])
        .assert()
        .code(2);
}

/// Regression: with standard error closed (`sockbox echo 2>&1 | head -2`), a
/// log write failed, tracing-subscriber reported it with `eprintln!`, which
/// panicked inside the signal task, and SIGINT/SIGTERM were ignored from
/// then on.
#[test]
fn signals_still_work_after_stderr_is_closed() {
    let mut child = Guard(
        sockbox_std()
            .args(["echo", "127.0.0.1", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    // Wait for the first line (it is up), then close our end of the pipe.
    let mut first = [0u8; 1];
    stderr.read_exact(&mut first).unwrap();
    drop(stderr);
    let pid = Pid::from_raw(child.0.id() as i32);
    // The first signal's log line hits the closed pipe; the second must
    // still be handled (a second SIGINT exits 130 at once).
    kill(pid, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let _ = kill(pid, Signal::SIGINT);
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "ignored SIGINT once stderr was closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(matches!(status.code(), Some(0 | 130)), "{status:?}");
}
