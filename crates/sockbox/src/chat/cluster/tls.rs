//! TLS to the NATS servers: the rustls client configuration, with the
//! files read once at start (before privileges are dropped).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::tls::TlsError;

/// TLS settings for the connection to NATS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// Trust only the CA certificates in this PEM file; `None` uses the
    /// system store.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM), for servers
    /// that verify clients.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn certs(path: &PathBuf, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|source| TlsError::Pem {
            what,
            path: path.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what,
            path: path.clone(),
            marker: "CERTIFICATE",
        });
    }
    Ok(certs)
}

impl NatsTls {
    /// The rustls client configuration (reads every file now).
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let source = if let Some(ca) = &self.ca {
            roots.add_parsable_certificates(certs(ca, "CA certificate")?);
            ca.display().to_string()
        } else {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            "the system certificate store".to_owned()
        };
        if roots.is_empty() {
            return Err(TlsError::NoRoots(source));
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::ClientConfig)?
            .with_root_certificates(roots);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = certs(cert, "certificate")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
                    what: "private key",
                    path: key.clone(),
                    source,
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::ClientConfig)
            }
        }
    }
}
