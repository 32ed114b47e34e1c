//! `--cluster` with NATS auth and TLS, the broker across nodes, a node's
//! SIGTERM, an outgoing queue too small, and the flags' usage errors.

use super::cluster::{Nats, await_room, bounded, join, node_with, until};
use super::*;

#[test]
fn cluster_flags_usage_errors_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--room", "a.b"], "--room"),
        (&["--heartbeat", "2s", "--dead-after", "1s"], "--dead-after"),
        (
            &["--nats-token", "t", "--nats-creds", "/etc/hostname"],
            "--nats-token",
        ),
    ];
    for (args, flag) in cases {
        let out = bounded()
            .args(["chat", "127.0.0.1", "0", "--cluster", "nats://127.0.0.1:1"])
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn cluster_required_with_unreachable_nats_fails_at_start_with_exit_3() {
    let port = super::cluster::free_port();
    let out = bounded()
        .args(["chat", "127.0.0.1", "0", "--cluster-required", "--cluster"])
        .arg(format!("nats://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot connect to NATS"), "{err}");
}

/// With several URLs, one down and one whose certificate is not trusted,
/// the start fails (exit 3) whatever order the client tries them in (it
/// reports only its last error): that refusal will not heal by itself, so
/// no start split.
#[test]
fn cluster_a_refusal_among_several_servers_fails_the_start_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let [_, cert, key, _, _] = ca_and_certs(dir.path());
    let other = tempfile::tempdir().unwrap();
    let [other_ca, _, _, _, _] = ca_and_certs(other.path());
    let tls = ["--tls", "--tlscert", &cert, "--tlskey", &key];
    let Some(nats) = Nats::start_with("cluster_refusal_among_several", &tls) else {
        return;
    };
    let down = format!("nats://127.0.0.1:{}", super::cluster::free_port());
    for _ in 0..4 {
        let out = bounded()
            .args([
                "chat",
                "127.0.0.1",
                "0",
                "--nats-ca",
                &other_ca,
                "--cluster",
            ])
            .arg(format!("{down},{}", nats.url()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("cannot connect to NATS"), "{err}");
    }
}

#[test]
fn cluster_with_a_token_or_user_and_password() {
    let Some(nats) = Nats::start_with("cluster_token", &["--auth", "s3cret"]) else {
        return;
    };
    // Without the token: refused at start, the message says what to check.
    let out = bounded()
        .args(["chat", "127.0.0.1", "0", "--cluster", &nats.url()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--nats-token"), "{err}");
    let n1 = node_with(
        &nats,
        "chat",
        &["--nats-token", "s3cret", "--node-name", "n1"],
    );
    let n2 = node_with(
        &nats,
        "chat",
        &["--nats-token", "s3cret", "--node-name", "n2"],
    );
    let (mut a, _) = join(&n1);
    let (mut b, bn) = join(&n2);
    await_room(&mut a, 2, 2);
    b.send(b"with a token\n");
    assert!(
        until(&mut a, "with a token")
            .pop()
            .unwrap()
            .starts_with(&format!("<{bn}>"))
    );

    let Some(nats) = Nats::start_with("cluster_user", &["--user", "u", "--pass", "p"]) else {
        return;
    };
    let creds = ["--nats-user", "u", "--nats-password", "p"];
    let n3 = node_with(&nats, "chat", &creds);
    let n4 = node_with(&nats, "chat", &creds);
    let (mut c, _) = join(&n3);
    let (mut d, _) = join(&n4);
    await_room(&mut c, 2, 2);
    d.send(b"with a password\n");
    until(&mut c, "with a password");
}

/// A CA, a server certificate it signed for localhost and 127.0.0.1, and
/// a client certificate it signed: `[ca, cert, key, client cert, client
/// key]`.
fn ca_and_certs(dir: &std::path::Path) -> [String; 5] {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let mut client = rcgen::CertificateParams::new(vec!["sockbox-node".into()]).unwrap();
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();
    let files = [
        ("ca.pem", ca_cert.pem()),
        ("cert.pem", leaf_cert.pem()),
        ("key.pem", leaf_key.serialize_pem()),
        ("client.pem", client_cert.pem()),
        ("client-key.pem", client_key.serialize_pem()),
    ];
    files.map(|(name, pem)| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p.to_str().unwrap().to_owned()
    })
}

#[test]
fn cluster_over_tls_to_nats() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, _, _] = ca_and_certs(dir.path());
    let tls = ["--tls", "--tlscert", &cert, "--tlskey", &key];
    let Some(nats) = Nats::start_with("cluster_tls", &tls) else {
        return;
    };
    let n1 = node_with(&nats, "chat", &["--nats-ca", &ca, "--node-name", "n1"]);
    let n2 = node_with(&nats, "chat", &["--nats-ca", &ca, "--node-name", "n2"]);
    let (mut a, _) = join(&n1);
    let (mut b, _) = join(&n2);
    await_room(&mut a, 2, 2);
    b.send(b"over tls\n");
    until(&mut a, "over tls");
    // Trusting another CA: refused at start.
    let other = tempfile::tempdir().unwrap();
    let [other_ca, _, _, _, _] = ca_and_certs(other.path());
    let out = bounded()
        .args(["chat", "127.0.0.1", "0", "--cluster", &nats.url()])
        .args(["--nats-ca", &other_ca])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn cluster_with_a_client_certificate_nats_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client, client_key] = ca_and_certs(dir.path());
    let tls = [
        "--tlsverify",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlscacert",
        &ca,
    ];
    let Some(nats) = Nats::start_with("cluster_client_cert", &tls) else {
        return;
    };
    // Without a client certificate: refused at start (it will not heal by
    // itself, so no start split), exit 3.
    let out = bounded()
        .args(["chat", "127.0.0.1", "0", "--cluster", &nats.url()])
        .args(["--nats-ca", &ca])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot connect to NATS"), "{err}");
    let with_cert = |name| {
        node_with(
            &nats,
            "chat",
            &[
                "--nats-ca",
                &ca,
                "--nats-cert",
                &client,
                "--nats-key",
                &client_key,
                "--node-name",
                name,
            ],
        )
    };
    let (n1, n2) = (with_cert("n1"), with_cert("n2"));
    let (mut a, _) = join(&n1);
    let (mut b, _) = join(&n2);
    await_room(&mut a, 2, 2);
    b.send(b"with a client certificate\n");
    until(&mut a, "with a client certificate");
}

#[test]
fn cluster_broker_passes_bytes_across_nodes_unchanged() {
    let Some(nats) = Nats::start("cluster_broker") else {
        return;
    };
    let n1 = node_with(&nats, "broker", &["--room", "raw"]);
    let n2 = node_with(&nats, "broker", &["--room", "raw"]);
    let mut a = Client::connect(n1.addr);
    let mut b = Client::connect(n2.addr);
    bytes_cross(&mut a, &mut b);
}

/// Broker clients `a` and `b` on two nodes: once the nodes found each other
/// (send until `b` gets something), a later block from `a` reaches `b`
/// intact.
pub(super) fn bytes_cross(a: &mut Client, b: &mut Client) {
    let deadline = Instant::now() + T;
    b.w.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut probe = [0u8; 64];
    loop {
        a.send(b"ping\n");
        if b.r.get_mut().read(&mut probe).is_ok_and(|n| n > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the broker nodes never linked");
    }
    std::thread::sleep(Duration::from_millis(500));
    while b.r.get_mut().read(&mut probe).is_ok_and(|n| n > 0) {}
    b.w.set_read_timeout(Some(T)).unwrap();
    let block: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    a.send(&block);
    let mut got = vec![0u8; block.len()];
    b.r.get_mut().read_exact(&mut got).unwrap();
    assert!(got == block, "the bytes changed on the way");
}

#[test]
fn cluster_a_node_stopped_by_sigterm_says_goodbye() {
    let Some(nats) = Nats::start("cluster_sigterm") else {
        return;
    };
    let n1 = node_with(&nats, "chat", &["--node-name", "n1"]);
    let mut n2 = node_with(&nats, "chat", &["--node-name", "n2", "--grace", "2s"]);
    let (mut a, _) = join(&n1);
    let (_b, bn) = join(&n2);
    await_room(&mut a, 2, 2);
    let stopped = Instant::now();
    assert_eq!(n2.sigterm(), 0);
    until(&mut a, &format!("*** {bn} left (node n2 shut down)"));
    // Told by the goodbye, not found out by the heartbeats.
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "{:?}",
        stopped.elapsed()
    );
}

#[test]
fn cluster_lines_dropped_for_a_full_queue_are_told_on_both_sides() {
    let Some(nats) = Nats::start("cluster_queue_full") else {
        return;
    };
    let n1 = node_with(
        &nats,
        "chat",
        &["--node-name", "n1", "--cluster-queue", "1KiB"],
    );
    let n2 = node_with(&nats, "chat", &["--node-name", "n2"]);
    let (mut a, _) = join(&n1);
    let (mut b, _) = join(&n2);
    await_room(&mut b, 2, 2);
    // One line bigger than the whole queue: it cannot leave n1.
    let long = format!("{}\n", "x".repeat(2000));
    a.send(long.as_bytes());
    until(&mut a, "*** the link to the other nodes is too slow");
    until(&mut b, "*** 1 line said on node n1 did not arrive here");
    // Short lines still go through.
    a.send(b"short\n");
    until(&mut b, "short");
}
