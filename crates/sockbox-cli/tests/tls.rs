//! TLS client errors as a user sees them.

use std::net::{TcpListener, TcpStream};

use crate::util::netns::wait_until;
use crate::util::server::Spawned;
use crate::util::{sockbox, sockbox_std};

/// Regression: a server certificate with only a common name (openssl
/// `req -x509` without `-addext`) is refused by `--tls-ca`, and the
/// message names the exact openssl option that adds a subjectAltName, and
/// the flag that skips the check.
#[test]
fn a_cn_only_certificate_is_refused_with_the_openssl_option_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut cmd = sockbox_std();
    cmd.args([
        "listen",
        "-k",
        "--tls",
        "--tls-cert",
        cert.to_str().unwrap(),
    ])
    .args(["--tls-key", key.to_str().unwrap(), "127.0.0.1", &port]);
    let _srv = Spawned::start(cmd);
    assert!(
        wait_until(10.0, || TcpStream::connect((
            "127.0.0.1",
            port.parse().unwrap()
        ))
        .is_ok()),
        "the TLS listener did not start"
    );
    let out = sockbox()
        .args([
            "connect",
            "--tls",
            "--tls-ca",
            cert.to_str().unwrap(),
            "localhost",
            &port,
        ])
        .write_stdin("")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("names no host"), "{err}");
    assert!(
        err.contains("-addext \"subjectAltName=DNS:localhost"),
        "{err}"
    );
    assert!(err.contains("--tls-insecure"), "{err}");
}
