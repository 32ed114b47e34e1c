//! Every server subcommand runs in the harness: they all daemonize, `listen
//! --exec` leaves no zombies, and `sockbox echo` in the foreground.

use super::*;

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
