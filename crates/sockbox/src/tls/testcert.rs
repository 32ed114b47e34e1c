//! Test helpers: throwaway self-signed certificates for `localhost`
//! and `127.0.0.1`, written as PEM files.

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
/// `names` become its subjectAltName entries (none: a CN-only certificate).
pub fn write_ca(names: &[&str]) -> Files {
    let names = names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>();
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
