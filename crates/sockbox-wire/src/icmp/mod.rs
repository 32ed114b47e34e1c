//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) echo request/reply, plus the error
//! messages that quote a probe (destination unreachable, time exceeded,
//! packet too big, parameter problem).
//!
//! Both versions share one layout — type, code, checksum, then four bytes
//! whose meaning depends on the type (ident + sequence for echo) — so one
//! [`Packet`] view serves both; the [`Family`] says how to read the type
//! numbers and how the checksum is computed:
//!
//! * ICMPv4: over the ICMP message only;
//! * ICMPv6: over the message *and* the IPv6 pseudo-header, so the addresses
//!   are needed ([`ChecksumMode::V6`]).
//!
//! Linux ICMP datagram sockets (`SOCK_DGRAM`/`IPPROTO_ICMP[V6]`) rewrite the
//! ident field with the socket's own id and compute the checksum themselves,
//! and the kernel computes and verifies ICMPv6 checksums on raw ICMPv6
//! sockets too. [`ChecksumMode::Kernel`] covers those cases: emit leaves the
//! field zero and parse skips verification. The ident is an ordinary field
//! here; callers that match replies should not rely on it (sockbox's ping
//! engine carries its probe id in the payload).
//!
//! # Panics
//!
//! After `new_checked` (or a successful `check_len`) no accessor panics.
//! `new_unchecked` views may panic on buffers shorter than 8 bytes.

mod ip;
mod repr;

use core::net::Ipv6Addr;

pub use ip::{Ipv4Packet, Ipv6Packet, PROTO_ICMP, PROTO_ICMPV6};
pub use repr::{Quote, Repr};

use crate::checksum;

/// Errors from parsing ICMP messages and the IP headers around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the message needs.
    #[error("truncated packet: {len} bytes, need at least {need}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The checksum does not match the contents.
    #[error("bad ICMP checksum")]
    Checksum,
    /// A message type this codec does not represent.
    #[error("unsupported ICMP message type {0}")]
    Unsupported(u8),
    /// A header field holds a value that cannot be right.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

/// Which ICMP: for IPv4 or for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// ICMP for IPv4 (RFC 792).
    V4,
    /// ICMPv6 (RFC 4443).
    V6,
}

/// How the checksum is produced (emit) and checked (parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// ICMPv4: the checksum covers the ICMP message.
    V4,
    /// ICMPv6: the checksum covers the pseudo-header with these addresses
    /// (source and destination of the packet as it travels) and the message.
    V6 {
        /// Source address of the packet.
        src: Ipv6Addr,
        /// Destination address of the packet.
        dst: Ipv6Addr,
    },
    /// The kernel computes it on send and has verified it on receive
    /// (datagram sockets, raw ICMPv6 sockets): emit writes zero, parse
    /// does not check.
    Kernel,
}

/// The message kinds this codec knows, independent of the family's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Echo request (v4 8, v6 128).
    EchoRequest,
    /// Echo reply (v4 0, v6 129).
    EchoReply,
    /// Destination unreachable (v4 3, v6 1).
    DstUnreachable,
    /// Time exceeded (v4 11, v6 3).
    TimeExceeded,
    /// Packet too big (v6 2 only).
    PacketTooBig,
    /// Parameter problem (v4 12, v6 4).
    ParamProblem,
    /// Any other type number.
    Unknown(u8),
}

impl Message {
    /// The kind of a type number in `family`.
    pub const fn from_type(family: Family, ty: u8) -> Self {
        match (family, ty) {
            (Family::V4, 8) | (Family::V6, 128) => Self::EchoRequest,
            (Family::V4, 0) | (Family::V6, 129) => Self::EchoReply,
            (Family::V4, 3) | (Family::V6, 1) => Self::DstUnreachable,
            (Family::V4, 11) | (Family::V6, 3) => Self::TimeExceeded,
            (Family::V6, 2) => Self::PacketTooBig,
            (Family::V4, 12) | (Family::V6, 4) => Self::ParamProblem,
            (_, t) => Self::Unknown(t),
        }
    }

    /// The type number in `family`, or `None` when the family has no such
    /// message (packet too big in IPv4).
    pub const fn to_type(self, family: Family) -> Option<u8> {
        Some(match (self, family) {
            (Self::EchoRequest, Family::V4) => 8,
            (Self::EchoRequest, Family::V6) => 128,
            (Self::EchoReply, Family::V4) => 0,
            (Self::EchoReply, Family::V6) => 129,
            (Self::DstUnreachable, Family::V4) | (Self::TimeExceeded, Family::V6) => 3,
            (Self::DstUnreachable, Family::V6) => 1,
            (Self::TimeExceeded, Family::V4) => 11,
            (Self::PacketTooBig, Family::V6) => 2,
            (Self::ParamProblem, Family::V4) => 12,
            (Self::ParamProblem, Family::V6) => 4,
            (Self::PacketTooBig, Family::V4) => return None,
            (Self::Unknown(t), _) => t,
        })
    }
}

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Rest-of-header word: MTU (packet too big), pointer (param problem).
    pub const REST: Range<usize> = 4..8;
    pub const HEADER_END: usize = 8;
}

/// Length of the ICMP header (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = field::HEADER_END;

/// A view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap a buffer, checking it holds at least the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check the buffer holds the 8-byte header.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_END {
            Err(Error::Truncated {
                len,
                need: field::HEADER_END,
            })
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The type number.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The kind of message, read as `family`.
    pub fn message(&self, family: Family) -> Message {
        Message::from_type(family, self.msg_type())
    }

    /// The code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// The echo identifier (rewritten by Linux on datagram sockets).
    pub fn echo_ident(&self) -> u16 {
        self.be16(field::ECHO_IDENT)
    }

    /// The echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        self.be16(field::ECHO_SEQNO)
    }

    /// The four rest-of-header bytes as one number (MTU of a packet-too-big,
    /// pointer of a parameter problem).
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Everything after the 8-byte header: echo data, or the quoted packet
    /// of an error message.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// True when the checksum is right under `mode` (always true for
    /// [`ChecksumMode::Kernel`], and under `cfg(fuzzing)` so fuzzers reach
    /// the parser).
    pub fn verify_checksum(&self, mode: &ChecksumMode) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        sum_under(mode, self.buffer.as_ref()).is_none_or(|sum| sum == 0xffff)
    }
}

/// The one's-complement sum of `bytes` as `mode` computes it (with the IPv6
/// pseudo-header for ICMPv6); `None` for [`ChecksumMode::Kernel`].
fn sum_under(mode: &ChecksumMode, bytes: &[u8]) -> Option<u16> {
    match mode {
        ChecksumMode::V4 => Some(checksum::data(bytes)),
        ChecksumMode::V6 { src, dst } => {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            let ph = checksum::pseudo_header_v6(src, dst, PROTO_ICMPV6, len);
            Some(checksum::combine(&[ph, checksum::data(bytes)]))
        }
        ChecksumMode::Kernel => None,
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the type number.
    pub fn set_msg_type(&mut self, ty: u8) {
        self.buffer.as_mut()[field::TYPE] = ty;
    }

    /// Set the code.
    pub fn set_msg_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Set the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_be16(field::ECHO_IDENT, v);
    }

    /// Set the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_be16(field::ECHO_SEQNO, v);
    }

    /// Set the four rest-of-header bytes.
    pub fn set_rest_of_header(&mut self, v: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v.to_be_bytes());
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }

    /// Compute and write the checksum under `mode` (zero for
    /// [`ChecksumMode::Kernel`]: the kernel fills it in).
    pub fn fill_checksum(&mut self, mode: &ChecksumMode) {
        self.set_checksum(0);
        let value = sum_under(mode, self.buffer.as_ref()).map_or(0, |sum| !sum);
        self.set_checksum(value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// ICMP echo request captured on `lo` (after its 20-byte IPv4 header),
    /// from iputils `ping -c1 -s 8 127.0.0.1`.
    pub(crate) const V4_REQUEST: [u8; 16] = [
        0x08, 0x00, 0xa4, 0x18, 0x47, 0xd6, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];
    /// The kernel's reply to it.
    pub(crate) const V4_REPLY: [u8; 16] = [
        0x00, 0x00, 0xac, 0x18, 0x47, 0xd6, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];
    /// ICMPv6 echo request ::1 -> ::1 from `ping -6 -c1 -s 8 ::1` (raw
    /// ICMPv6 socket capture: no IPv6 header).
    pub(crate) const V6_REQUEST: [u8; 16] = [
        0x80, 0x00, 0x2b, 0xcb, 0x47, 0xd7, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];
    /// The kernel's reply to it.
    pub(crate) const V6_REPLY: [u8; 16] = [
        0x81, 0x00, 0x2a, 0xcb, 0x47, 0xd7, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    const LO6: ChecksumMode = ChecksumMode::V6 {
        src: Ipv6Addr::LOCALHOST,
        dst: Ipv6Addr::LOCALHOST,
    };

    #[test]
    fn captured_v4_fields_and_checksums() {
        let p = Packet::new_checked(&V4_REQUEST[..]).unwrap();
        assert_eq!(p.message(Family::V4), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xa418);
        assert_eq!(p.echo_ident(), 0x47d6);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.payload(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(p.verify_checksum(&ChecksumMode::V4));
        let r = Packet::new_checked(&V4_REPLY[..]).unwrap();
        assert_eq!(r.message(Family::V4), Message::EchoReply);
        assert!(r.verify_checksum(&ChecksumMode::V4));
    }

    #[test]
    fn captured_v6_checksums_cover_the_pseudo_header() {
        for bytes in [V6_REQUEST, V6_REPLY] {
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert!(p.verify_checksum(&LO6));
            // Same bytes, other addresses: the pseudo-header makes it wrong.
            let other = ChecksumMode::V6 {
                src: "fe80::1".parse().unwrap(),
                dst: Ipv6Addr::LOCALHOST,
            };
            assert!(!p.verify_checksum(&other));
            // Summing without the pseudo-header (the ICMPv4 way) is wrong too.
            assert!(!p.verify_checksum(&ChecksumMode::V4));
        }
        assert_eq!(
            Packet::new_unchecked(&V6_REPLY[..]).message(Family::V6),
            Message::EchoReply
        );
    }

    #[test]
    fn fill_checksum_reproduces_the_kernels() {
        let mut b = V4_REQUEST;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_checksum(0xdead);
        p.fill_checksum(&ChecksumMode::V4);
        assert_eq!(b, V4_REQUEST);
        let mut b6 = V6_REPLY;
        let mut p6 = Packet::new_unchecked(&mut b6[..]);
        p6.fill_checksum(&LO6);
        assert_eq!(b6, V6_REPLY);
        let mut p6 = Packet::new_unchecked(&mut b6[..]);
        p6.fill_checksum(&ChecksumMode::Kernel);
        assert_eq!(p6.checksum(), 0);
    }

    #[test]
    fn short_buffers_are_rejected() {
        assert_eq!(
            Packet::new_checked(&V4_REQUEST[..7]),
            Err(Error::Truncated { len: 7, need: 8 })
        );
        assert!(Packet::new_checked(&V4_REQUEST[..8]).is_ok());
    }

    #[test]
    fn type_numbers_round_trip() {
        for family in [Family::V4, Family::V6] {
            for ty in 0..=255u8 {
                let m = Message::from_type(family, ty);
                assert_eq!(m.to_type(family), Some(ty));
            }
        }
        assert_eq!(Message::PacketTooBig.to_type(Family::V4), None);
    }
}
