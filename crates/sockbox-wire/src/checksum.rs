//! The RFC 1071 internet checksum, as plain functions (after smoltcp's
//! `ip::checksum`) plus an incremental [`Checksum`] accumulator.
//!
//! Vocabulary: a *sum* is the folded 16-bit one's-complement sum of some bytes
//! (what [`data`] returns); the *checksum* written into a header is the
//! complement of the sum over everything it covers (what [`checksum`] and
//! [`Checksum::finish`] return). A buffer whose embedded checksum is right sums
//! to `0xffff`, which is what [`verify`] checks.
//!
//! Odd lengths are handled as RFC 1071 says: the last byte is padded with a
//! zero on the right. The accumulator keeps track of the byte position across
//! slices, so a slice of odd length in the middle of a message (the bug in the
//! PHP code this project started from) gives the same result as one
//! contiguous buffer.
//!
//! The inner loop reads 32-bit words in native byte order into a 64-bit
//! accumulator; RFC 1071 §2(B) (byte-order independence) lets the result be
//! swapped once at the end instead of per word.
//!
//! # Panics
//!
//! Nothing here panics.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Fold a 64-bit one's-complement accumulator into 16 bits.
const fn fold(mut sum: u64) -> u16 {
    // Four folds are always enough to bring any u64 into 16 bits.
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The largest number of bytes summed into a `u64` before folding: 2^30 bytes
/// is 2^28 words of at most 2^32-1 each, far from overflowing 64 bits.
const BLOCK: usize = 1 << 30;

/// The native-order sum of `bytes`, not folded (each block folded to stay
/// exact). The result must be folded and byte-swapped on little-endian
/// machines to become the big-endian sum.
fn native_sum(bytes: &[u8]) -> u64 {
    let mut total: u64 = 0;
    for block in bytes.chunks(BLOCK) {
        let mut acc: u64 = 0;
        let mut words = block.chunks_exact(4);
        for w in &mut words {
            acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
        let rest = words.remainder();
        // The tail (0..=3 bytes) is laid out as it would be in memory, padded
        // with zeros on the right, then read in native order like the rest.
        let mut tail = [0u8; 4];
        tail[..rest.len()].copy_from_slice(rest);
        acc += u64::from(u32::from_ne_bytes(tail));
        total += u64::from(fold(acc));
    }
    total
}

/// The one's-complement sum of `data` as big-endian 16-bit words, folded to
/// 16 bits and *not* complemented. An odd trailing byte counts as the high
/// byte of a word whose low byte is zero.
pub fn data(data: &[u8]) -> u16 {
    u16::from_be(fold(native_sum(data)))
}

/// The one's-complement sum of several partial sums (from [`data`] or the
/// pseudo-header helpers). Each partial sum must start at an even offset of
/// the message; use [`Checksum`] when pieces have odd lengths.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The checksum to write into a header covering `bytes`: `!data(bytes)`.
pub fn checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// True when `bytes`, with its checksum field filled in, sums to `0xffff`,
/// i.e. the embedded checksum is correct.
pub fn verify(bytes: &[u8]) -> bool {
    data(bytes) == 0xffff
}

/// The sum of the IPv4 pseudo-header used by TCP, UDP and friends:
/// source, destination, zero, protocol, and the upper-layer length.
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let mut hdr = [0u8; 12];
    hdr[0..4].copy_from_slice(&src.octets());
    hdr[4..8].copy_from_slice(&dst.octets());
    hdr[9] = protocol;
    hdr[10..12].copy_from_slice(&length.to_be_bytes());
    data(&hdr)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// 32-bit upper-layer length, three zero bytes and the next header value.
/// ICMPv6 checksums (next header 58) always include it.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut hdr = [0u8; 40];
    hdr[0..16].copy_from_slice(&src.octets());
    hdr[16..32].copy_from_slice(&dst.octets());
    hdr[32..36].copy_from_slice(&length.to_be_bytes());
    hdr[39] = next_header;
    data(&hdr)
}

/// An incremental internet checksum over any number of slices of any length.
///
/// ```
/// use sockbox_wire::checksum::{self, Checksum};
/// let whole = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
/// let mut c = Checksum::new();
/// c.add(&whole[..3]); // odd-length piece in the middle is fine
/// c.add(&whole[3..]);
/// assert_eq!(c.sum(), checksum::data(&whole));
/// assert_eq!(c.sum(), 0xddf2); // RFC 1071 §3 example
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Running sum of big-endian 16-bit words, not folded.
    sum: u64,
    /// True when an odd number of bytes has been added so far: the next byte
    /// is the low byte of a word.
    odd: bool,
}

impl Checksum {
    /// An empty accumulator (sum 0).
    pub const fn new() -> Self {
        Self { sum: 0, odd: false }
    }

    /// Add the next `bytes` of the message.
    pub fn add(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let part = data(bytes);
        // A slice that starts at an odd offset has every byte in the other
        // half of its word: its sum is the byte-swapped sum (RFC 1071 §2(B)).
        let part = if self.odd { part.swap_bytes() } else { part };
        self.sum += u64::from(part);
        if self.sum > u64::from(u32::MAX) {
            self.sum = u64::from(fold(self.sum));
        }
        self.odd ^= bytes.len() % 2 == 1;
    }

    /// Add a 16-bit sum (for example a pseudo-header sum). Must be called at
    /// an even byte position; at an odd position it is added swapped so the
    /// result stays correct.
    pub fn add_sum(&mut self, sum: u16) {
        let sum = if self.odd { sum.swap_bytes() } else { sum };
        self.sum += u64::from(sum);
    }

    /// The folded one's-complement sum so far (not complemented).
    pub const fn sum(&self) -> u16 {
        fold(self.sum)
    }

    /// The checksum to write into a header: the complemented sum.
    pub const fn finish(&self) -> u16 {
        !self.sum()
    }

    /// True when everything added sums to `0xffff` (embedded checksum right).
    pub const fn verify(&self) -> bool {
        self.sum() == 0xffff
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious byte-at-a-time implementation, as a reference.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// RFC 1071 §3, "Numerical Examples": the sum of these bytes is ddf2.
    #[test]
    fn rfc1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(checksum(&bytes), 0x220d);
    }

    /// An IPv4 header as captured on the wire (checksum field b861).
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn real_ipv4_header() {
        assert!(verify(&IPV4_HEADER));
        let mut h = IPV4_HEADER;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x62;
        assert!(!verify(&h));
    }

    /// An IPv4 packet carrying an ICMP echo request, captured on `lo` from
    /// iputils `ping -c1 -s 8 127.0.0.1` (ident 0x47d6, seq 1, data 00..07).
    const IPV4_ICMP_ECHO: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x32, 0x72, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x65, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, 0x08, 0x00, 0xa4, 0x18, 0x47, 0xd6, 0x00, 0x01, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];
    const ICMP_ECHO: &[u8] = IPV4_ICMP_ECHO.split_at(20).1;

    #[test]
    fn real_icmp_echo() {
        assert!(verify(&IPV4_ICMP_ECHO[..20]));
        assert!(verify(ICMP_ECHO));
        let mut p = ICMP_ECHO.to_vec();
        p[2] = 0;
        p[3] = 0;
        assert_eq!(checksum(&p), 0xa418);
    }

    #[test]
    fn odd_length_pads_on_the_right() {
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x12, 0x34, 0xab]), 0x12_34 + 0xab_00);
        assert_eq!(data(&[]), 0);
    }

    /// Regression (the PHP `ip_checksum` in the seed notes): an odd trailing
    /// byte was unpacked with `C` and added as the *low* byte of a word.
    /// RFC 1071 pads on the right: it is the high byte.
    #[test]
    fn php_odd_trailing_byte_is_the_high_byte() {
        assert_eq!(checksum(&[0x01]), 0xfeff); // the PHP code gave 0xfffe
        let echo = b"\x08\x00\x00\x00\x00\x00\x00\x00abc";
        assert_eq!(data(echo), 0x0800 + 0x6162 + 0x6300);
    }

    /// Regression (same PHP code): `if ($data[$i+1])` treats the byte "0"
    /// (0x30) as false and drops into the odd-byte branch mid-message.
    #[test]
    fn php_ascii_zero_byte_is_not_skipped() {
        assert_eq!(data(b"a0a0"), 0x6130 + 0x6130);
        assert_eq!(data(b"a0"), reference(b"a0"));
    }

    #[test]
    fn odd_slice_in_the_middle() {
        let msg: Vec<u8> = (0u8..=200).collect();
        let mut c = Checksum::new();
        c.add(&msg[..4]);
        c.add(&msg[4..7]); // odd
        c.add(&msg[7..8]); // odd again: back to even
        c.add(&msg[8..101]); // odd
        c.add(&msg[101..]);
        assert_eq!(c.sum(), data(&msg));
        assert_eq!(c.sum(), reference(&msg));
    }

    #[test]
    fn all_ones_and_carries() {
        let ff = vec![0xffu8; 4097];
        assert_eq!(data(&ff), reference(&ff));
        assert_eq!(data(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
    }

    #[test]
    fn pseudo_headers() {
        let src = Ipv4Addr::new(192, 168, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 0, 199);
        let sum = pseudo_header_v4(&src, &dst, 17, 0x5f);
        let manual = reference(&[192, 168, 0, 1, 192, 168, 0, 199, 0, 17, 0, 0x5f]);
        assert_eq!(sum, manual);
        let s6 = Ipv6Addr::LOCALHOST;
        let sum6 = pseudo_header_v6(&s6, &s6, 58, 64);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&[0, 0, 0, 64, 0, 0, 0, 58]);
        assert_eq!(sum6, reference(&bytes));
    }

    #[test]
    fn combine_matches_contiguous() {
        let a = [1u8, 2, 3, 4];
        let b = [0xffu8, 0xfe, 0x10, 0x20, 0x30, 0x40];
        let mut ab = a.to_vec();
        ab.extend_from_slice(&b);
        assert_eq!(combine(&[data(&a), data(&b)]), data(&ab));
        assert_eq!(combine(&[]), 0);
    }

    proptest! {
        #[test]
        fn fast_equals_reference(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(data(&bytes), reference(&bytes));
        }

        #[test]
        fn incremental_equals_one_shot(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut c = Checksum::new();
            let mut start = 0;
            for cut in cuts {
                c.add(&bytes[start..cut]);
                start = cut;
            }
            c.add(&bytes[start..]);
            prop_assert_eq!(c.sum(), data(&bytes));
        }

        #[test]
        fn emitted_checksum_verifies(
            bytes in proptest::collection::vec(any::<u8>(), 2..600),
            at in 0usize..300,
        ) {
            // Put the checksum at an even offset, as every protocol does.
            let mut bytes = bytes;
            let at = (at.min(bytes.len() - 2)) & !1;
            bytes[at] = 0;
            bytes[at + 1] = 0;
            let c = checksum(&bytes);
            bytes[at..at + 2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify(&bytes));
        }
    }
}
