//! `--nats-creds`: a NATS server in operator mode (decentralized JWT auth)
//! admits a node with a user credentials file and refuses one without.
//! The operator, account and user keys and JWTs are made here, as `nsc`
//! would make them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;

use super::cluster::{Nats, bounded, free_port, node_with};
use super::cluster_access::bytes_cross;
use super::*;

/// A JWT of these NATS claims (`nats`), about `subject`, signed by `issuer`.
fn jwt(issuer: &KeyPair, subject: &KeyPair, name: &str, nats: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": format!("{name}-{}", subject.public_key()),
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject.public_key(),
        "nats": nats,
    });
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The server configuration (operator, account preloaded) and a user's
/// credentials file, in `dir`: `[config, creds]`.
fn operator_setup(dir: &std::path::Path) -> [String; 2] {
    let (op, account, user) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_user(),
    );
    let op_jwt = jwt(
        &op,
        &op,
        "sockbox-op",
        &serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    let account_jwt = jwt(
        &op,
        &account,
        "chat",
        &serde_json::json!({
            "limits": unlimited,
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2,
        }),
    );
    let user_jwt = jwt(
        &account,
        &user,
        "node",
        &serde_json::json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }),
    );
    let config = format!(
        "operator: {op_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt}\n}}\n",
        account.public_key()
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    [("nats.conf", config), ("node.creds", creds)].map(|(name, text)| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    })
}

#[test]
fn cluster_with_a_creds_file_on_an_operator_mode_nats() {
    let dir = tempfile::tempdir().unwrap();
    let [config, creds] = operator_setup(dir.path());
    let Some(nats) = Nats::start_on("cluster_creds", free_port(), false, &["-c", &config]) else {
        return;
    };
    // Without credentials: refused at start, exit 3, naming what to check.
    let out = bounded()
        .args(["broker", "127.0.0.1", "0", "--cluster", &nats.url()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--nats-creds"), "{err}");
    let n1 = node_with(&nats, "broker", &["--nats-creds", &creds, "--room", "c"]);
    let n2 = node_with(&nats, "broker", &["--nats-creds", &creds, "--room", "c"]);
    let mut a = Client::connect(n1.addr);
    let mut b = Client::connect(n2.addr);
    bytes_cross(&mut a, &mut b);
}
