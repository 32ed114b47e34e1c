//! Tests of the magic-packet listener on loopback.

use std::sync::Mutex;

use sockbox_wire::magic::{Password, Repr};

use super::*;

/// A config on `udp` whose events land in the returned list.
fn recording(udp: &str) -> (ListenConfig, Arc<Mutex<Vec<Received>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut cfg = ListenConfig::new(0);
    cfg.udp = Some(udp.parse().unwrap());
    cfg.events = Arc::new(move |r: &Received| s.lock().unwrap().push(r.clone()));
    (cfg, seen)
}

async fn wait_for(seen: &Mutex<Vec<Received>>, n: usize) -> Vec<Received> {
    for _ in 0..250 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.lock().unwrap().clone()
}

fn magic(last: u8) -> Vec<u8> {
    Repr::new(MacAddr([0xaa, 0xbb, 0xcc, 0, 0, last])).to_bytes()
}

#[tokio::test]
async fn decodes_magic_and_reports_other_datagrams() {
    let (cfg, seen) = recording("127.0.0.1:0");
    let l = Listener::bind(cfg).unwrap();
    let addr = l.local_addr().unwrap();
    let sd = Shutdown::new();
    let server = tokio::spawn(l.run(sd.clone()));

    let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    out.send_to(b"not magic", addr).unwrap();
    let r = Repr {
        mac: MacAddr([0xaa, 0xbb, 0xcc, 0, 0, 1]),
        password: Some(Password::Four([1, 2, 3, 4])),
    };
    let mut junk_then_magic = b"junk".to_vec();
    junk_then_magic.extend_from_slice(&r.to_bytes());
    out.send_to(&junk_then_magic, addr).unwrap();

    let got = wait_for(&seen, 2).await;
    assert_eq!((got[0].len, got[0].found), (9, None));
    assert_eq!(got[0].source, Source::Udp(out.local_addr().unwrap()));
    let f = got[1].found.unwrap();
    assert_eq!((f.offset, f.repr), (4, r));
    sd.trigger();
    let report = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((report.magic, report.other), (1, 1));
}

/// Regression (`wake listen` ended with `accepted=0 refused=1` after four
/// magic packets and one other datagram): magic packets are accepted, the
/// other datagram is counted as other, nothing as refused.
#[tokio::test]
async fn statistics_count_magic_packets_as_accepted_and_nothing_as_refused() {
    let (mut cfg, seen) = recording("127.0.0.1:0");
    cfg.count = Some(4);
    let stats = cfg.server.stats.clone();
    let l = Listener::bind(cfg).unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(l.run(Shutdown::new()));
    let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    out.send_to(b"hello", addr).unwrap();
    for i in 0..4 {
        out.send_to(&magic(i), addr).unwrap();
    }
    let report = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops after the fourth magic packet")
        .unwrap()
        .unwrap();
    assert_eq!((report.magic, report.other, report.refused), (4, 1, 0));
    let s = stats.snapshot();
    assert_eq!((s.accepted, s.refused, s.active), (4, 0, 0));
    assert_eq!(s.bytes_in, 5 + 4 * 102);
    assert_eq!(seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn nothing_past_the_count_is_reported() {
    let (mut cfg, seen) = recording("127.0.0.1:0");
    cfg.count = Some(1);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    // Both are queued before the listener runs: only the first counts.
    let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    out.send_to(&magic(1), addr).unwrap();
    out.send_to(&magic(2), addr).unwrap();
    let l = Listener::from_socket(sock, cfg).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), l.run(Shutdown::new()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.magic, 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].found.unwrap().repr.mac.0[5], 1);
}

#[tokio::test]
async fn dual_stack_default_sees_ipv4_as_ipv4() {
    let (mut cfg, seen) = recording("127.0.0.1:0");
    cfg.udp = ListenConfig::new(0).udp;
    let l = Listener::bind(cfg).unwrap();
    let port = l.local_addr().unwrap().port();
    let sd = Shutdown::new();
    let server = tokio::spawn(l.run(sd.clone()));
    let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    out.send_to(b"x", ("127.0.0.1", port)).unwrap();
    let got = wait_for(&seen, 1).await;
    assert_eq!(
        got[0].source.to_string(),
        out.local_addr().unwrap().to_string()
    );
    sd.trigger();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_raw_interface_is_named() {
    let mut cfg = ListenConfig::new(0);
    cfg.udp = None;
    cfg.raw = vec!["sbxnope0".into()];
    let e = Listener::bind(cfg).unwrap_err();
    assert!(e.to_string().contains("sbxnope0") && e.is_usage(), "{e}");
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error_naming_the_address() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = ListenConfig::new(0);
    cfg.udp = Some(taken.local_addr().unwrap());
    let e = Listener::bind(cfg).unwrap_err();
    assert!(matches!(&e, Error::Bind(b) if b.in_use()), "{e}");
    assert!(
        e.to_string()
            .contains(&taken.local_addr().unwrap().to_string()),
        "{e}"
    );
    assert!(!e.is_usage());
}
