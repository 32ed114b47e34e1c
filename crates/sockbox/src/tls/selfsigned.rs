//! A throwaway certificate for a TLS server started without one, as
//! `ncat --ssl -l` makes: a fresh ECDSA P-256 key and a self-signed
//! certificate for the given names, valid for a year, kept in memory only.
//! Clients cannot check it against a CA: they compare its SHA-256
//! fingerprint ([`SelfSigned::fingerprint`]) or skip the check.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use super::{TlsError, provider};

/// A generated certificate and the acceptor that serves it.
#[derive(Clone)]
pub struct SelfSigned {
    /// Serves the certificate.
    pub acceptor: TlsAcceptor,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// SHA-256 of the certificate (DER), as `AB:CD:…` (the form
    /// `openssl x509 -noout -fingerprint -sha256` prints).
    pub fingerprint: String,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Generate a key and a self-signed certificate whose subjectAltNames are
/// `names` (DNS names or IP addresses), and an acceptor for it.
pub fn self_signed(names: &[String]) -> Result<SelfSigned, TlsError> {
    let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(fail)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        names.first().map_or("sockbox", String::as_str),
    );
    dn.push(rcgen::DnType::OrganizationName, "sockbox (temporary)");
    params.distinguished_name = dn;
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 24 * 3600)).into();
    let cert = params.self_signed(&key).map_err(fail)?;
    let der = CertificateDer::from(cert.der().to_vec());
    let fingerprint = fingerprint(&der);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![der], key))
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(SelfSigned {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem: cert.pem(),
        fingerprint,
    })
}

/// SHA-256 of `der` as colon-separated upper-case hex pairs.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn fingerprint_format() {
        // SHA-256 of the empty string.
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[tokio::test]
    async fn a_generated_certificate_serves_and_its_fingerprint_matches() {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let s = self_signed(&names).unwrap();
        let other = self_signed(&names).unwrap();
        assert_ne!(s.fingerprint, other.fingerprint, "a fresh key each time");
        // The PEM holds the certificate the fingerprint is of.
        let der = CertificateDer::from_pem_slice(s.cert_pem.as_bytes()).unwrap();
        assert_eq!(fingerprint(&der), s.fingerprint);
        // A client that trusts exactly this certificate completes a handshake.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &s.cert_pem).unwrap();
        let connector = super::super::ClientTls {
            ca: Some(ca),
            insecure: false,
        }
        .connector()
        .unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let acceptor = s.acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            acceptor.accept(tcp).await.map(drop)
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        super::super::connect(&connector, "localhost", tcp)
            .await
            .unwrap();
        server.await.unwrap().unwrap();
    }
}
