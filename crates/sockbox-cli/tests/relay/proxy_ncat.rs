//! `connect --proxy` against ncat's own HTTP proxy server (`ncat -l
//! --proxy-type http --proxy-auth USER:PASS`), which offers Basic and
//! Digest. sockbox's requests pass through a recording forwarder, so the
//! test sees which scheme went out, not only that ncat let it through.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use super::proxy::WANT;
use super::*;

/// `ncat -l -k --proxy-type http --proxy-auth CREDS` on a free loopback
/// port, killed (by its pid) on drop.
struct NcatProxy {
    child: Child,
    port: u16,
}

impl Drop for NcatProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start one; `None` (skip recorded) without ncat outside CI.
fn ncat_proxy(test: &str, creds: &str) -> Option<NcatProxy> {
    let found = Command::new("ncat")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !crate::util::in_ci(),
            "ncat is not installed (apt-get install ncat)"
        );
        crate::util::skip::record(test, "ncat is not installed");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("ncat")
        .args(["-l", "-k", "127.0.0.1", &port.to_string()])
        .args(["--proxy-type", "http", "--proxy-auth", creds])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = NcatProxy { child, port };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(10.0, || TcpStream::connect(addr).is_ok()),
        "ncat did not listen on {addr}"
    );
    Some(proxy)
}

/// A forwarder to `to` that keeps the first bytes each client sends (the
/// `CONNECT` request and its headers).
fn recording_forwarder(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming().take(16) {
            let Ok(mut c) = c else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let Ok(mut up) = TcpStream::connect(to) else {
                    return;
                };
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut b = [0u8; 1];
                    if c.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                up.write_all(&head).unwrap();
                let (mut from_c, mut to_up) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_c, &mut to_up);
                    let _ = to_up.shutdown(Shutdown::Write);
                });
                let _ = std::io::copy(&mut up, &mut c);
                let _ = c.shutdown(Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (addr, seen)
}

/// A target that greets, then answers each line in upper case at once.
fn line_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GREETING from the target\n").unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let _ = s.write_all(line.to_ascii_uppercase().as_bytes());
                    line.clear();
                }
            });
        }
    });
    addr
}

/// `connect --proxy PROXY --proxy-auth AUTH TARGET`, keeping its input
/// open until two lines came back (ncat's proxy ends the tunnel when the
/// client half-closes): exit status, those lines, standard error.
fn through(proxy: SocketAddr, auth: &str, to: SocketAddr) -> (ExitStatus, String, String) {
    let mut child = sockbox_std()
        .args([
            "connect",
            "--proxy",
            &proxy.to_string(),
            "--proxy-auth",
            auth,
        ])
        .args(["127.0.0.1", &to.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"through the tunnel\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut got = String::new();
    for _ in 0..2 {
        if out.read_line(&mut got).unwrap_or(0) == 0 {
            break;
        }
    }
    drop(stdin);
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr).into_owned();
    (done.status, got, err)
}

/// sockbox asks first without credentials, then answers ncat's 407 with
/// Digest (the password never crosses the wire), as ncat's own client
/// does; a wrong password is refused.
#[test]
fn http_proxy_digest_authentication_against_ncat() {
    let test = "http_proxy_digest_authentication_against_ncat";
    let Some(ncat) = ncat_proxy(test, "digest:s3cret") else {
        return;
    };
    let (front, seen) = recording_forwarder(([127, 0, 0, 1], ncat.port).into());
    let to = line_target();
    let (st, out, err) = through(front, "digest:s3cret", to);
    assert!(st.success(), "{err}");
    assert_eq!(out, WANT);
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        !requests[0].contains("Proxy-Authorization"),
        "{requests:#?}"
    );
    let auth = requests[1]
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
        .unwrap_or_default();
    assert!(
        auth.starts_with("Digest username=\"digest\", realm=\"Ncat\""),
        "{auth}"
    );
    assert!(!auth.contains("s3cret"), "{auth}");
    assert!(
        auth.contains(&format!("uri=\"127.0.0.1:{}\"", to.port())),
        "{auth}"
    );
    let (st, out, err) = through(front, "digest:wrong", to);
    assert_eq!(st.code(), Some(1), "{out}{err}");
    assert!(err.contains("refused the user name and password"), "{err}");
}
