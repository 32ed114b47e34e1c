//! Fuzz the ICMP codec: parsing any bytes as ICMPv4/ICMPv6 (and as a raw
//! IPv4 packet, and as an error's quoted packet) never panics, and whatever
//! parses re-emits to bytes that parse to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::icmp::{ChecksumMode, Family, Ipv4Packet, Packet, Quote, Repr};

fn round_trip(bytes: &[u8], family: Family) {
    let Ok(p) = Packet::new_checked(bytes) else {
        return;
    };
    let mode = match family {
        Family::V4 => ChecksumMode::V4,
        Family::V6 => ChecksumMode::V6 {
            src: std::net::Ipv6Addr::LOCALHOST,
            dst: std::net::Ipv6Addr::LOCALHOST,
        },
    };
    // Under cfg(fuzzing) the checksum check passes, so the parser is reached.
    let Ok(repr) = Repr::parse(&p, family, &mode) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]), family, &mode);
    let again = Packet::new_checked(&buf[..]).expect("emitted packet has a header");
    assert_eq!(Repr::parse(&again, family, &mode).ok(), Some(repr));
    match repr {
        Repr::DstUnreachable { quoted, .. }
        | Repr::TimeExceeded { quoted, .. }
        | Repr::PacketTooBig { quoted, .. }
        | Repr::ParamProblem { quoted, .. } => {
            let _ = Quote::parse(family, quoted);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data, Family::V4);
    round_trip(data, Family::V6);
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let _ = (ip.ttl(), ip.src_addr(), ip.total_len());
        round_trip(ip.payload(), Family::V4);
    }
    let _ = Quote::parse(Family::V4, data);
    let _ = Quote::parse(Family::V6, data);
});
