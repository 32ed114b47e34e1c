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
//! * a server without certificate files: [`self_signed`] makes a throwaway
//!   one in memory and says its SHA-256 fingerprint.
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

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};

use verify::{Verifier, handshake_hint};

pub use verify::CertProblem;

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
    /// No certificate in the CA file (or the system store) could be used as a root.
    #[error("no usable CA certificate in {0}: give a file of PEM CA certificates")]
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
    /// Generating a temporary certificate failed.
    #[error("cannot generate a temporary certificate: {0}")]
    Generate(String),
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

impl TlsError {
    /// Why the server's certificate was refused, for a handshake that
    /// failed on it.
    pub fn cert_problem(&self) -> Option<CertProblem> {
        match self {
            Self::Handshake { source, .. } => CertProblem::of(source),
            _ => None,
        }
    }
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
        let algorithms = provider.signature_verification_algorithms;
        let verifier = if self.insecure {
            Some(Verifier::insecure(algorithms))
        } else if let Some(ca) = &self.ca {
            let pinned = load_certs(ca, "CA certificate")?;
            let roots = Self::roots(pinned.clone(), ca.display().to_string())?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientConfig(rustls::Error::General(e.to_string())))?;
            Some(Verifier::trust_file(inner, pinned, algorithms))
        } else {
            None
        };
        let config = if let Some(v) = verifier {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(v))
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

mod selfsigned;
mod verify;

pub use selfsigned::{SelfSigned, fingerprint, self_signed};

#[cfg(test)]
pub(crate) mod testcert;
#[cfg(test)]
mod tests;
