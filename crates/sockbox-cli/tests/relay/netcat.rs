//! nc and ncat habits (issue 16, "netcat habits"): `-z`, `-C`, `-s`/`-p`,
//! `-n`, `listen -p` and `-lvnp`, ncat's program environment, both address
//! families by default, `--tls` without a certificate. Each test says what
//! nc.openbsd 1.219 or ncat 7.93 do in the same scenario.

use std::collections::BTreeSet;
use std::process::Command;

use super::*;
use crate::util::skipped;

/// TCP ports something listens on for 127.0.0.1 (0.0.0.0, 127.0.0.1 or
/// the IPv6 wildcard), from /proc/net/tcp and tcp6.
fn listening_on_loopback() -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for (file, locals) in [
        ("/proc/net/tcp", &["00000000", "0100007F"][..]),
        (
            "/proc/net/tcp6",
            &[
                "00000000000000000000000000000000",
                "0000000000000000FFFF00000100007F",
            ][..],
        ),
    ] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[3] != "0A" {
                continue;
            }
            if let Some((ip, port)) = f[1].split_once(':')
                && locals.contains(&ip)
                && let Ok(p) = u16::from_str_radix(port, 16)
            {
                ports.insert(p);
            }
        }
    }
    ports
}

/// The ports `-z` reported open, from its standard output.
fn open_ports(out: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            // "Connection to 127.0.0.1 22 port [tcp/ssh] succeeded!"
            let words: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(words[0], "Connection", "{l}");
            assert!(l.ends_with("succeeded!"), "{l}");
            words[3].parse().unwrap()
        })
        .collect()
}

/// Free ports in `range` on 127.0.0.1, bound now and kept by the listeners.
fn listeners_in(range: std::ops::RangeInclusive<u16>, n: usize) -> Vec<TcpListener> {
    let mut got = Vec::new();
    for p in range.rev() {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", p)) {
            got.push(l);
            if got.len() == n {
                break;
            }
        }
    }
    got
}

/// nc.openbsd `nc -z 127.0.0.1 1-1024` connects to each port in turn,
/// prints `Connection to 127.0.0.1 22 port [tcp/ssh] succeeded!` for the
/// open ones (with -v, on standard error) and exits 0 if any was open, 1
/// if none. sockbox prints the same lines on standard output without -v,
/// in port order, checking many ports at once.
#[test]
fn zero_io_lists_exactly_the_open_ports_and_exits_by_them() {
    let range = if nix::unistd::geteuid().is_root() {
        1..=1024
    } else {
        skipped("ports below 1024 need root: checking 30000-31023 instead");
        30000..=31023
    };
    let ours = listeners_in(range.clone(), 3);
    assert_eq!(ours.len(), 3);
    let mine: BTreeSet<u16> = ours
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let spec = format!("{}-{}", range.start(), range.end());
    let out = crate::util::sockbox()
        .args(["connect", "-z", "127.0.0.1", &spec])
        .timeout(T)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let found = open_ports(&out.stdout);
    let mut sorted = found.clone();
    sorted.sort_unstable();
    assert_eq!(found, sorted, "in port order");
    let found: BTreeSet<u16> = found.into_iter().collect();
    assert!(mine.is_subset(&found), "ours {mine:?}, found {found:?}");
    // Nothing reported that nobody listens on (another program's
    // listener in the range is fine).
    let others = listening_on_loopback();
    for p in found.difference(&mine) {
        assert!(others.contains(p), "port {p} reported open: {out:?}");
    }

    // A list, in the order given; the refused ones said with -v.
    let v: Vec<u16> = mine.iter().copied().collect();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let list = format!("{},{}", v[2], closed);
    let out = crate::util::sockbox()
        .args(["connect", "-z", "-v", "127.0.0.1", &list, &v[0].to_string()])
        .timeout(T)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(open_ports(&out.stdout), vec![v[2], v[0]]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {closed} (tcp) failed: Connection refused")),
        "{err}"
    );
    drop(ours);

    // None open: exit 1, nothing printed.
    let out = crate::util::sockbox()
        .args(["connect", "-z", "127.0.0.1", &closed.to_string()])
        .timeout(T)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

/// `nc -z` parses `20-30`; a backwards range or a port list without -z is
/// a usage error here (exit 2) with the fix in the message.
#[test]
fn port_lists_are_checked() {
    for (args, needle) in [
        (&["connect", "-z", "127.0.0.1", "30-20"][..], "write 20-30"),
        (&["connect", "-z", "127.0.0.1", "0"][..], "is not a port"),
        (&["connect", "127.0.0.1", "1-5"][..], "only with -z"),
        (
            &["connect", "127.0.0.1", "5", "6"][..],
            "several only with -z",
        ),
        (&["connect", "-z", "127.0.0.1"][..], "-z needs the ports"),
    ] {
        crate::util::sockbox()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(needle));
    }
}

/// ncat -C sends each LF of its input as CRLF and leaves CRLF alone
/// (`fix_line_endings` in ncat_core.c); nc.openbsd -C does the same for
/// typed lines.
#[test]
fn crlf_sends_lf_as_crlf_both_ways() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    let (st, _, err) = connect(&["-C", "127.0.0.1", &port(addr)], b"HELO x\nkept\r\nlast\n");
    assert!(st.success(), "{err}");
    assert_eq!(server.join().unwrap(), b"HELO x\r\nkept\r\nlast\r\n");

    // listen -C: what the listener sends (its standard input) too.
    let mut srv = Server::start(&["-C", "127.0.0.1", "0"], Stdio::piped(), Stdio::null());
    let mut stdin = srv.child().stdin.take().unwrap();
    stdin.write_all(b"a\nb\n").unwrap();
    drop(stdin);
    let mut s = stream(srv.addr);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"a\r\nb\r\n");
}

/// ncat -s ADDR -p PORT and nc -s ADDR -p PORT connect from that local
/// address and port.
#[test]
fn source_address_and_port() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let src_port = {
        let t = TcpListener::bind("127.0.0.2:0").unwrap();
        t.local_addr().unwrap().port()
    };
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        s.write_all(b"hi\n").unwrap();
        peer
    });
    let sp = src_port.to_string();
    let (st, out, err) = connect(
        &["-s", "127.0.0.2", "-p", &sp, "127.0.0.1", &port(addr)],
        b"",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"hi\n");
    assert_eq!(
        server.join().unwrap(),
        format!("127.0.0.2:{src_port}").parse().unwrap()
    );
    // -p alone: any address, that port; also for UDP.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (st, _, err) = connect(
        &[
            "-u",
            "-q",
            "0.2",
            "-p",
            &sp,
            "127.0.0.1",
            &port(u.local_addr().unwrap()),
        ],
        b"x",
    );
    assert!(st.success(), "{err}");
    let mut buf = [0u8; 8];
    let (_, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!(from.port(), src_port);
    // An address this host does not have: refused, and said so.
    let (st, _, err) = connect(&["-s", "192.0.2.1", "127.0.0.1", &port(addr)], b"");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("source address 192.0.2.1"), "{err}");
    // -s takes an address: a name is a usage error.
    let (st, _, err) = connect(&["-s", "localhost", "127.0.0.1", &port(addr)], b"");
    assert_eq!(st.code(), Some(2), "{err}");
}

/// ncat -n and nc -n never look a name up: `ncat -n localhost 80` fails
/// ("Could not resolve hostname"). Here a name with -n is a usage error
/// (exit 2) saying so; addresses work as before.
#[test]
fn nodns_refuses_names_and_takes_addresses() {
    for args in [
        &["connect", "-n", "localhost", "80"][..],
        &["listen", "-n", "localhost", "0"][..],
        &[
            "connect",
            "-n",
            "--proxy",
            "localhost:1080",
            "127.0.0.1",
            "80",
        ][..],
    ] {
        crate::util::sockbox()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("-n"));
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"numeric\n").unwrap();
    });
    let (st, out, err) = connect(&["-n", "127.0.0.1", &port(addr)], b"");
    server.join().unwrap();
    assert!(st.success(), "{err}");
    assert_eq!(out, b"numeric\n");
}

/// nc users type `nc -lvnp 9000` (and `nc -l -p 9000`); ncat takes
/// `ncat -lvnp 9000` too. `sockbox listen` takes the same bundle (-l is
/// implied), `-p PORT` with an optional ADDR; `connect -l` says to use
/// `listen`.
#[test]
fn listen_takes_nc_spellings() {
    for args in [
        &["-lnp", "0", "127.0.0.1"][..],
        &["-p", "0", "127.0.0.1"][..],
    ] {
        let mut srv = Server::start(args, Stdio::null(), Stdio::piped());
        let (st, _, err) = connect(&["127.0.0.1", &port(srv.addr)], b"via -p\n");
        assert!(st.success(), "{args:?}: {err}");
        let mut out = srv.child().stdout.take().unwrap();
        assert!(srv.wait().success(), "{}", srv.log());
        let mut got = Vec::new();
        out.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"via -p\n", "{args:?}");
    }
    crate::util::sockbox()
        .args(["listen", "-p", "0", "127.0.0.1", "5"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("at most the ADDR"));
    crate::util::sockbox()
        .args(["connect", "-lvnp", "9000"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sockbox listen"));
}

/// `ncat -l -k -p PORT` listens on IPv4 and IPv6 (two sockets) when no
/// address is given; sockbox's one `[::]` socket accepts both families.
#[test]
fn listen_without_address_serves_ipv4_and_ipv6() {
    let cmd_port = {
        let l = TcpListener::bind("[::]:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = sockbox_std();
    cmd.args([
        "listen",
        "-v",
        "-k",
        "-e",
        "/bin/cat",
        &cmd_port.to_string(),
    ]);
    let srv = Spawned::start_with(cmd, Stdio::null(), Stdio::null());
    srv.wait_for_stderr("listening on", T);
    for ip in ["127.0.0.1", "::1"] {
        let to = SocketAddr::new(ip.parse().unwrap(), cmd_port);
        assert_eq!(ask(to, b"family\n"), b"family\n", "{ip}");
    }
}

/// ncat's -e/-c programs get NCAT_REMOTE_ADDR, NCAT_REMOTE_PORT,
/// NCAT_LOCAL_ADDR, NCAT_LOCAL_PORT and NCAT_PROTO ("TCP"/"UDP",
/// setup_environment in ncat_posix.c), in both modes; sockbox sets them
/// next to its own SOCKBOX_* names.
#[test]
fn programs_get_ncat_environment_names() {
    let script = "printf '%s|%s|%s|%s|%s|%s\\n' \"$NCAT_REMOTE_ADDR\" \"$NCAT_REMOTE_PORT\" \
                  \"$NCAT_LOCAL_ADDR\" \"$NCAT_LOCAL_PORT\" \"$NCAT_PROTO\" \"$SOCKBOX_PROTO\"";
    let srv = Server::start(
        &["-k", "-c", script, "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = stream(srv.addr);
    let me = s.local_addr().unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    let want = format!(
        "127.0.0.1|{}|127.0.0.1|{}|TCP|tcp\n",
        me.port(),
        srv.addr.port()
    );
    assert_eq!(got, want);

    // connect -c, UDP: the local side is the client's.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let to = u.local_addr().unwrap();
    let mut c = connect_spawned(&["-u", "-c", script, "127.0.0.1", &port(to)], Stdio::null());
    let mut buf = [0u8; 256];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(
        line,
        format!(
            "127.0.0.1|{}|127.0.0.1|{}|UDP|udp\n",
            to.port(),
            from.port()
        )
    );
    let _ = c.child.kill();
    let _ = c.child.wait();
}

/// `ncat --ssl -l` without --ssl-cert/--ssl-key generates a temporary key
/// and certificate and prints its fingerprint ("Ncat: SHA-1 fingerprint:
/// …"); sockbox prints the SHA-256 fingerprint, which must be that of the
/// certificate it serves.
#[test]
fn tls_without_files_serves_a_temporary_certificate_with_its_fingerprint() {
    let srv = Server::start(
        &["-k", "--tls", "-e", "/bin/cat", "127.0.0.1", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    // Said before "listening on", which Server::start waited for.
    let log = srv.log();
    let line = log
        .lines()
        .find(|l| l.contains("SHA-256 fingerprint:"))
        .unwrap_or_else(|| panic!("no fingerprint: {log}"));
    let printed = line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(printed.len(), 32 * 3 - 1, "{line}");
    let (st, out, err) = connect(
        &["--tls", "--tls-insecure", "127.0.0.1", &port(srv.addr)],
        b"over tls\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"over tls\n");
    if Command::new("openssl").arg("version").output().is_err() {
        skipped("openssl is not installed: the served certificate's fingerprint is not compared");
        return;
    }
    let fetch = format!(
        "openssl s_client -connect 127.0.0.1:{} </dev/null 2>/dev/null | \
         openssl x509 -noout -fingerprint -sha256",
        srv.addr.port()
    );
    let got = Command::new("sh").args(["-c", &fetch]).output().unwrap();
    let text = String::from_utf8_lossy(&got.stdout);
    let served = text.trim().rsplit('=').next().unwrap().to_ascii_uppercase();
    assert_eq!(served, printed, "{text}");
}
