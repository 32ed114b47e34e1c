//! Top-level usage: help, version, exit codes for bad invocations.

use crate::util::sockbox;

#[test]
fn help_lists_subcommands_and_exit_codes() {
    sockbox()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("ifaces"))
        .stdout(predicates::str::contains("Exit codes"));
}

#[test]
fn unknown_subcommand_exits_2() {
    sockbox().arg("frobnicate").assert().code(2);
}

#[test]
fn man_and_completions_generate() {
    sockbox()
        .arg("man")
        .assert()
        .success()
        .stdout(predicates::str::contains(".TH"));
    sockbox().args(["completions", "bash"]).assert().success();
}

/// Where the child's standard error goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stderr {
    /// A file the test reads: the reference run.
    Captured,
    /// A pipe whose reader is gone (the child ignores SIGPIPE, as every
    /// Rust program does, so writes fail with EPIPE).
    ClosedPipe,
    /// `/dev/full`: writes fail with ENOSPC.
    DevFull,
    /// No file descriptor 2 at all (`2>&-`).
    Closed,
}

/// Where the child's standard output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stdout {
    Null,
    DevFull,
    ClosedPipe,
}

/// A pipe whose read end is already closed.
fn closed_pipe() -> std::process::Stdio {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    write.into()
}

/// Run sockbox with `args` and `stdin`, its streams as asked; the exit code
/// (a signal fails the test) and what it wrote to a captured stderr. Killed
/// after 20 s.
fn run_with(args: &[&str], stdin: &[u8], out: Stdout, err: Stderr) -> (i32, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let bin = assert_cmd::cargo::cargo_bin("sockbox");
    let mut cmd = if err == Stderr::Closed {
        let mut c = Command::new("sh");
        c.arg("-c").arg("exec \"$0\" \"$@\" 2>&-").arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    cmd.args(args).stdin(Stdio::piped());
    cmd.stdout(match out {
        Stdout::Null => Stdio::null(),
        Stdout::DevFull => std::fs::File::create("/dev/full").unwrap().into(),
        Stdout::ClosedPipe => closed_pipe(),
    });
    cmd.stderr(match err {
        Stderr::Captured => log.reopen().unwrap().into(),
        Stderr::ClosedPipe => closed_pipe(),
        Stderr::DevFull => std::fs::File::create("/dev/full").unwrap().into(),
        Stderr::Closed => Stdio::inherit(),
    });
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sockbox {args:?} ({err:?}) did not exit within 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let Some(code) = status.code() else {
        panic!("sockbox {args:?} ({err:?}) died of {status}");
    };
    (code, std::fs::read_to_string(log.path()).unwrap())
}

/// A loopback TCP server that takes one byte from each client, then resets
/// the connection.
fn resetting_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let _ = std::io::Read::read(&mut c, &mut [0u8; 1]);
            let _ = socket2::SockRef::from(&c).set_linger(Some(std::time::Duration::ZERO));
        }
    });
    port
}

/// Regression: with standard error on a closed pipe or `/dev/full`, an
/// error message panicked (`eprintln!`): exit 101 instead of 1 for a
/// refused connection, `wake zz`, …; and a usage error exited 0 on a
/// closed pipe (its failed print was taken for a broken stdout). Every
/// subcommand's error path now exits with the code it has when stderr
/// works. Loopback only; `wake zz` fails parsing the MAC before any send.
#[test]
fn error_exit_codes_hold_when_stderr_is_unwritable() {
    let busy_tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = busy_tcp.local_addr().unwrap().port().to_string();
    let busy_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = busy_udp.local_addr().unwrap().port().to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let reset = resetting_server().to_string();
    let cases: &[(&[&str], &[u8], i32)] = &[
        (&["connect", "127.0.0.1", &closed], b"", 1),
        (&["connect", "127.0.0.1", &reset], b"x", 1),
        (&["connect", "--baffle", "127.0.0.1", &closed], b"", 2),
        (&["listen", "127.0.0.1", &tcp], b"", 3),
        (&["echo", "127.0.0.1", &tcp], b"", 3),
        (&["chat", "127.0.0.1", &tcp], b"", 3),
        (&["broker", "127.0.0.1", &tcp], b"", 3),
        (&["udp", "send", "--hex", "127.0.0.1", "9", "zz"], b"", 2),
        (&["udp", "listen", "127.0.0.1", &udp], b"", 3),
        (&["mcast", "send", "127.0.0.1", "5000", "x"], b"", 2),
        (&["mcast", "listen", "127.0.0.1", "5000"], b"", 2),
        (&["wake", "zz"], b"", 2),
        (&["wake", "listen", "--port", &udp], b"", 3),
        // No targets and nothing on stdin: fping style (targets would come
        // from stdin), whose usage errors exit 3 as fping documents.
        (&["ping"], b"", 3),
        // -f is fping style: a missing file is its usage error (3).
        (&["ping", "-c", "1", "-f", "/nonexistent"], b"", 3),
        (&["ifaces", "nosuch0"], b"", 2),
        (&["hexdump", "/nonexistent"], b"", 2),
        (&["checksum", "--hex", "-"], b"\x45\x00", 2),
        (&["pack", "y"], b"", 2),
        (&["unpack", "N", "--hex", "01"], b"", 2),
        (&["completions", "nosh"], b"", 2),
        (&["frobnicate"], b"", 2),
    ];
    for &(args, stdin, want) in cases {
        let (code, said) = run_with(args, stdin, Stdout::Null, Stderr::Captured);
        assert_eq!(code, want, "sockbox {args:?}: {said}");
        assert!(!said.is_empty(), "sockbox {args:?} said nothing");
        for err in [Stderr::ClosedPipe, Stderr::DevFull, Stderr::Closed] {
            let (code, _) = run_with(args, stdin, Stdout::Null, err);
            assert_eq!(code, want, "sockbox {args:?} with stderr {err:?}");
        }
    }
}

/// Output that cannot be written: `/dev/full` is a system error (exit 3,
/// said on stderr), a closed pipe (`| head`) ends quietly with 0; never a
/// panic.
#[test]
fn unwritable_stdout_is_exit_3_or_a_quiet_0() {
    let big = vec![7u8; 100_000];
    let cases: &[(&[&str], &[u8])] = &[
        (&["pack", "v", "16705"], b""),
        (&["pack", "--hex", "v", "16705"], b""),
        (&["unpack", "v", "--hex", "4141"], b""),
        (&["unpack", "--records", "C"], b"abc"),
        // Big enough that writes happen inside the JSON encoder.
        (&["unpack", "--json", "--records", "C"], &big),
        (&["ifaces", "--json"], b""),
        (&["checksum", "--hex", "00"], b""),
        (&["hexdump"], b"some bytes"),
        (&["ifaces"], b""),
        (&["completions", "bash"], b""),
        (&["man"], b""),
        (&["--help"], b""),
    ];
    for &(args, stdin) in cases {
        let (code, said) = run_with(args, stdin, Stdout::DevFull, Stderr::Captured);
        assert_eq!(code, 3, "sockbox {args:?} > /dev/full: {said}");
        assert!(said.contains("sockbox: "), "sockbox {args:?}: {said}");
        for err in [Stderr::ClosedPipe, Stderr::DevFull] {
            let (code, _) = run_with(args, stdin, Stdout::DevFull, err);
            assert_eq!(code, 3, "sockbox {args:?} > /dev/full 2> {err:?}");
        }
        let (code, said) = run_with(args, stdin, Stdout::ClosedPipe, Stderr::Captured);
        assert_eq!(
            (code, said.as_str()),
            (0, ""),
            "sockbox {args:?} | (closed)"
        );
    }
}
