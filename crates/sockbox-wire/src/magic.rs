//! Wake-on-LAN magic packets.
//!
//! ```text
//!  0                6                                       102      106/108
//! +----------------+---------------------------------------+--------+
//! | ff ff ff ff ff ff | target MAC, repeated 16 times (96 bytes) | SecureOn |
//! +----------------+---------------------------------------+--------+
//! ```
//!
//! The optional SecureOn password is 4 bytes (written as dotted decimal,
//! `192.168.1.1`) or 6 bytes (written like a MAC, `00:11:22:33:44:55`).
//!
//! The packet has no header of its own: it travels as a UDP payload (ports
//! 7 or 9 by convention), or as the payload of an Ethernet frame with
//! ethertype [`ETHERTYPE`] (0x0842). A NIC wakes when it sees the pattern
//! *anywhere* in a frame; [`find`] does the same scan.
//!
//! # Panics
//!
//! After [`Packet::new_checked`] (or [`Packet::check_len`] returned `Ok`), no
//! accessor panics. Setters panic only on a buffer shorter than
//! [`Repr::buffer_len`], which [`Repr::emit`] callers size beforehand.

use core::fmt;
use core::str::FromStr;

use crate::mac::MacAddr;

/// Ethertype of a raw Wake-on-LAN Ethernet frame (as etherwake sends).
pub const ETHERTYPE: u16 = 0x0842;
/// Length of the synchronisation stream.
pub const SYNC_LEN: usize = 6;
/// How many times the target MAC is repeated.
pub const MAC_REPEATS: usize = 16;
/// Length of a packet without a password: 6 + 16 × 6.
pub const PACKET_LEN: usize = SYNC_LEN + MAC_REPEATS * MacAddr::LEN;
/// The conventional UDP port (discard).
pub const DEFAULT_PORT: u16 = 9;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const SYNC: Range<usize> = 0..super::SYNC_LEN;
    pub const MACS: Range<usize> = super::SYNC_LEN..super::PACKET_LEN;
    pub const PASSWORD: RangeFrom<usize> = super::PACKET_LEN..;
}

/// Why a buffer is not a magic packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the 102 bytes a magic packet needs.
    #[error("{len} bytes is too short for a magic packet (needs {PACKET_LEN})")]
    Truncated {
        /// The buffer length.
        len: usize,
    },
    /// The first six bytes are not all 0xff.
    #[error("the packet does not start with six 0xff bytes")]
    BadSync,
    /// A repetition of the MAC differs from the first one.
    #[error("copy {index} of the MAC differs from the first (a magic packet repeats it 16 times)")]
    MacMismatch {
        /// 0-based index of the first differing copy.
        index: usize,
    },
    /// Bytes after the 16 MACs that are neither a 4- nor a 6-byte password.
    #[error("{len} bytes follow the MACs; a SecureOn password is 4 or 6 bytes")]
    BadPasswordLength {
        /// How many bytes follow.
        len: usize,
    },
}

/// A SecureOn password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Password {
    /// Four bytes, written in dotted decimal (`192.168.1.1`).
    Four([u8; 4]),
    /// Six bytes, written like a MAC (`00:11:22:33:44:55`).
    Six([u8; 6]),
}

impl Password {
    /// The password from raw bytes; `None` unless there are 4 or 6.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        match b.len() {
            4 => b.try_into().ok().map(Self::Four),
            6 => b.try_into().ok().map(Self::Six),
            _ => None,
        }
    }

    /// The password bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Four(b) => b,
            Self::Six(b) => b,
        }
    }

    /// 4 or 6.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Always false (a password has 4 or 6 bytes); here for clippy.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Four(b) => write!(f, "{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
            Self::Six(b) => MacAddr(*b).fmt(f),
        }
    }
}

/// A string that is not a SecureOn password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid SecureOn password {input:?}: {reason}; use 4 bytes in dotted decimal \
     (192.168.1.1) or 6 bytes in hex (00:11:22:33:44:55 or 001122334455)"
)]
pub struct PasswordError {
    /// The rejected input (cut to 64 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Password {
    type Err = PasswordError;

    /// `a.b.c.d` (four decimal bytes) or a 6-byte value in any spelling
    /// [`MacAddr`] accepts. A 4-byte value may also be 8 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| PasswordError {
            input: s.chars().take(64).collect(),
            reason,
        };
        let dots = s.matches('.').count();
        if dots == 3 {
            let mut out = [0u8; 4];
            for (i, part) in s.split('.').enumerate() {
                let ok =
                    !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
                out[i] = match part.parse::<u16>() {
                    Ok(v) if ok && v <= 255 => v as u8,
                    _ => {
                        return Err(err(format!(
                            "part {} ({part:?}) is not a decimal number 0-255",
                            i + 1
                        )));
                    }
                };
            }
            return Ok(Self::Four(out));
        }
        if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            let v = u32::from_str_radix(s, 16).map_err(|e| err(e.to_string()))?;
            return Ok(Self::Four(v.to_be_bytes()));
        }
        match s.parse::<MacAddr>() {
            Ok(m) => Ok(Self::Six(m.0)),
            Err(e) => Err(err(e.kind.to_string())),
        }
    }
}

/// A read/write view of a magic packet in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap a buffer, checking it is long enough for every accessor.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` when the buffer holds at least the sync stream and 16 MACs.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < PACKET_LEN {
            Err(Error::Truncated { len })
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The six synchronisation bytes.
    pub fn sync(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SYNC]
    }

    /// True when the sync stream is six 0xff bytes.
    pub fn has_sync(&self) -> bool {
        self.sync().iter().all(|&b| b == 0xff)
    }

    /// Copy `index` (0..16) of the target MAC.
    pub fn mac_copy(&self, index: usize) -> MacAddr {
        let at = field::MACS.start + index * MacAddr::LEN;
        let b = &self.buffer.as_ref()[at..at + MacAddr::LEN];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The target MAC (its first copy).
    pub fn mac(&self) -> MacAddr {
        self.mac_copy(0)
    }

    /// Index of the first copy that differs from copy 0, if any.
    pub fn first_mismatch(&self) -> Option<usize> {
        let macs = &self.buffer.as_ref()[field::MACS];
        let first = &macs[..MacAddr::LEN];
        macs.chunks_exact(MacAddr::LEN).position(|c| c != first)
    }

    /// Whatever follows the 16 MACs (a password, or nothing).
    pub fn trailer(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PASSWORD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write the six 0xff sync bytes.
    pub fn fill_sync(&mut self) {
        self.buffer.as_mut()[field::SYNC].fill(0xff);
    }

    /// Write all 16 copies of the target MAC.
    pub fn set_mac(&mut self, mac: MacAddr) {
        for c in self.buffer.as_mut()[field::MACS].chunks_exact_mut(MacAddr::LEN) {
            c.copy_from_slice(&mac.0);
        }
    }

    /// Write `password` right after the MACs. Panics if the buffer is too short.
    pub fn set_password(&mut self, password: &[u8]) {
        let start = field::PASSWORD.start;
        self.buffer.as_mut()[start..start + password.len()].copy_from_slice(password);
    }
}

/// A magic packet's meaning: whom to wake, and the SecureOn password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The MAC of the machine to wake.
    pub mac: MacAddr,
    /// The SecureOn password, if any.
    pub password: Option<Password>,
}

impl Repr {
    /// A packet for `mac` with no password.
    pub const fn new(mac: MacAddr) -> Self {
        Self {
            mac,
            password: None,
        }
    }

    /// Parse an exact packet: sync, 16 equal MACs, then nothing or a 4- or
    /// 6-byte password. Use [`find`] to look for a packet inside a payload.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, Error> {
        packet.check_len()?;
        if !packet.has_sync() {
            return Err(Error::BadSync);
        }
        if let Some(index) = packet.first_mismatch() {
            return Err(Error::MacMismatch { index });
        }
        let trailer = packet.trailer();
        let password = match trailer.len() {
            0 => None,
            len => Some(Password::from_bytes(trailer).ok_or(Error::BadPasswordLength { len })?),
        };
        Ok(Self {
            mac: packet.mac(),
            password,
        })
    }

    /// Bytes needed to emit this packet: 102, 106 or 108.
    pub fn buffer_len(&self) -> usize {
        PACKET_LEN + self.password.map_or(0, |p| p.len())
    }

    /// Write the packet into `packet`, whose buffer holds at least
    /// [`Repr::buffer_len`] bytes. Bytes beyond that are left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.fill_sync();
        packet.set_mac(self.mac);
        if let Some(p) = &self.password {
            packet.set_password(p.as_bytes());
        }
    }

    /// The packet as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut v[..]));
        v
    }
}

/// A magic packet located inside a larger payload by [`find`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where the sync stream starts in the payload.
    pub offset: usize,
    /// The target MAC, and the password when exactly 4 or 6 bytes follow.
    pub repr: Repr,
    /// How many bytes follow the 16 MACs (including any password).
    pub trailing: usize,
}

/// Scan `payload` for a magic packet the way a NIC does: six 0xff bytes
/// followed by sixteen copies of one MAC, at any offset, with anything
/// before and after. Returns the first match.
///
/// A SecureOn password is reported when exactly 4 or 6 bytes follow the
/// MACs; with more trailing bytes the password (if any) cannot be told
/// from junk, so `repr.password` is `None` and `trailing` says how many
/// bytes there were.
pub fn find(payload: &[u8]) -> Option<Found> {
    if payload.len() < PACKET_LEN {
        return None;
    }
    let mut run = 0usize; // consecutive 0xff bytes ending at i
    for i in 0..payload.len() {
        if payload[i] == 0xff {
            run += 1;
        } else {
            run = 0;
            continue;
        }
        if run < SYNC_LEN {
            continue;
        }
        let start = i + 1 - SYNC_LEN;
        let window = payload.get(start..start + PACKET_LEN)?;
        let p = Packet::new_unchecked(window);
        if p.first_mismatch().is_none() {
            let trailer = &payload[start + PACKET_LEN..];
            return Some(Found {
                offset: start,
                repr: Repr {
                    mac: p.mac(),
                    password: Password::from_bytes(trailer),
                },
                trailing: trailer.len(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
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
        assert_eq!(p.mac_copy(15), MAC);
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
    fn password_text_forms() {
        assert_eq!("192.168.1.1".parse(), Ok(Password::Four([192, 168, 1, 1])));
        assert_eq!("c0a80101".parse(), Ok(Password::Four([192, 168, 1, 1])));
        assert_eq!(
            "00:11:22:33:44:55".parse(),
            Ok(Password::Six([0, 0x11, 0x22, 0x33, 0x44, 0x55]))
        );
        assert_eq!(
            "001122334455".parse(),
            Ok(Password::Six([0, 0x11, 0x22, 0x33, 0x44, 0x55]))
        );
        for bad in [
            "1.2.3.256",
            "1.2.3",
            "1.2.3.x",
            "1..2.3",
            "1.2.3.4.5",
            "00:11:22",
            "",
            "+1.2.3.4",
        ] {
            let e = bad.parse::<Password>().unwrap_err();
            assert!(e.to_string().contains("SecureOn"), "{bad}: {e}");
        }
        assert!(
            "1.2.3.256"
                .parse::<Password>()
                .unwrap_err()
                .reason
                .contains("part 4")
        );
        assert_eq!(Password::Four([1, 2, 3, 4]).to_string(), "1.2.3.4");
        assert_eq!(
            Password::Six([0xaa, 0, 0, 0, 0, 1]).to_string(),
            "aa:00:00:00:00:01"
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
        fn password_display_round_trips(p in password()) {
            if let Some(p) = p {
                prop_assert_eq!(p.to_string().parse::<Password>(), Ok(p));
            }
        }

        #[test]
        fn find_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Some(f) = find(&data) {
                let p = Packet::new_checked(&data[f.offset..f.offset + PACKET_LEN]).unwrap();
                prop_assert_eq!(Repr::parse(&p).map(|r| r.mac), Ok(f.repr.mac));
            }
        }
    }
}
