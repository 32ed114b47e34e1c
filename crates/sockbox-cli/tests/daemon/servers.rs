//! Every server subcommand runs in the harness: they all daemonize, `listen
//! --exec` leaves no zombies, and `sockbox echo` in the foreground.

use super::*;

#[test]
fn foreground_echo_serves_tcp_and_udp_and_stops_on_ctrl_c() {
    let mut cmd = sockbox_std();
    cmd.args(["echo", "127.0.0.1", "0"]);
    let mut srv = Spawned::start_with(cmd, Stdio::null(), Stdio::null());
    let line = srv.wait_for_stderr("echo server listening", Duration::from_secs(15));
    let port = listening_port(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
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
    assert!(
        wait_until(10.0, || srv.log().matches("tcp session closed").count()
            == 2),
        "both sessions ended when their clients left: {}",
        srv.log()
    );
    srv.signal(Signal::SIGINT);
    let status = srv
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("did not stop on SIGINT: {}", srv.log()));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn listen_daemonizes() {
    daemonizes("listen -k 127.0.0.1 {port} -e cat", Serves::Tcp);
}

#[test]
fn chat_daemonizes() {
    daemonizes("chat 127.0.0.1 {port}", Serves::Tcp);
}

#[test]
fn broker_daemonizes() {
    daemonizes("broker 127.0.0.1 {port}", Serves::Tcp);
}

#[test]
fn udp_listen_daemonizes() {
    daemonizes("udp listen 127.0.0.1 {port}", Serves::Udp);
}

#[test]
fn mcast_listen_daemonizes() {
    daemonizes("mcast listen 239.1.2.3 {port} --iface lo", Serves::Group);
}

#[test]
fn echo_daemonizes() {
    daemonizes("echo 127.0.0.1 {port}", Serves::Tcp);
}

#[test]
fn wake_listen_daemonizes() {
    daemonizes("wake listen --bind 127.0.0.1 -p {port}", Serves::Udp);
}

#[test]
fn five_hundred_exec_connections_leave_zero_zombies() {
    let env = Env::new();
    let port = free_port();
    let p = port.to_string();
    let d = env.launch(env.command(&["listen", "-k", "127.0.0.1", &p, "-e", "cat"]));
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

/// Start `sockbox ARGS --daemon --pid-file echo.pid --log-file echo.log`
/// from the test's directory, every path relative; the daemon once ready.
fn start_daemon_in(env: &Env, args: &[&str]) -> Daemon {
    let mut cmd = sockbox();
    cmd.current_dir(env.dir.path())
        .args(args)
        .args([
            "--daemon",
            "--pid-file",
            "echo.pid",
            "--log-file",
            "echo.log",
        ])
        .timeout(Duration::from_secs(30));
    let d = env.launch(cmd);
    assert_eq!(
        fs::read_link(format!("/proc/{}/cwd", d.pid)).unwrap(),
        Path::new("/"),
        "the daemon itself runs in /"
    );
    d
}

/// Regression: `--daemon` chdirs to `/`, and relative paths given to
/// servers broke: `-e ./prog` and `-c ./prog` could not be found, a
/// `--reply-exec ./prog` neither. Now file arguments are made absolute when
/// parsed, `-e` programs are resolved before detaching, and programs start
/// in the directory sockbox was started from.
#[test]
fn relative_paths_work_under_daemon() {
    let env = Env::new();
    let dir = env.dir.path();
    let script = dir.join("handler.sh");
    fs::write(
        &script,
        "#!/bin/sh\ncat > seen.txt\necho \"handled in $(pwd)\"\n",
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(dir.join("allow.txt"), "127.0.0.1\n").unwrap();
    let here = fs::canonicalize(dir).unwrap();
    let want = format!("handled in {}\n", here.display());

    for exec in ["-e", "-c"] {
        let port = free_port();
        let p = port.to_string();
        let d = start_daemon_in(
            &env,
            &[
                "listen",
                "-k",
                "127.0.0.1",
                &p,
                exec,
                "./handler.sh",
                "--allowfile",
                "allow.txt",
                "-x",
                "dump.txt",
            ],
        );
        assert_eq!(
            String::from_utf8(tcp_echo(port, b"ping\n")).unwrap(),
            want,
            "{exec}"
        );
        assert_eq!(fs::read_to_string(dir.join("seen.txt")).unwrap(), "ping\n");
        // The allow file is re-read from the starting directory on SIGHUP.
        d.signal(Signal::SIGHUP);
        let log = env.log_file();
        assert!(
            wait_until(10.0, || fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("re-read the allow/deny files")),
            "{exec}: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        let dump = fs::read_to_string(dir.join("dump.txt")).unwrap();
        assert!(dump.contains("|ping.|"), "{exec}: {dump}");
        d.signal(Signal::SIGTERM);
        assert_eq!(
            d.wait_exit(20),
            Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
        );
        fs::remove_file(dir.join("dump.txt")).unwrap();
        fs::remove_file(log).unwrap();
    }

    // udp listen --reply-exec with a relative program.
    let port = free_port();
    let d = start_daemon_in(
        &env,
        &[
            "udp",
            "listen",
            "127.0.0.1",
            &port.to_string(),
            "--reply-exec",
            "./handler.sh",
        ],
    );
    assert_eq!(String::from_utf8(udp_echo(port, b"dgram")).unwrap(), want);
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(20),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}

/// `chat --allowfile` with a relative path: under `--daemon` (which moves
/// to `/`) a SIGHUP still re-reads the file from the starting directory, as
/// for `listen` (the allow/deny flags are one set shared by every server).
#[test]
fn chat_rereads_a_relative_allowfile_under_daemon() {
    let env = Env::new();
    let dir = env.dir.path();
    fs::write(dir.join("allow.txt"), "127.0.0.1\n").unwrap();
    let port = free_port();
    let p = port.to_string();
    let d = start_daemon_in(&env, &["chat", "127.0.0.1", &p, "--allowfile", "allow.txt"]);
    d.signal(Signal::SIGHUP);
    let log = env.log_file();
    assert!(
        wait_until(10.0, || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("re-read the allow/deny files")),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(20),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}

/// `-e` names a program that is not there: exit 2 before anything starts,
/// not a warning per connection in a log nobody reads.
#[test]
fn missing_exec_program_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (prog, want) in [
        ("./nope.sh", "nope.sh"),
        ("sockbox-no-such-program", "$PATH"),
    ] {
        let out = sockbox()
            .current_dir(dir.path())
            .args(["listen", "-k", "127.0.0.1", "0", "-e", prog, "--daemon"])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{prog}: {err}");
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
}

/// A daemon's standard output is /dev/null: `udp listen` logs each datagram
/// instead, and `listen` without a program warns before detaching.
#[test]
fn daemons_log_what_standard_output_would_have_shown() {
    let env = Env::new();
    let port = free_port();
    let d = env.launch(env.command(&["udp", "listen", "127.0.0.1", &port.to_string()]));
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    env.wait_log("datagram");
    assert!(env.log().contains("len=5"), "{}", env.log());
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(20).is_some());

    let env = Env::new();
    let p = free_port().to_string();
    let (out, d) = env.run(env.command(&["listen", "-k", "127.0.0.1", &p]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("/dev/null") && err.contains("-e/-c"), "{err}");
    drop(d);
}
