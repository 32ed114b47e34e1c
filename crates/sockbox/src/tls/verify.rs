//! The server-certificate check (trust a CA file, or nothing: [`Verifier`]),
//! and why a refused certificate was refused ([`CertProblem`]).

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// Why the server's certificate was refused, when it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertProblem {
    /// The certificate lists no host name or address at all (made
    /// without a subjectAltName: a common name alone counts for nothing).
    NoNames,
    /// The certificate lists other names than the one connected to.
    WrongName,
    /// The certificate (or its CA) is not trusted.
    Untrusted,
}

impl CertProblem {
    /// The problem behind a failed handshake's error, if it is one.
    pub fn of(source: &io::Error) -> Option<Self> {
        match source
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) if presented.is_empty() => Some(Self::NoNames),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Some(Self::WrongName),
            Some(rustls::Error::InvalidCertificate(_)) => Some(Self::Untrusted),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::NoNames => {
                "the certificate names no host (a common name alone does not count): make it \
                 with a subjectAltName, with openssl's -addext option, e.g. openssl req -x509 \
                 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=localhost \
                 -addext \"subjectAltName=DNS:localhost,IP:127.0.0.1\""
            }
            Self::WrongName => "connect by a name the certificate lists",
            Self::Untrusted => "trust the server's certificate or its CA",
        }
    }
}

/// The hint a failed handshake's message ends with.
pub(super) fn handshake_hint(source: &io::Error) -> String {
    CertProblem::of(source).map_or_else(String::new, |p| format!(" ({})", p.hint()))
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
