//! The server-certificate check of `--tls-ca FILE` and `--tls-insecure`
//! ([`Verifier`]), and the hint a refused certificate's error ends with.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// What to suggest after a failed handshake: when the server's certificate
/// was refused, how to trust it.
pub(super) fn handshake_hint(source: &io::Error) -> &'static str {
    match source
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        })) if presented.is_empty() => {
            " (the certificate names no host: make it with a subjectAltName, e.g. openssl req … \
             -addext subjectAltName=DNS:localhost,IP:127.0.0.1; --tls-insecure skips the check, \
             for testing only)"
        }
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

/// The server-certificate check of `--tls-ca FILE` and `--tls-insecure`;
/// the handshake signatures are checked the same way for both.
///
/// * `--tls-ca FILE` ([`Verifier::trust_file`]): the usual chain check
///   against the file's certificates, plus the one case OpenSSL accepts and
///   webpki refuses: the server presents exactly a certificate from FILE
///   that is marked as a CA, which is what `openssl req -x509 -newkey …`
///   makes by default. webpki checked its validity dates before refusing
///   it; the host name is checked here.
/// * `--tls-insecure` ([`Verifier::insecure`]): any certificate, any name.
pub(super) struct Verifier {
    /// The chain verifier and the file's certificates; `None` accepts any.
    chain: Option<(Arc<WebPkiServerVerifier>, Vec<CertificateDer<'static>>)>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// Check chains with `inner`, and trust exactly the `pinned` certificates
    /// (those of the `--tls-ca` file) when they are marked as CAs.
    pub(super) fn trust_file(
        inner: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            chain: Some((inner, pinned)),
            algorithms,
        }
    }

    /// Accept any certificate and name (still check handshake signatures).
    pub(super) fn insecure(algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self {
            chain: None,
            algorithms,
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("pinned", &self.chain.as_ref().map(|(_, p)| p.len()))
            .finish_non_exhaustive()
    }
}

/// True when webpki refused a certificate only for being a CA.
fn is_ca_used_as_end_entity(e: &OtherError) -> bool {
    e.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((inner, pinned)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(e)))
                if is_ca_used_as_end_entity(&e)
                    && pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
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
