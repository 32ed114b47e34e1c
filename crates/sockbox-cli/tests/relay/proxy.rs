//! `connect --proxy HOST:PORT --proxy-type socks4|socks5|http
//! [--proxy-auth USER:PASS]`, against a small proxy written here (SOCKS4
//! and 4a, SOCKS5 with RFC 1929 username/password, HTTP CONNECT with Basic
//! authentication). ncat 7.93 spells it the same way and defaults to http;
//! nc.openbsd spells it `-X 4|5|connect -x HOST:PORT`.
//!
//! The proxy answers the handshake and the target's first bytes in one
//! `write`, so a client that reads past the end of the proxy's reply loses
//! them; every test checks the target's greeting arrives whole.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use super::*;

/// What the proxy was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Addr(SocketAddr),
    Name(String, u16),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Socks4,
    Socks5,
    Http,
}

/// A one-connection-at-a-time proxy on 127.0.0.1; `creds` are required when
/// given (`user:pass`; SOCKS4 checks the user only).
struct TestProxy {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl TestProxy {
    fn start(kind: Kind, creds: Option<&'static str>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        std::thread::spawn(move || {
            for s in l.incoming().take(8) {
                let Ok(mut s) = s else { continue };
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = serve(kind, creds, &mut s, &log);
                });
            }
        });
        Self { addr, asked }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)?;
    Ok(v)
}

fn read_until_nul(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    loop {
        let b = read_n(s, 1)?[0];
        if b == 0 {
            return Ok(v);
        }
        v.push(b);
    }
}

/// Handle one client: the handshake, then relay to the target, sending the
/// reply and the target's first bytes together.
fn serve(
    kind: Kind,
    creds: Option<&str>,
    conn: &mut TcpStream,
    log: &Mutex<Vec<Asked>>,
) -> std::io::Result<()> {
    let (asked, ok, refused): (Asked, Vec<u8>, Vec<u8>) = match kind {
        Kind::Socks4 => {
            let h = read_n(conn, 8)?;
            let port = u16::from_be_bytes([h[2], h[3]]);
            let user = String::from_utf8_lossy(&read_until_nul(conn)?).into_owned();
            let asked = if h[4..7] == [0, 0, 0] && h[7] != 0 {
                let name = read_until_nul(conn)?;
                Asked::Name(String::from_utf8_lossy(&name).into_owned(), port)
            } else {
                let ip = Ipv4Addr::new(h[4], h[5], h[6], h[7]);
                Asked::Addr(SocketAddr::new(ip.into(), port))
            };
            let want_user = creds.map(|c| c.split(':').next().unwrap());
            if want_user.is_some_and(|u| u != user) {
                conn.write_all(&[0, 91, 0, 0, 0, 0, 0, 0])?;
                return Ok(());
            }
            (
                asked,
                vec![0, 90, 0, 0, 0, 0, 0, 0],
                vec![0, 91, 0, 0, 0, 0, 0, 0],
            )
        }
        Kind::Socks5 => match socks5(creds, conn)? {
            Some(a) => (
                a,
                vec![5, 0, 0, 1, 127, 0, 0, 1, 0, 0],
                vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0],
            ),
            None => return Ok(()),
        },
        Kind::Http => {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(read_n(conn, 1)?[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let target = text
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            if let Some(c) = creds {
                let b64 = basic(c);
                if !text.contains(&format!("Proxy-Authorization: Basic {b64}\r\n")) {
                    conn.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                          Proxy-Authenticate: Basic realm=\"test\"\r\n\r\n",
                    )?;
                    return Ok(());
                }
            }
            let (h, p) = target.rsplit_once(':').unwrap();
            let p: u16 = p.parse().unwrap();
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let asked = match h.parse::<IpAddr>() {
                Ok(ip) => Asked::Addr(SocketAddr::new(ip, p)),
                Err(_) => Asked::Name(h.to_owned(), p),
            };
            let ok = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n".to_vec();
            (asked, ok, b"HTTP/1.1 502 Bad Gateway\r\n\r\n".to_vec())
        }
    };
    log.lock().unwrap().push(asked.clone());
    let to = match &asked {
        Asked::Addr(a) => *a,
        Asked::Name(n, p) => {
            assert_eq!(n, "localhost", "the test proxy resolves localhost only");
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), *p)
        }
    };
    let Ok(mut up) = TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
        return conn.write_all(&refused);
    };
    // Reply and greeting in one write.
    up.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut greeting = [0u8; 64];
    let got = up.read(&mut greeting)?;
    let mut first = ok;
    first.extend_from_slice(&greeting[..got]);
    conn.write_all(&first)?;
    let (mut from_client, mut to_target) = (conn.try_clone()?, up.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_target);
        let _ = to_target.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up, conn);
    let _ = conn.shutdown(Shutdown::Write);
    let _ = t.join();
    Ok(())
}

fn socks5(creds: Option<&str>, conn: &mut TcpStream) -> std::io::Result<Option<Asked>> {
    let h = read_n(conn, 2)?;
    let methods = read_n(conn, usize::from(h[1]))?;
    if let Some(c) = creds {
        if !methods.contains(&2) {
            conn.write_all(&[5, 0xff])?;
            return Ok(None);
        }
        conn.write_all(&[5, 2])?;
        let v = read_n(conn, 2)?;
        let user = read_n(conn, usize::from(v[1]))?;
        let plen = read_n(conn, 1)?[0];
        let pass = read_n(conn, usize::from(plen))?;
        let given = format!(
            "{}:{}",
            String::from_utf8_lossy(&user),
            String::from_utf8_lossy(&pass)
        );
        if given != c {
            conn.write_all(&[1, 1])?;
            return Ok(None);
        }
        conn.write_all(&[1, 0])?;
    } else {
        conn.write_all(&[5, 0])?;
    }
    let req = read_n(conn, 4)?;
    let asked = match req[3] {
        1 => {
            let a = read_n(conn, 6)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Asked::Addr(SocketAddr::new(ip.into(), u16::from_be_bytes([a[4], a[5]])))
        }
        3 => {
            let n = read_n(conn, 1)?[0];
            let name = read_n(conn, usize::from(n))?;
            let p = read_n(conn, 2)?;
            Asked::Name(
                String::from_utf8_lossy(&name).into_owned(),
                u16::from_be_bytes([p[0], p[1]]),
            )
        }
        _ => {
            let a = read_n(conn, 18)?;
            let o: [u8; 16] = a[..16].try_into().unwrap();
            Asked::Addr(SocketAddr::new(
                IpAddr::from(o),
                u16::from_be_bytes([a[16], a[17]]),
            ))
        }
    };
    Ok(Some(asked))
}

fn basic(creds: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in creds.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(ABC[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

/// A target that greets, then answers each line it gets in upper case.
fn target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GREETING from the target\n").unwrap();
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
                let _ = s.write_all(&v.to_ascii_uppercase());
            });
        }
    });
    addr
}

fn via(
    proxy: &TestProxy,
    kind: &str,
    extra: &[&str],
    host: &str,
    to: SocketAddr,
) -> (ExitStatus, String, String) {
    let p = proxy.addr.to_string();
    let mut args = vec!["--proxy", &p, "--proxy-type", kind];
    args.extend_from_slice(extra);
    let port = to.port().to_string();
    args.extend([host, &port]);
    let (st, out, err) = connect(&args, b"through the tunnel\n");
    (st, String::from_utf8_lossy(&out).into_owned(), err)
}

pub(super) const WANT: &str = "GREETING from the target\nTHROUGH THE TUNNEL\n";

#[test]
fn socks5_tunnels_and_lets_the_proxy_resolve_names() {
    let to = target();
    let proxy = TestProxy::start(Kind::Socks5, None);
    let (st, out, err) = via(&proxy, "socks5", &[], "127.0.0.1", to);
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    let (st, out, err) = via(&proxy, "socks5", &[], "localhost", to);
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    assert_eq!(
        proxy.asked(),
        vec![Asked::Addr(to), Asked::Name("localhost".into(), to.port())]
    );
}

/// `--proxy-dns` as ncat spells it: local (resolved here, the address
/// sent), remote (the name sent; SOCKS4 as SOCKS4a), none (names refused
/// before anything is sent). Only `localhost` is resolved (from
/// /etc/hosts), so no query leaves the machine.
#[test]
fn proxy_dns_chooses_where_the_target_name_is_resolved() {
    let to = target();
    let socks5 = TestProxy::start(Kind::Socks5, None);
    let (st, out, err) = via(
        &socks5,
        "socks5",
        &["--proxy-dns", "local"],
        "localhost",
        to,
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    assert_eq!(socks5.asked(), vec![Asked::Addr(to)]);
    let socks4 = TestProxy::start(Kind::Socks4, None);
    let (st, out, err) = via(
        &socks4,
        "socks4",
        &["--proxy-dns", "remote"],
        "localhost",
        to,
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    assert_eq!(
        socks4.asked(),
        vec![Asked::Name("localhost".into(), to.port())]
    );
    let http = TestProxy::start(Kind::Http, None);
    let (st, _, err) = via(&http, "http", &["--proxy-dns", "none"], "localhost", to);
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(
        err.contains("is a name") && err.contains("--proxy-dns"),
        "{err}"
    );
    // An address is fine with none, and nothing was asked before.
    let (st, out, err) = via(&http, "http", &["--proxy-dns", "none"], "127.0.0.1", to);
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    assert_eq!(http.asked(), vec![Asked::Addr(to)]);
    let (st, _, err) = connect(
        &[
            "--proxy",
            "127.0.0.1:1",
            "--proxy-dns",
            "nearby",
            "127.0.0.1",
            "1",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("local, remote, both or none"), "{err}");
}

#[test]
fn socks5_username_and_password() {
    let to = target();
    let proxy = TestProxy::start(Kind::Socks5, Some("alice:s3cret"));
    let (st, out, err) = via(
        &proxy,
        "socks5",
        &["--proxy-auth", "alice:s3cret"],
        "127.0.0.1",
        to,
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    let (st, _, err) = via(
        &proxy,
        "socks5",
        &["--proxy-auth", "alice:wrong"],
        "127.0.0.1",
        to,
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("refused the username and password"), "{err}");
    let (st, _, err) = via(&proxy, "socks5", &[], "127.0.0.1", to);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("username and password"), "{err}");
}

#[test]
fn socks4_tunnels_with_a_user_and_resolves_names_itself() {
    let to = target();
    let proxy = TestProxy::start(Kind::Socks4, Some("bob:"));
    let (st, out, err) = via(&proxy, "socks4", &["--proxy-auth", "bob"], "localhost", to);
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    // The name was resolved here: the proxy got an address.
    assert_eq!(proxy.asked(), vec![Asked::Addr(to)]);
    let (st, _, err) = via(&proxy, "socks4", &["--proxy-auth", "eve"], "127.0.0.1", to);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("SOCKS4 proxy refused"), "{err}");
}

#[test]
fn http_connect_with_basic_authentication_is_the_default_type() {
    let to = target();
    let proxy = TestProxy::start(Kind::Http, Some("carol:pw"));
    let p = proxy.addr.to_string();
    let port = to.port().to_string();
    // No --proxy-type: http, as ncat.
    let (st, out, err) = connect(
        &[
            "--proxy",
            &p,
            "--proxy-auth",
            "carol:pw",
            "localhost",
            &port,
        ],
        b"through the tunnel\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), WANT);
    assert_eq!(
        proxy.asked(),
        vec![Asked::Name("localhost".into(), to.port())]
    );
    let (st, _, err) = via(&proxy, "http", &[], "127.0.0.1", to);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("asks for a user name and password (it offers Basic)")
            && err.contains("--proxy-auth USER:PASS"),
        "{err}"
    );
    let (st, _, err) = via(
        &proxy,
        "http",
        &["--proxy-auth", "carol:no"],
        "127.0.0.1",
        to,
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("refused the user name and password"), "{err}");
}

/// A proxy that refuses the target, a proxy that is not there, a bad
/// --proxy value.
#[test]
fn proxy_failures_are_reported() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = TestProxy::start(Kind::Socks5, None);
    let (st, _, err) = via(&proxy, "socks5", &[], "127.0.0.1", closed);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    let (st, _, err) = connect(&["--proxy", &closed.to_string(), "127.0.0.1", "80"], b"");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains(&closed.to_string()), "{err}");
    for bad in [
        &["--proxy", "host:0", "127.0.0.1", "80"][..],
        &[
            "--proxy",
            "h:1",
            "--proxy-type",
            "socks9",
            "127.0.0.1",
            "80",
        ][..],
    ] {
        let (st, _, err) = connect(bad, b"");
        assert_eq!(st.code(), Some(2), "{bad:?}: {err}");
    }
}
