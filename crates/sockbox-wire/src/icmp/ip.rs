//! Just enough of the IPv4 and IPv6 headers to read ICMP: the IPv4 header a
//! raw IPv4 socket hands us in front of every ICMP message, and the headers
//! quoted inside ICMP error messages.
//!
//! # Panics
//!
//! After `new_checked` no accessor panics.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::Error;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IPv6 next-header number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const MIN_LEN: usize = 20;

    pub const V6_PAYLOAD_LEN: Range<usize> = 4..6;
    pub const V6_NEXT_HEADER: usize = 6;
    pub const V6_HOP_LIMIT: usize = 7;
    pub const V6_SRC: Range<usize> = 8..24;
    pub const V6_DST: Range<usize> = 24..40;
    pub const V6_LEN: usize = 40;
}

fn addr4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn addr6(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

/// A read-only view of an IPv4 header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap a buffer, checking the version and that the header (with its
    /// options) fits.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the version and header length against the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < field::MIN_LEN {
            return Err(Error::Truncated {
                len: b.len(),
                need: field::MIN_LEN,
            });
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed("IPv4 header with a version other than 4"));
        }
        let hl = self.header_len();
        if hl < field::MIN_LEN {
            return Err(Error::Malformed("IPv4 header length below 20 bytes"));
        }
        if b.len() < hl {
            return Err(Error::Truncated {
                len: b.len(),
                need: hl,
            });
        }
        Ok(())
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The total-length field.
    pub fn total_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TOTAL_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload (1 for ICMP).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr4(&self.buffer.as_ref()[field::SRC])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr4(&self.buffer.as_ref()[field::DST])
    }

    /// Everything after the header (as much as the buffer holds: quoted
    /// packets are often cut short, so the total-length field is not used).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// A read-only view of a fixed IPv6 header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap a buffer, checking the version and that the 40-byte header fits.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the version and the header length against the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < field::V6_LEN {
            return Err(Error::Truncated {
                len: b.len(),
                need: field::V6_LEN,
            });
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Malformed("IPv6 header with a version other than 6"));
        }
        Ok(())
    }

    /// The payload-length field.
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::V6_PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The next-header field (58 for ICMPv6 without extension headers).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::V6_NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::V6_HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr6(&self.buffer.as_ref()[field::V6_SRC])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr6(&self.buffer.as_ref()[field::V6_DST])
    }

    /// Everything after the fixed header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::V6_LEN..]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Captured on `lo`: IPv4 + ICMP echo request from `ping -c1 -s 8 127.0.0.1`.
    const PACKET: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x32, 0x72, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x65, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, 0x08, 0x00, 0xa4, 0x18, 0x47, 0xd6, 0x00, 0x01, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    #[test]
    fn ipv4_fields() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_ICMP);
        assert_eq!(p.src_addr(), Ipv4Addr::LOCALHOST);
        assert_eq!(p.dst_addr(), Ipv4Addr::LOCALHOST);
        assert_eq!(p.payload()[0], 8);
    }

    #[test]
    fn ipv4_rejects_bad_headers() {
        assert!(Ipv4Packet::new_checked(&PACKET[..19]).is_err());
        let mut v6 = PACKET;
        v6[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&v6[..]).is_err());
        let mut short_ihl = PACKET;
        short_ihl[0] = 0x44;
        assert!(Ipv4Packet::new_checked(&short_ihl[..]).is_err());
        let mut long_ihl = PACKET;
        long_ihl[0] = 0x4f; // 60-byte header in a 36-byte buffer
        assert!(Ipv4Packet::new_checked(&long_ihl[..]).is_err());
    }

    #[test]
    fn ipv6_fields() {
        let mut b = [0u8; 48];
        b[0] = 0x60;
        b[5] = 8;
        b[6] = PROTO_ICMPV6;
        b[7] = 64;
        b[23] = 1;
        b[39] = 1;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), 58);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), Ipv6Addr::LOCALHOST);
        assert_eq!(p.dst_addr(), Ipv6Addr::LOCALHOST);
        assert_eq!(p.payload().len(), 8);
        assert!(Ipv6Packet::new_checked(&b[..39]).is_err());
        b[0] = 0x40;
        assert!(Ipv6Packet::new_checked(&b[..]).is_err());
    }
}
