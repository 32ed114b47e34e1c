//! The probe id carried at the start of every echo request's data: a
//! per-process random token and a 32-bit sequence number, followed by a
//! fixed byte pattern so a mangled reply is noticed.
//!
//! ```text
//! 0        8        12                     payload_len
//! | token  | seq    | 0c 0d 0e 0f 10 …     |
//! ```
//!
//! The ICMP header's own ident/sequence fields also carry the sequence
//! (high and low 16 bits) so an ICMP error that quotes only the 8-byte
//! header of our probe (old routers) can still be matched. Replies are never
//! matched on those fields alone: Linux datagram sockets rewrite the ident.

/// Bytes of payload the probe id needs; smaller payloads are refused.
pub const ID_LEN: usize = 12;

/// Write the id and the pattern into `payload` (at least [`ID_LEN`] bytes).
pub fn write(payload: &mut [u8], token: u64, seq: u32) {
    payload[..8].copy_from_slice(&token.to_be_bytes());
    payload[8..12].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in payload.iter_mut().enumerate().skip(ID_LEN) {
        *b = i as u8;
    }
}

/// Fill only the pattern part (once per buffer; [`write_id`] then updates
/// the id for each probe).
pub fn write_pattern(payload: &mut [u8]) {
    for (i, b) in payload.iter_mut().enumerate().skip(ID_LEN) {
        *b = i as u8;
    }
}

/// Byte `i` of the random-looking pattern of a run seeded `seed` (fping
/// -R: data that link compression cannot shrink). A hash of the position,
/// so the receiver checks it without keeping a copy.
pub fn random_byte(seed: u64, i: usize) -> u8 {
    let mut x = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as u8
}

/// Fill the pattern part: position bytes, or with `seed` random-looking
/// ones.
pub fn write_pattern_seeded(payload: &mut [u8], seed: Option<u64>) {
    for (i, b) in payload.iter_mut().enumerate().skip(ID_LEN) {
        *b = seed.map_or(i as u8, |s| random_byte(s, i));
    }
}

/// [`pattern_ok`] for a pattern written by [`write_pattern_seeded`].
pub fn pattern_ok_seeded(payload: &[u8], seed: Option<u64>) -> bool {
    payload
        .iter()
        .enumerate()
        .skip(ID_LEN)
        .all(|(i, &b)| b == seed.map_or(i as u8, |s| random_byte(s, i)))
}

/// Write just the id (the pattern is already there).
pub fn write_id(payload: &mut [u8], token: u64, seq: u32) {
    payload[..8].copy_from_slice(&token.to_be_bytes());
    payload[8..12].copy_from_slice(&seq.to_be_bytes());
}

/// The sequence number in `payload` when it carries `token`; `None` for
/// data that is not ours (too short, other token).
pub fn read(payload: &[u8], token: u64) -> Option<u32> {
    if payload.len() < ID_LEN || payload[..8] != token.to_be_bytes() {
        return None;
    }
    Some(u32::from_be_bytes([
        payload[8],
        payload[9],
        payload[10],
        payload[11],
    ]))
}

/// True when the bytes after the id are the pattern we sent (a shorter,
/// truncated echo is accepted; changed bytes are not).
pub fn pattern_ok(payload: &[u8]) -> bool {
    payload
        .iter()
        .enumerate()
        .skip(ID_LEN)
        .all(|(i, &b)| b == i as u8)
}

/// The ICMP ident and sequence fields for probe `seq`.
pub const fn header_fields(seq: u32) -> (u16, u16) {
    ((seq >> 16) as u16, seq as u16)
}

/// The probe `seq` from the ICMP ident and sequence fields.
pub const fn from_header_fields(ident: u16, seq_no: u16) -> u32 {
    ((ident as u32) << 16) | seq_no as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let mut p = [0u8; 56];
        write(&mut p, 0x0123_4567_89ab_cdef, 77);
        assert_eq!(read(&p, 0x0123_4567_89ab_cdef), Some(77));
        assert_eq!(read(&p, 1), None);
        assert_eq!(read(&p[..11], 0x0123_4567_89ab_cdef), None);
        assert!(pattern_ok(&p));
        assert!(pattern_ok(&p[..20]));
        p[40] ^= 1;
        assert!(!pattern_ok(&p));
        let mut r = [0u8; 64];
        write_pattern_seeded(&mut r, Some(42));
        assert!(pattern_ok_seeded(&r, Some(42)));
        assert!(!pattern_ok_seeded(&r, Some(43)));
        assert!(!pattern_ok_seeded(&r, None));
        // Not a constant fill.
        assert!(r[ID_LEN..].windows(2).any(|w| w[0] != w[1]));
        let (i, s) = header_fields(0xdead_beef);
        assert_eq!(from_header_fields(i, s), 0xdead_beef);
    }
}
