//! Limits and defaults: the per-address cap, unfinished lines, the
//! operator not counting against -m, announcements, sizes.

use super::*;

/// Regression: 500 trickling connections from one address took slots
/// until all were gone. The per-address cap is on by default (64), the
/// client past it is told why, and `--max-per-addr 0` turns it off.
#[test]
fn clients_past_the_default_per_address_cap_are_told_why() {
    let srv = Server::start("chat", &["--quiet"]);
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut c = Client::connect(srv.addr);
        assert!(c.line().starts_with("*** welcome"));
        held.push(c);
    }
    let mut extra = Client::connect(srv.addr);
    assert_eq!(
        extra.line(),
        "*** too many connections from your address (64), try again later"
    );
    assert_eq!(extra.rest(), "");
    // Another address is still welcome.
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    other
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    other.connect(&srv.addr.into()).unwrap();
    let other: TcpStream = other.into();
    other.set_read_timeout(Some(T)).unwrap();
    let mut line = String::new();
    BufReader::new(other).read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome"), "{line}");

    let off = Server::start("chat", &["--quiet", "--max-per-addr", "0"]);
    let mut many = Vec::new();
    for _ in 0..70 {
        let mut c = Client::connect(off.addr);
        assert!(c.line().starts_with("*** welcome"));
        many.push(c);
    }
}

/// A client that starts a line and never ends it is disconnected after
/// `--line-timeout`; one that sends nothing stays.
#[test]
fn a_line_that_never_ends_is_cut_off_after_the_line_timeout() {
    let srv = Server::start("chat", &["--line-timeout", "1"]);
    let mut quiet = Client::connect(srv.addr);
    assert!(quiet.line().starts_with("*** welcome"));
    let mut trickle = Client::connect(srv.addr);
    assert!(trickle.line().starts_with("*** welcome"));
    let started = Instant::now();
    trickle.send(b"never");
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        if trickle.w.write_all(b"!").is_err() {
            break;
        }
    }
    assert_eq!(
        trickle.line(),
        "*** line not finished within 1s, disconnecting"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(quiet.line().ends_with("joined (2 online)"));
    assert_eq!(quiet.line(), "*** user2 left (line not finished within 1s)");
}

/// Regression: `broker --stdin -m 1` counted the stdin participant, so the
/// first network client was closed silently. -m counts network clients.
#[test]
fn broker_stdin_does_not_count_against_max_clients() {
    let mut cmd = sockbox_std();
    cmd.args(["broker", "127.0.0.1", "0", "--stdin", "-m", "1"]);
    let mut srv = Server::spawn_with_stdin(cmd, false, Stdio::piped());
    let mut stdin = srv.child.stdin.take().unwrap();
    let mut a = Client::connect(srv.addr);
    assert!(wait_until(10.0, || {
        srv.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" join "))
            .count()
            == 2
    }));
    stdin.write_all(b"from the terminal\n").unwrap();
    assert_eq!(a.line(), "from the terminal");
    a.send(b"to the terminal\n");
    let stdout = srv.stdout.clone();
    assert!(wait_until(10.0, || {
        stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "to the terminal")
    }));
    // A second network client is over the limit.
    let mut b = Client::connect(srv.addr);
    assert_eq!(b.rest(), "");
    drop(stdin);
    assert_eq!(srv.sigterm(), 0);
}

/// Regression: with leaves 100 ms apart, 3 of 225 leave notices never
/// reached a client that stayed (a late flush summed them up as a storm).
#[test]
fn every_leave_notice_reaches_a_client_that_stays() {
    const LEAVERS: usize = 30;
    let srv = Server::start("chat", &["--quiet"]);
    let mut stayer = Client::connect(srv.addr);
    assert!(stayer.line().starts_with("*** welcome"));
    let mut leavers = Vec::new();
    for _ in 0..LEAVERS {
        let mut c = Client::connect(srv.addr);
        let welcome = c.line();
        let nick = welcome
            .strip_prefix("*** welcome, you are ")
            .and_then(|s| s.split(';').next())
            .unwrap()
            .to_owned();
        leavers.push((c, nick));
    }
    let nicks: Vec<String> = leavers.iter().map(|(_, n)| n.clone()).collect();
    for (c, _) in leavers {
        drop(c);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut left = Vec::new();
    while left.len() < LEAVERS {
        let l = stayer.line();
        if let Some(rest) = l.strip_prefix("*** ")
            && let Some((nick, _)) = rest.split_once(" left (")
        {
            left.push(nick.to_owned());
        }
        assert!(!l.contains(" more left"), "summed up: {l}");
    }
    assert_eq!(left, nicks);
}

/// `--help` says TAB passes as it is while other control characters are
/// escaped: so it does.
#[test]
fn tab_passes_raw_and_other_controls_are_escaped_as_help_says() {
    let help = sockbox_std().args(["chat", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    assert!(help.contains("control characters other than TAB"), "{help}");
    assert!(help.contains("collected for up to 100 ms"), "{help}");
    let srv = Server::start("chat", &["--quiet"]);
    let mut a = Client::connect(srv.addr);
    a.line();
    let mut b = Client::connect(srv.addr);
    b.line();
    b.send(b"a\tb\x07c\n");
    let got = loop {
        let l = a.line();
        if l.starts_with('<') {
            break l;
        }
    };
    assert_eq!(got, "<user2> a\tb\\x07c");
}

/// Regression: `-m 0` was refused as a flag value; in ncat it refuses every
/// client, and so it does here (each is told the server is full).
#[test]
fn max_clients_0_refuses_every_network_client() {
    let srv = Server::start("chat", &["--quiet", "-m", "0"]);
    for _ in 0..2 {
        let mut c = Client::connect(srv.addr);
        assert_eq!(c.line(), "*** server full (0 clients), try again later");
        assert_eq!(c.rest(), "");
    }
}
