//! Fuzz the magic-packet codec: `Repr::parse` and `find` never panic, agree
//! with each other, and whatever they accept re-emits to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::magic::{Packet, Password, Repr, find, PACKET_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        if let Ok(r) = Repr::parse(&p) {
            // An exact packet is found at offset 0 with the same meaning.
            assert_eq!(r.to_bytes(), data);
            let f = find(data).expect("find agrees with parse");
            assert_eq!(f.offset, 0);
            assert_eq!(f.repr, r);
        }
    }
    if let Some(f) = find(data) {
        let window = &data[f.offset..f.offset + PACKET_LEN];
        let r = Repr::parse(&Packet::new_checked(window).expect("102 bytes")).expect("valid");
        assert_eq!(r.mac, f.repr.mac);
        assert_eq!(f.trailing, data.len() - f.offset - PACKET_LEN);
        // No earlier offset holds a magic packet.
        assert!(find(&data[..f.offset + PACKET_LEN - 1]).is_none());
        if let Some(pw) = f.repr.password {
            assert_eq!(pw.as_bytes(), &data[f.offset + PACKET_LEN..]);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(pw) = s.parse::<Password>() {
            assert_eq!(pw.to_string().parse::<Password>(), Ok(pw));
        }
    }
});
