//! Unit tests of the magic-packet codec: byte fixtures, `find` in
//! payloads, and property round trips.
#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

const MAC: MacAddr = MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

/// A hand-written fixture: sync then 16 × 00:11:22:33:44:55.
fn fixture() -> Vec<u8> {
    let mut v = vec![0xff; 6];
    for _ in 0..16 {
        v.extend_from_slice(&[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    }
    v
}

#[test]
fn emit_matches_the_fixture() {
    let bytes = Repr::new(MAC).to_bytes();
    assert_eq!(bytes.len(), 102);
    assert_eq!(bytes, fixture());
    assert_eq!(
        &bytes[..8],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x11]
    );
    assert_eq!(&bytes[96..], &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
}

#[test]
fn parse_the_fixture() {
    let fx = fixture();
    let p = Packet::new_checked(&fx[..]).unwrap();
    assert!(p.has_sync());
    assert_eq!(p.mac(), MAC);
    assert_eq!(p.mac_copy(15), Some(MAC));
    // Regression: copy 16 and beyond read past the MACs (and panicked on
    // a 102-byte packet) although new_checked had accepted the buffer.
    assert_eq!(p.mac_copy(16), None);
    assert_eq!(p.mac_copy(usize::MAX), None);
    assert_eq!(Repr::parse(&p), Ok(Repr::new(MAC)));
}

#[test]
fn passwords_four_and_six_bytes() {
    let mut fx = fixture();
    fx.extend_from_slice(&[192, 168, 1, 1]);
    let r = Repr::parse(&Packet::new_checked(&fx[..]).unwrap()).unwrap();
    assert_eq!(r.password, Some(Password::Four([192, 168, 1, 1])));
    assert_eq!(r.buffer_len(), 106);
    assert_eq!(r.to_bytes(), fx);

    let mut fx = fixture();
    fx.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    let r = Repr::parse(&Packet::new_checked(&fx[..]).unwrap()).unwrap();
    assert_eq!(
        r.password,
        Some(Password::Six([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]))
    );
    assert_eq!(r.to_bytes(), fx);
}

#[test]
fn parse_errors() {
    assert_eq!(
        Packet::new_checked(&[0xffu8; 101][..]).unwrap_err(),
        Error::Truncated { len: 101 }
    );
    let mut fx = fixture();
    fx[2] = 0xfe;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&fx[..])),
        Err(Error::BadSync)
    );
    let mut fx = fixture();
    fx[6 + 6 * 7 + 3] ^= 1;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&fx[..])),
        Err(Error::MacMismatch { index: 7 })
    );
    let mut fx = fixture();
    fx.push(1);
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&fx[..])),
        Err(Error::BadPasswordLength { len: 1 })
    );
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&[0u8; 3][..])),
        Err(Error::Truncated { len: 3 })
    );
}

#[test]
fn find_after_junk_with_trailing_bytes() {
    let mut payload = b"hello world \xff\xff".to_vec();
    let at = payload.len();
    payload.extend_from_slice(&fixture());
    payload.extend_from_slice(b"some trailing bytes");
    let f = find(&payload).unwrap();
    assert_eq!(f.offset, at);
    assert_eq!(f.repr, Repr::new(MAC));
    assert_eq!(f.trailing, 19);
}

#[test]
fn find_reports_a_password_when_exactly_four_or_six_bytes_follow() {
    let mut payload = vec![0u8; 10];
    payload.extend_from_slice(&fixture());
    payload.extend_from_slice(&[10, 0, 0, 1]);
    let f = find(&payload).unwrap();
    assert_eq!(f.repr.password, Some(Password::Four([10, 0, 0, 1])));
    assert_eq!((f.offset, f.trailing), (10, 4));
}

#[test]
fn find_inside_an_ethernet_0842_frame() {
    // dst ff:ff:ff:ff:ff:ff, src 02:00:00:00:00:01, ethertype 0x0842,
    // then the magic packet: the broadcast destination must not be taken
    // for the sync stream.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x42]);
    frame.extend_from_slice(&fixture());
    let f = find(&frame).unwrap();
    assert_eq!(f.offset, 14);
    assert_eq!(f.repr.mac, MAC);
}

#[test]
fn find_with_extra_ff_before_sync_and_ff_leading_mac() {
    let mac = MacAddr([0xff, 0x11, 0x22, 0x33, 0x44, 0x55]);
    let mut payload = vec![0xff, 0xff, 0xff];
    payload.extend_from_slice(&Repr::new(mac).to_bytes());
    let f = find(&payload).unwrap();
    assert_eq!((f.offset, f.repr.mac), (3, mac));
}

#[test]
fn find_rejects_near_misses() {
    assert_eq!(find(b""), None);
    assert_eq!(find(&fixture()[..101]), None);
    let mut fx = fixture();
    fx[50] ^= 0x80;
    assert_eq!(find(&fx), None);
    assert_eq!(find(&[0u8; 500]), None);
}

fn password() -> impl Strategy<Value = Option<Password>> {
    prop_oneof![
        Just(None),
        any::<[u8; 4]>().prop_map(|b| Some(Password::Four(b))),
        any::<[u8; 6]>().prop_map(|b| Some(Password::Six(b))),
    ]
}

proptest! {
    #[test]
    fn emit_then_parse_round_trips(mac in any::<[u8; 6]>(), password in password()) {
        let r = Repr { mac: MacAddr(mac), password };
        let bytes = r.to_bytes();
        prop_assert_eq!(bytes.len(), r.buffer_len());
        prop_assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Ok(r));
    }

    #[test]
    fn find_locates_an_embedded_packet(
        mac in any::<[u8; 6]>(),
        password in password(),
        junk in proptest::collection::vec(0u8..0xff, 0..64),
    ) {
        // Junk without 0xff cannot start an earlier match.
        let r = Repr { mac: MacAddr(mac), password };
        let mut payload = junk.clone();
        payload.extend_from_slice(&r.to_bytes());
        let f = find(&payload).unwrap();
        prop_assert_eq!(f.offset, junk.len());
        prop_assert_eq!(f.repr, r);
    }

    #[test]
    fn find_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some(f) = find(&data) {
            let p = Packet::new_checked(&data[f.offset..f.offset + PACKET_LEN]).unwrap();
            prop_assert_eq!(Repr::parse(&p).map(|r| r.mac), Ok(f.repr.mac));
        }
    }
}
