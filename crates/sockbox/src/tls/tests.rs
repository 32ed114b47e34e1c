//! Handshakes over loopback with throwaway certificates, and the errors
//! for bad files and names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_once(acceptor: TlsAcceptor) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut buf = [0u8; 5];
        if tls.read_exact(&mut buf).await.is_ok() {
            let _ = tls.write_all(&buf).await;
            let _ = tls.shutdown().await;
        }
    });
    (addr, task)
}

fn server(files: &testcert::Files) -> ServerTls {
    ServerTls {
        cert: files.cert.clone(),
        key: files.key.clone(),
    }
}

fn client(ca: Option<&Path>, insecure: bool) -> TlsConnector {
    ClientTls {
        ca: ca.map(Path::to_path_buf),
        insecure,
    }
    .connector()
    .unwrap()
}

/// Connect to a fresh echo server for `server` as `name` and check that
/// bytes come back; the handshake error otherwise.
async fn echo_via(
    server: &ServerTls,
    connector: &TlsConnector,
    name: &str,
) -> Result<(), TlsError> {
    let (addr, task) = echo_once(server.acceptor().unwrap()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let result = match connect(connector, name, tcp).await {
        Ok(mut tls) => {
            tls.write_all(b"hello").await.unwrap();
            let mut back = [0u8; 5];
            tls.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hello");
            Ok(())
        }
        Err(e) => Err(e),
    };
    task.await.unwrap();
    result
}

#[tokio::test]
async fn round_trip_with_ca_file() {
    let files = testcert::write();
    let trusting = client(Some(&files.cert), false);
    echo_via(&server(&files), &trusting, "localhost")
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_name_is_rejected_unless_insecure() {
    let files = testcert::write();
    let server = server(&files);
    let strict = client(Some(&files.cert), false);
    let err = echo_via(&server, &strict, "not-localhost.example")
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::Handshake { .. }), "{err}");
    let loose = client(None, true);
    echo_via(&server, &loose, "not-localhost.example")
        .await
        .unwrap();
}

/// Regression: a self-signed certificate made the usual OpenSSL way is
/// marked as a CA, and `--tls-ca` with that very file was refused with
/// "Other(OtherError(CaUsedAsEndEntity))". Now the exact certificate
/// from the file is trusted (name still checked); other CA-marked
/// certificates are still refused, with a hint how to trust them.
#[tokio::test]
async fn ca_marked_self_signed_cert_is_trusted_when_given_with_tls_ca() {
    let files = testcert::write_ca(&["localhost", "127.0.0.1"]);
    let srv = server(&files);
    let trusting = client(Some(&files.cert), false);
    echo_via(&srv, &trusting, "localhost").await.unwrap();

    // The name must still match.
    let msg = echo_via(&srv, &trusting, "other.example")
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not valid for name"), "{msg}");
    assert!(msg.contains("a name the certificate lists"), "{msg}");

    // A different CA-marked certificate in the file is no licence.
    let other = testcert::write_ca(&["localhost", "127.0.0.1"]);
    let stranger = client(Some(&other.cert), false);
    let msg = echo_via(&srv, &stranger, "localhost")
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("trust the server's certificate"), "{msg}");
    assert!(!msg.contains("--"), "library messages name no flag: {msg}");

    // A certificate without subjectAltName (openssl req without -addext)
    // matches no name; the hint says how to make one that does.
    let bare = testcert::write_ca(&[]);
    let trusting = client(Some(&bare.cert), false);
    let msg = echo_via(&server(&bare), &trusting, "localhost")
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("names no host"), "{msg}");
    assert!(msg.contains("-addext \"subjectAltName=DNS:"), "{msg}");
}

#[test]
fn errors_name_the_file() {
    let files = testcert::write();
    let acceptor_err = |cert: &Path, key: &Path| {
        ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }
        .acceptor()
        .err()
        .unwrap()
    };
    let missing = files.dir.path().join("nope.pem");
    let err = acceptor_err(&missing, &files.key);
    assert!(err.to_string().contains("nope.pem"), "{err}");

    // A key file given as the certificate: no CERTIFICATE block.
    let err = acceptor_err(&files.key, &files.key);
    assert!(matches!(err, TlsError::Missing { .. }), "{err}");

    // A certificate given as the key.
    let err = acceptor_err(&files.cert, &files.cert);
    assert!(matches!(err, TlsError::Missing { .. }), "{err}");

    let err = ClientTls {
        ca: Some(files.key.clone()),
        insecure: false,
    }
    .connector()
    .err()
    .unwrap();
    assert!(err.to_string().contains("key.pem"), "{err}");
}

#[test]
fn server_names() {
    assert!(server_name("localhost").is_ok());
    assert!(server_name("127.0.0.1").is_ok());
    assert!(server_name("[::1]").is_ok());
    assert!(matches!(
        server_name("bad name!"),
        Err(TlsError::ServerName(_))
    ));
}
