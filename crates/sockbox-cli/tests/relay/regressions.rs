//! Regressions of `connect` and `listen` found by probes and by ncat's own
//! test suite (issues 16 and 17), each named after the behaviour it pins.

use super::server::echo_from;
use super::*;
use crate::util::netns::{Netns, bridge};
use crate::util::require_root;

/// `sockbox listen` with its standard input open and its standard output
/// collected by a thread; returns the server and the collector.
fn one_shot(args: &[&str]) -> (Server, std::thread::JoinHandle<Vec<u8>>) {
    let mut srv = Server::start(args, Stdio::piped(), Stdio::piped());
    let mut out = srv.child().stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    (srv, reader)
}

/// ncat -l and nc.openbsd -l exit once their one client has hung up, even
/// while their own standard input is still open, so `sockbox listen 9000 |
/// tar x` finishes. With --send-only the listener keeps sending its input
/// (ncat --send-only never reads the socket, so it does not see that EOF).
#[test]
fn one_shot_listen_ends_when_its_client_hangs_up_with_stdin_still_open() {
    let (mut srv, reader) = one_shot(&["127.0.0.1", "0"]);
    let _stdin_open = srv.child().stdin.take();
    let (st, _, err) = connect(&["--send-only", "127.0.0.1", &port(srv.addr)], b"abc\n");
    assert!(st.success(), "{err}");
    let status = srv.wait();
    assert!(status.success(), "{status:?}: {}", srv.log());
    // Standard output was closed after what the client sent was written.
    assert_eq!(reader.join().unwrap(), b"abc\n");

    let (mut srv, reader) = one_shot(&["--send-only", "127.0.0.1", "0"]);
    let mut stdin = srv.child().stdin.take().unwrap();
    let mut client = stream(srv.addr);
    client.shutdown(Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"after the client's EOF\n").unwrap();
    drop(stdin);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"after the client's EOF\n");
    assert!(srv.wait().success(), "{}", srv.log());
    assert!(reader.join().unwrap().is_empty());
}

/// `listen PORT > file` (no -k) receiving an upload when SIGTERM comes:
/// the upload finishes within --grace. It used to be cut 3–120 ms after
/// the signal, the sender getting EPIPE. (ncat has no grace period; it
/// dies at once.)
#[test]
fn sigterm_lets_a_one_shot_upload_finish_within_grace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    let file = std::fs::File::create(&path).unwrap();
    let mut srv = Server::start(
        &["--grace", "10s", "127.0.0.1", "0"],
        Stdio::piped(),
        Stdio::from(file),
    );
    let _stdin_open = srv.child().stdin.take();
    let mut s = stream(srv.addr);
    let chunk = vec![b'u'; 1 << 20];
    for _ in 0..16 {
        s.write_all(&chunk).unwrap();
    }
    assert!(wait_until(5.0, || std::fs::metadata(&path).unwrap().len() > 0));
    srv.proc.signal(nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..16 {
        s.write_all(&chunk)
            .unwrap_or_else(|e| panic!("upload cut after SIGTERM at MiB {}: {e}", 16 + i));
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let st = srv.wait();
    assert!(st.success(), "{st:?}: {}", srv.log());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 32 << 20);
}

/// An address-shaped string that is no address, or an empty host, is a
/// usage error naming the input; it is not sent to the resolver.
#[test]
fn address_shaped_non_addresses_and_empty_hosts_are_usage_errors() {
    for (args, says) in [
        (
            &["connect", "300.1.1.1", "80"][..],
            "\"300.1.1.1\" is not a valid IP address",
        ),
        (
            &["listen", "300.1.1.1", "7100"][..],
            "\"300.1.1.1\" is not a valid IP address",
        ),
        (&["connect", "", "80"][..], "host name is empty"),
        (&["listen", "[]", "7100"][..], "host name is empty"),
    ] {
        crate::util::sockbox()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}

/// A TLS client's local files are checked before anything is connected:
/// a missing --tls-ca is a usage error naming the file (it used to say
/// "connection refused" after trying the server).
#[test]
fn tls_ca_file_is_checked_before_connecting() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    crate::util::sockbox()
        .args(["connect", "--tls", "--tls-ca", "/nonexistent/ca.pem"])
        .args(["127.0.0.1", &port(addr)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("/nonexistent/ca.pem"));
    let accepted = l.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection was made first: {accepted:?}"
    );
}

/// `connect -u` to a directed broadcast address sets SO_BROADCAST, as
/// `udp send` does (it failed with "Permission denied"). Inside network
/// namespaces: A and B on one bridge.
#[test]
fn connect_udp_to_a_broadcast_address_sets_so_broadcast() {
    if !require_root("connect_udp_to_a_broadcast_address_sets_so_broadcast") {
        return;
    }
    let hub = Netns::new("h");
    let a = Netns::new("a");
    let b = Netns::new("b");
    bridge(
        &hub,
        &[(&a, "eth0", "10.77.18.1/24"), (&b, "eth0", "10.77.18.2/24")],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("got");
    let file = std::fs::File::create(&path).unwrap();
    let mut cmd = b.sockbox();
    cmd.args(["listen", "-v", "-u", "-4", "10000"]);
    let _srv = Server::spawn(cmd, Stdio::null(), Stdio::from(file));
    let mut cmd = a.sockbox();
    cmd.args(["connect", "-u", "-q", "0.5", "10.77.18.255", "10000"]);
    let mut c = Spawned::start_with(cmd, Stdio::piped(), Stdio::null());
    let mut stdin = c.child.stdin.take().unwrap();
    stdin.write_all(b"over broadcast\n").unwrap();
    drop(stdin);
    let st = c.must_exit(T);
    assert!(st.success(), "{st:?}: {}", c.log());
    assert!(
        wait_until(5.0, || std::fs::read(&path).unwrap() == b"over broadcast\n"),
        "B got {:?}",
        std::fs::read_to_string(&path)
    );
}

/// ncat resolves host names in --allow/--deny and in allow files, and
/// reads several entries on a line; names are resolved again on SIGHUP. A
/// name that does not resolve is an error at start, and a warning on
/// reload that keeps the lists in force.
#[test]
fn allow_and_deny_take_host_names_and_several_entries_on_a_line() {
    let cat = |acl: &[&str]| {
        let mut args = vec!["-k", "-e", "/bin/cat"];
        args.extend_from_slice(acl);
        args.extend_from_slice(&["127.0.0.1", "0"]);
        Server::start(&args, Stdio::null(), Stdio::null())
    };
    let srv = cat(&["--allow", "localhost"]);
    assert_eq!(echo_from("127.0.0.1", srv.addr), b"hi");
    assert_eq!(echo_from("127.0.0.2", srv.addr), b"");
    drop(srv);
    let srv = cat(&["--deny", "localhost"]);
    assert_eq!(echo_from("127.0.0.1", srv.addr), b"");
    assert_eq!(echo_from("127.0.0.2", srv.addr), b"hi");
    drop(srv);

    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("allow.txt");
    std::fs::write(&allow, "localhost 127.0.0.3 # two on a line\n").unwrap();
    let srv = cat(&["--allowfile", allow.to_str().unwrap()]);
    for (ip, want) in [("127.0.0.1", "hi"), ("127.0.0.3", "hi"), ("127.0.0.2", "")] {
        assert_eq!(echo_from(ip, srv.addr), want.as_bytes(), "{ip}");
    }
    std::fs::write(&allow, "127.0.0.2\nnosuch..invalid\n").unwrap();
    srv.proc.signal(nix::sys::signal::Signal::SIGHUP);
    let line = srv
        .proc
        .wait_for_stderr("previous lists stay", Duration::from_secs(10));
    assert!(
        line.contains("nosuch..invalid") && line.contains(":2: "),
        "{line}"
    );
    assert_eq!(echo_from("127.0.0.1", srv.addr), b"hi");
    assert_eq!(echo_from("127.0.0.2", srv.addr), b"");

    crate::util::sockbox()
        .args([
            "listen",
            "-k",
            "--allow",
            "nosuch..invalid",
            "127.0.0.1",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nosuch..invalid"));
}

/// ncat -k -m 0 refuses every client; sockbox refused the flag value.
#[test]
fn max_conns_0_refuses_every_client() {
    let srv = Server::start(
        &["-k", "-m", "0", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    for _ in 0..3 {
        assert_eq!(echo_from("127.0.0.1", srv.addr), b"");
    }
    assert!(
        wait_until(5.0, || srv.log().matches("refused").count() >= 3),
        "{}",
        srv.log()
    );
    let udp = Server::start(
        &["-u", "-k", "-m", "0", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.send_to(b"echo?", udp.addr).unwrap();
    let mut buf = [0u8; 16];
    assert!(s.recv(&mut buf).is_err(), "a datagram was answered");
    assert!(
        wait_until(5.0, || udp.log().contains("refused")),
        "{}",
        udp.log()
    );
}

/// A program that prints its answer and exits ends the connection, as
/// ncat does, even while the client stays connected and silent: the
/// client gets the answer and EOF, the one-shot listener exits, and with
/// -k -m 1 the next client is served (the place is not held by a zombie).
#[test]
fn an_exec_program_that_exits_ends_its_connection() {
    let (mut srv, _out) = one_shot(&["-c", "echo bye", "127.0.0.1", "0"]);
    let mut s = stream(srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye\n");
    assert!(srv.wait().success(), "{}", srv.log());
    drop(s);

    let srv = Server::start(
        &["-k", "-m", "1", "-c", "echo bye", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    // Each client stays connected; the next one is served once the last
    // program has been reaped (a moment: a client refused by -m meanwhile
    // is closed at once and tries again).
    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        let mut served = None;
        for _ in 0..50 {
            let mut s = stream(srv.addr);
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            if got == b"bye\n" {
                served = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        silent.push(served.expect("a silent client's connection still holds the only place"));
    }
}
