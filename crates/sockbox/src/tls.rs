//! TLS for servers and clients (rustls with the `ring` crypto provider).
//!
//! The API is small on purpose:
//!
//! * servers: [`ServerTls`] names a PEM certificate chain and a PEM private
//!   key; [`ServerTls::acceptor`] loads them into a [`TlsAcceptor`]. Wrap each
//!   accepted `TcpStream` with `acceptor.accept(stream).await`.
//! * clients: [`ClientTls`] says which roots to trust (`--tls-ca FILE`, or the
//!   system store) or to skip verification (`--tls-insecure`);
//!   [`ClientTls::connector`] builds a [`TlsConnector`], and [`connect`] runs
//!   the handshake over any connected stream, checking the certificate
//!   against the host name the user typed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sockbox::tls::{ClientTls, connect};
//! let tcp = tokio::net::TcpStream::connect("example.org:443").await?;
//! let connector = ClientTls::default().connector()?;
//! let tls = connect(&connector, "example.org", tcp).await?;
//! # drop(tls); Ok(()) }
//! ```
//!
//! Every error names the file or host it is about and how to fix it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};

pub use tokio_rustls::client::TlsStream as ClientTlsStream;
pub use tokio_rustls::server::TlsStream as ServerTlsStream;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What can go wrong setting up or running TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {source} (give a PEM file)")]
    Pem {
        /// "certificate", "private key" or "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file held no item of the wanted kind.
    #[error("{path} holds no {what} (expected a PEM block such as -----BEGIN {marker}-----)")]
    Missing {
        /// "certificate", "private key" or "CA certificate".
        what: &'static str,
        /// The PEM marker we looked for.
        marker: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// No certificate in `--tls-ca` (or the system store) could be used as a root.
    #[error(
        "no usable CA certificate in {0}: give --tls-ca FILE with PEM certificates, or --tls-insecure"
    )]
    NoRoots(String),
    /// rustls refused the certificate/key pair or the configuration.
    #[error(
        "TLS configuration from {cert} and {key}: {source} (does the key match the certificate?)"
    )]
    ServerConfig {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the client configuration.
    #[error("TLS client configuration: {0}")]
    ClientConfig(rustls::Error),
    /// The host is not usable as a TLS server name.
    #[error("{0:?} is not a valid TLS server name (give a DNS name or IP address)")]
    ServerName(String),
    /// The TLS handshake failed.
    #[error("TLS handshake with {peer} failed: {source}{hint}", hint = handshake_hint(.source))]
    Handshake {
        /// Host name or address of the other side.
        peer: String,
        /// The I/O error carrying the TLS alert.
        source: io::Error,
    },
}

/// The crypto provider every config uses: `ring` (aws-lc needs cmake to build).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server side: a certificate chain and its private key, both PEM files
/// (`--tls-cert`, `--tls-key`). The key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM file with the server certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
}

impl ServerTls {
    /// Load the files and build an acceptor (TLS 1.2 and 1.3, no client auth).
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let chain = load_certs(&self.cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing {
                what: "private key",
                marker: "PRIVATE KEY",
                path: self.key.clone(),
            },
            source => TlsError::Pem {
                what: "private key",
                path: self.key.clone(),
                source,
            },
        })?;
        let server_err = |source| TlsError::ServerConfig {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        };
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(server_err)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(server_err)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Client side: which server certificates to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Trust only the CA certificates in this PEM file (`--tls-ca`). `None`
    /// uses the system store (honouring `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    pub ca: Option<PathBuf>,
    /// Accept any certificate and any name (`--tls-insecure`). The handshake
    /// signatures are still checked, but anyone on the path can impersonate
    /// the server: for testing only.
    pub insecure: bool,
}

impl ClientTls {
    /// Build a connector from these settings (reads the CA file or the
    /// system store now, once).
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::ClientConfig)?;
        let config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        } else if let Some(ca) = &self.ca {
            let pinned = load_certs(ca, "CA certificate")?;
            let roots = Self::roots(pinned.clone(), ca.display().to_string())?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientConfig(rustls::Error::General(e.to_string())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(TrustFile { inner, pinned }))
                .with_no_client_auth()
        } else {
            let found = rustls_native_certs::load_native_certs();
            let roots = Self::roots(found.certs, "the system certificate store".to_owned())?;
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }

    /// The usable roots among `certs` (from `source`, for the error).
    fn roots(
        certs: Vec<CertificateDer<'static>>,
        source: String,
    ) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(certs);
        if roots.is_empty() {
            return Err(TlsError::NoRoots(source));
        }
        Ok(roots)
    }
}

/// What to suggest after a failed handshake: when the server's certificate
/// was refused, how to trust it.
fn handshake_hint(source: &io::Error) -> &'static str {
    match source
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => {
            " (connect by a name the certificate lists; --tls-insecure skips the check, for testing only)"
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            " (trust the server's certificate or its CA with --tls-ca FILE; --tls-insecure skips the check, for testing only)"
        }
        _ => "",
    }
}

/// `--tls-ca FILE`: the usual chain check against the file's certificates,
/// plus the one case OpenSSL accepts and webpki refuses: the server presents
/// exactly a certificate from FILE that is marked as a CA, which is what
/// `openssl req -x509 -newkey …` makes by default. webpki checked its
/// validity dates before refusing it; the host name is checked here.
struct TrustFile {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TrustFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustFile")
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

/// True when webpki refused a certificate only for being a CA.
fn is_ca_used_as_end_entity(e: &OtherError) -> bool {
    e.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
}

impl ServerCertVerifier for TrustFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(e)))
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let cert = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Parse `host` (a DNS name or an IP address, brackets allowed) as the name
/// the server certificate must match.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
}

/// Run the client handshake over `stream`, checking the certificate against
/// `host`.
pub async fn connect<S>(
    connector: &TlsConnector,
    host: &str,
    stream: S,
) -> Result<ClientTlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(host)?;
    connector
        .connect(name, stream)
        .await
        .map_err(|source| TlsError::Handshake {
            peer: host.to_owned(),
            source,
        })
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |source| TlsError::Pem {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what,
            marker: "CERTIFICATE",
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// `--tls-insecure`: accept any certificate, still check handshake signatures.
struct NoVerify {
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for NoVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoVerify")
    }
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Test helpers: a throwaway CA-less self-signed certificate for `localhost`
/// and `127.0.0.1`, written as PEM files.
#[cfg(test)]
pub(crate) mod testcert {
    use std::path::PathBuf;

    /// Certificate and key files in a temporary directory (kept alive by `dir`).
    pub struct Files {
        pub dir: tempfile::TempDir,
        pub cert: PathBuf,
        pub key: PathBuf,
    }

    pub fn write() -> Files {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
        save(&ck.cert.pem(), &ck.signing_key.serialize_pem())
    }

    /// A self-signed certificate marked as a CA (basicConstraints CA:TRUE),
    /// as `openssl req -x509 -newkey rsa:2048 -nodes …` makes by default.
    pub fn write_ca() -> Files {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        save(&cert.pem(), &key.serialize_pem())
    }

    fn save(cert_pem: &str, key_pem: &str) -> Files {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).expect("write cert");
        std::fs::write(&key, key_pem).expect("write key");
        Files { dir, cert, key }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn echo_once(
        acceptor: TlsAcceptor,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
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

    #[tokio::test]
    async fn round_trip_with_ca_file() {
        let files = testcert::write();
        let acceptor = ServerTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }
        .acceptor()
        .unwrap();
        let (addr, task) = echo_once(acceptor).await;
        let connector = ClientTls {
            ca: Some(files.cert.clone()),
            insecure: false,
        }
        .connector()
        .unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(&connector, "localhost", tcp).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn wrong_name_is_rejected_unless_insecure() {
        let files = testcert::write();
        let server = ServerTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
        };
        let (addr, task) = echo_once(server.acceptor().unwrap()).await;
        let strict = ClientTls {
            ca: Some(files.cert.clone()),
            insecure: false,
        }
        .connector()
        .unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connect(&strict, "not-localhost.example", tcp)
            .await
            .unwrap_err();
        assert!(matches!(err, TlsError::Handshake { .. }), "{err}");
        task.await.unwrap();

        let (addr, task) = echo_once(server.acceptor().unwrap()).await;
        let loose = ClientTls {
            ca: None,
            insecure: true,
        }
        .connector()
        .unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(&loose, "not-localhost.example", tcp).await.unwrap();
        tls.write_all(b"12345").await.unwrap();
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"12345");
        task.await.unwrap();
    }

    /// Regression: a self-signed certificate made the usual OpenSSL way is
    /// marked as a CA, and `--tls-ca` with that very file was refused with
    /// "Other(OtherError(CaUsedAsEndEntity))". Now the exact certificate
    /// from the file is trusted (name still checked); other CA-marked
    /// certificates are still refused, with a hint how to trust them.
    #[tokio::test]
    async fn ca_marked_self_signed_cert_is_trusted_when_given_with_tls_ca() {
        let files = testcert::write_ca();
        let server = ServerTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
        };
        let trusting = ClientTls {
            ca: Some(files.cert.clone()),
            insecure: false,
        }
        .connector()
        .unwrap();
        let (addr, task) = echo_once(server.acceptor().unwrap()).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(&trusting, "localhost", tcp).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        task.await.unwrap();

        // The name must still match.
        let (addr, task) = echo_once(server.acceptor().unwrap()).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connect(&trusting, "other.example", tcp).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not valid for name"), "{msg}");
        assert!(msg.contains("a name the certificate lists"), "{msg}");
        task.await.unwrap();

        // A different CA-marked certificate in the file is no licence.
        let other = testcert::write_ca();
        let stranger = ClientTls {
            ca: Some(other.cert.clone()),
            insecure: false,
        }
        .connector()
        .unwrap();
        let (addr, task) = echo_once(server.acceptor().unwrap()).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connect(&stranger, "localhost", tcp).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--tls-ca FILE"), "{msg}");
        task.await.unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let files = testcert::write();
        let missing = files.dir.path().join("nope.pem");
        let err = ServerTls {
            cert: missing.clone(),
            key: files.key.clone(),
        }
        .acceptor()
        .err()
        .unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");

        // A key file given as the certificate: no CERTIFICATE block.
        let err = ServerTls {
            cert: files.key.clone(),
            key: files.key.clone(),
        }
        .acceptor()
        .err()
        .unwrap();
        assert!(matches!(err, TlsError::Missing { .. }), "{err}");

        // A certificate given as the key.
        let err = ServerTls {
            cert: files.cert.clone(),
            key: files.cert.clone(),
        }
        .acceptor()
        .err()
        .unwrap();
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
}
