//! UNIX-domain sockets (`-U`), stream and datagram, both sides: 1 GiB
//! byte-identical round trips (SHA-256 compared with `sha256sum`), the
//! socket file's life, `-k` with programs and ncat's environment.
//!
//! ncat 7.93: `ncat -lU PATH` refuses a path that exists, even a stale
//! socket ("bind to PATH: Address already in use", exit 2) and leaves the
//! socket file behind at exit; nc.openbsd `nc -lU PATH` unlinks whatever is
//! at PATH first — a regular file too — and also leaves its socket behind.
//! sockbox removes only a stale socket, refuses a live one and any other
//! file, and removes its own socket at exit.

use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::Command;

use super::*;

const GIB: u64 = 1 << 30;

/// Fill `w` with `total` bytes of a pattern that differs in every 16 KiB
/// piece, also writing everything to `mirror` (a `sha256sum`'s input).
fn produce(w: &mut impl Write, mirror: &mut impl Write, total: u64) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut sent = 0u64;
    let mut piece = 0u64;
    while sent < total {
        for at in (0..block.len()).step_by(16 * 1024) {
            block[at..at + 8].copy_from_slice(&piece.to_le_bytes());
            piece += 1;
        }
        let n = block.len().min((total - sent) as usize);
        mirror.write_all(&block[..n]).unwrap();
        w.write_all(&block[..n]).unwrap();
        sent += n as u64;
    }
}

/// A `sha256sum` reading its standard input.
fn sha256sum() -> Child {
    Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)")
}

fn digest(c: Child) -> String {
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `sockbox listen -v ARGS…` on a UNIX socket, its stdout piped; waits
/// until it listens.
fn unix_server(args: &[&str], stdin: Stdio) -> Spawned {
    let mut cmd = sockbox_std();
    cmd.arg("listen").arg("-v").args(args);
    let s = Spawned::start_with(cmd, stdin, Stdio::piped());
    s.wait_for_stderr("listening on", T);
    s
}

/// 1 GiB through `connect -U` into `listen -U` (-u for datagrams); the
/// server's output is counted and hashed by a thread; `stop_at_total`
/// sends SIGTERM once all of it arrived (a datagram socket has no EOF).
fn round_trip_gib(flags: &[&str], stop_at_total: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let p = path.to_str().unwrap();
    let mut server_args: Vec<&str> = flags.to_vec();
    server_args.extend(["-U", p]);
    let mut srv = unix_server(&server_args, Stdio::null());
    let mut out = srv.child.stdout.take().unwrap();
    let (count_tx, count_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut hash = sha256sum();
        let mut sink = hash.stdin.take().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sink.write_all(&buf[..n]).unwrap();
                    total += n as u64;
                    let _ = count_tx.send(total);
                }
            }
        }
        drop(sink);
        (total, digest(hash))
    });
    let mut client_args = vec!["connect"];
    client_args.extend(flags.iter().copied());
    if stop_at_total {
        client_args.extend(["-q", "0"]);
    }
    client_args.extend(["-U", p]);
    let mut cmd = sockbox_std();
    cmd.args(&client_args);
    let mut client = Spawned::start_with(cmd, Stdio::piped(), Stdio::null());
    let mut stdin = client.child.stdin.take().unwrap();
    let mut hash_in = sha256sum();
    let mut mirror = hash_in.stdin.take().unwrap();
    produce(&mut stdin, &mut mirror, GIB);
    drop(stdin);
    drop(mirror);
    let want = digest(hash_in);
    assert!(
        client.must_exit(Duration::from_secs(120)).success(),
        "{}",
        client.log()
    );
    if stop_at_total {
        let deadline = Instant::now() + Duration::from_secs(120);
        while count_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok_and(|n| n < GIB)
        {}
        srv.signal(nix::sys::signal::Signal::SIGTERM);
    }
    let status = srv.must_exit(Duration::from_secs(120));
    assert!(status.success(), "{status:?}: {}", srv.log());
    let (total, got) = reader.join().unwrap();
    assert_eq!(total, GIB);
    assert_eq!(
        got, want,
        "SHA-256 of what arrived differs from what was sent"
    );
    assert!(!path.exists(), "the server left its socket file behind");
}

#[test]
fn unix_stream_1gib_round_trip_is_byte_identical() {
    round_trip_gib(&[], false);
}

#[test]
fn unix_datagram_1gib_round_trip_is_byte_identical() {
    round_trip_gib(&["-u"], true);
}

/// A stale socket (its server died) is replaced; a live one is "in use"
/// (exit 3, as a TCP port in use); a regular file is never touched (exit 2).
#[test]
fn socket_file_policy() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut srv = unix_server(&["-U", stale.to_str().unwrap()], Stdio::null());
    let mut c = UnixStream::connect(&stale).unwrap();
    c.write_all(b"fresh\n").unwrap();
    drop(c);
    let mut out = String::new();
    srv.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "fresh\n");
    assert!(srv.must_exit(T).success(), "{}", srv.log());
    assert!(!stale.exists());

    let live = dir.path().join("live.sock");
    let _holder = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let out = crate::util::sockbox()
        .args(["listen", "-U", live.to_str().unwrap()])
        .timeout(T)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    assert!(live.exists(), "a live socket was removed");

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    crate::util::sockbox()
        .args(["listen", "-U", file.to_str().unwrap()])
        .timeout(T)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    crate::util::sockbox()
        .args(["listen", "-U", "/nonexistent-dir/x.sock"])
        .timeout(T)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("directory does not exist"));
    crate::util::sockbox()
        .args(["listen", "-k", "-u", "-U", "/tmp/x.sock"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("first sender only"));
}

/// Send `msg` to the UNIX stream socket at `path`, half-close, read all.
fn ask_unix(path: &Path, msg: &[u8]) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut v = String::new();
    s.read_to_string(&mut v).unwrap();
    v
}

/// `ncat -lkU PATH -c CMD` runs a program per client, with
/// NCAT_REMOTE_ADDR=localhost and an empty NCAT_REMOTE_PORT for a UNIX
/// socket (ncat_posix.c); sockbox also sets SOCKBOX_LOCAL_ADDR to the path.
#[test]
fn keep_open_unix_stream_runs_a_program_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.sock");
    let p = path.to_str().unwrap();
    let script = "printf '%s|%s|%s|%s|' \"$NCAT_REMOTE_ADDR\" \"$NCAT_REMOTE_PORT\" \
                  \"$SOCKBOX_LOCAL_ADDR\" \"$NCAT_PROTO\"; cat";
    let _srv = unix_server(&["-k", "-c", script, "-U", p], Stdio::null());
    let threads: Vec<_> = (0..5)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || (i, ask_unix(&path, format!("client {i}").as_bytes())))
        })
        .collect();
    for t in threads {
        let (i, got) = t.join().unwrap();
        assert_eq!(got, format!("localhost||{p}|TCP|client {i}"));
    }
    // The client side: connect -U to it.
    let mut cmd = sockbox_std();
    cmd.args(["connect", "-U", p]);
    let mut c = Spawned::start_with(cmd, Stdio::piped(), Stdio::piped());
    c.child
        .stdin
        .take()
        .unwrap()
        .write_all(b"via connect")
        .unwrap();
    let mut out = String::new();
    c.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(c.must_exit(T).success(), "{}", c.log());
    assert_eq!(out, format!("localhost||{p}|TCP|via connect"));
}

/// The datagram client binds an (abstract) address, so the server's
/// answers reach it: a UNIX datagram echo through `listen -u -U -e cat`.
#[test]
fn unix_datagram_server_answers_its_sender() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let p = path.to_str().unwrap();
    let _srv = unix_server(&["-u", "-e", "/bin/cat", "-U", p], Stdio::null());
    let (st, out, err) = connect(&["-u", "-q", "1", "-U", p], b"dgram echo\n");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"dgram echo\n");
    // A sender without an address can still be received from.
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = dir2.path().join("r.sock");
    let mut srv = unix_server(&["-u", "-U", path2.to_str().unwrap()], Stdio::null());
    let anon = UnixDatagram::unbound().unwrap();
    anon.send_to(b"anonymous\n", &path2).unwrap();
    let mut got = [0u8; 10];
    srv.child
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut got)
        .unwrap();
    assert_eq!(&got, b"anonymous\n");
    srv.wait_for_stderr("nothing can be sent back", T);
}

/// Connecting to a path where nobody listens: exit 1 (as nc, ncat), and
/// the message says why.
#[test]
fn connect_to_a_missing_socket_exits_1() {
    let (st, _, err) = connect(&["-U", "/nonexistent-dir/none.sock"], b"");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("is the server running"), "{err}");
    let (st, _, err) = connect(&["-U", "/tmp/x.sock", "80"], b"");
    assert_eq!(st.code(), Some(2), "{err}");
}

/// ncat's "Connect to UNIX datagram socket with -s": `ncat -U --udp -s
/// TMP PATH` sends from a socket bound at TMP. sockbox does the same and
/// removes TMP when it is done (ncat's test removes it itself).
#[test]
fn datagram_client_binds_the_path_given_with_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("srv.sock");
    let me = dir.path().join("me.sock");
    let srv = UnixDatagram::bind(&path).unwrap();
    srv.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (st, _, err) = connect(
        &[
            "-u",
            "-q",
            "0",
            "-s",
            me.to_str().unwrap(),
            "-U",
            path.to_str().unwrap(),
        ],
        b"abc\n",
    );
    assert!(st.success(), "{err}");
    let mut buf = [0u8; 16];
    let (n, from) = srv.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"abc\n");
    assert_eq!(from.as_pathname(), Some(me.as_path()));
    assert!(!me.exists(), "the client's socket file was left behind");
    let (st, _, err) = connect(&["-s", "/tmp/x", "-U", path.to_str().unwrap()], b"");
    assert_eq!(st.code(), Some(2), "{err}");
}

/// `-zU PATH` as nc.openbsd's `nc -zU`: exit 0 when a server listens on the
/// socket (stream, or datagram with -u), 1 when not, nothing sent.
#[test]
fn zero_io_checks_a_unix_socket_without_sending() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("s.sock");
    let l = std::os::unix::net::UnixListener::bind(&stream).unwrap();
    let s = stream.to_str().unwrap();
    let (st, out, err) = connect(&["-zU", s], b"never sent\n");
    assert!(st.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("Connection to {s} [unix] succeeded!\n")
    );
    let (mut c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "-z sent {got:?}");
    drop(l);
    // No listener any more (a stale file), or no file: 1, quiet without -v.
    let (st, out, err) = connect(&["-zU", s], b"");
    assert_eq!(
        (st.code(), out.is_empty(), err.as_str()),
        (Some(1), true, "")
    );
    let missing = dir.path().join("none.sock");
    let (st, _, err) = connect(&["-zvU", missing.to_str().unwrap()], b"");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("none.sock"), "{err}");
    // Datagram.
    let dgram = dir.path().join("d.sock");
    let srv = UnixDatagram::bind(&dgram).unwrap();
    let (st, out, err) = connect(&["-zuU", dgram.to_str().unwrap()], b"");
    assert!(st.success(), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("[unix datagram] succeeded"));
    srv.set_nonblocking(true).unwrap();
    assert!(srv.recv(&mut [0u8; 8]).is_err(), "-z sent a datagram");
    // A listener whose backlog is full never accepts: an answer within
    // -w all the same (exit 1), never a hang.
    let full = dir.path().join("full.sock");
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    sock.bind(&socket2::SockAddr::unix(&full).unwrap()).unwrap();
    sock.listen(0).unwrap();
    let _queued = UnixStream::connect(&full).unwrap();
    crate::util::sockbox()
        .args(["connect", "-z", "-w", "1", "-U", full.to_str().unwrap()])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(1);
    // A port with -U is a usage error.
    let (st, _, err) = connect(&["-zU", s, "80"], b"");
    assert_eq!(st.code(), Some(2), "{err}");
}
