//! High-level representation of ICMP/ICMPv6 messages ([`Repr`]) and of the
//! packet quoted inside an error message ([`Quote`]).

use core::net::IpAddr;

use super::{
    ChecksumMode, Error, Family, HEADER_LEN, Ipv4Packet, Ipv6Packet, Message, PROTO_ICMP,
    PROTO_ICMPV6, Packet,
};

/// An ICMP message this codec understands, for either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier (Linux datagram sockets replace it with their own).
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, echoed back by the peer.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, as sent in the request.
        data: &'a [u8],
    },
    /// Destination unreachable, with the start of the packet that caused it.
    DstUnreachable {
        /// Why (v4: 0 net, 1 host, 3 port, 4 fragmentation needed, 13
        /// prohibited…; v6: 0 no route, 1 prohibited, 3 address, 4 port).
        code: u8,
        /// The quoted packet (IP header and the start of its payload).
        quoted: &'a [u8],
    },
    /// Time exceeded (TTL / hop limit reached zero, or reassembly timed out).
    TimeExceeded {
        /// 0 in transit, 1 fragment reassembly.
        code: u8,
        /// The quoted packet.
        quoted: &'a [u8],
    },
    /// Packet too big (ICMPv6). Emitted in IPv4 as destination unreachable
    /// code 4, "fragmentation needed", with the MTU in its low 16 bits.
    PacketTooBig {
        /// The MTU of the next hop.
        mtu: u32,
        /// The quoted packet.
        quoted: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// The code.
        code: u8,
        /// Offset of the offending byte (a single byte in IPv4).
        pointer: u32,
        /// The quoted packet.
        quoted: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parse a message of `family`, checking the checksum as `mode` says.
    pub fn parse<T>(
        packet: &Packet<&'a T>,
        family: Family,
        mode: &ChecksumMode,
    ) -> Result<Self, Error>
    where
        T: AsRef<[u8]> + ?Sized,
    {
        packet.check_len()?;
        if !packet.verify_checksum(mode) {
            return Err(Error::Checksum);
        }
        let bytes: &'a [u8] = packet.buffer.as_ref();
        let payload = &bytes[HEADER_LEN..];
        let code = packet.msg_code();
        Ok(match packet.message(family) {
            Message::EchoRequest | Message::EchoReply if code != 0 => {
                return Err(Error::Malformed("echo message with a non-zero code"));
            }
            Message::EchoRequest => Self::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: payload,
            },
            Message::EchoReply => Self::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: payload,
            },
            Message::DstUnreachable => Self::DstUnreachable {
                code,
                quoted: payload,
            },
            Message::TimeExceeded => Self::TimeExceeded {
                code,
                quoted: payload,
            },
            Message::PacketTooBig => Self::PacketTooBig {
                mtu: packet.rest_of_header(),
                quoted: payload,
            },
            Message::ParamProblem => Self::ParamProblem {
                code,
                pointer: match family {
                    Family::V4 => packet.rest_of_header() >> 24,
                    Family::V6 => packet.rest_of_header(),
                },
                quoted: payload,
            },
            Message::Unknown(t) => return Err(Error::Unsupported(t)),
        })
    }

    /// Bytes needed to emit this message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Self::EchoRequest { data, .. } | Self::EchoReply { data, .. } => data.len(),
                Self::DstUnreachable { quoted, .. }
                | Self::TimeExceeded { quoted, .. }
                | Self::PacketTooBig { quoted, .. }
                | Self::ParamProblem { quoted, .. } => quoted.len(),
            }
    }

    /// The message kind.
    pub const fn message(&self) -> Message {
        match self {
            Self::EchoRequest { .. } => Message::EchoRequest,
            Self::EchoReply { .. } => Message::EchoReply,
            Self::DstUnreachable { .. } => Message::DstUnreachable,
            Self::TimeExceeded { .. } => Message::TimeExceeded,
            Self::PacketTooBig { .. } => Message::PacketTooBig,
            Self::ParamProblem { .. } => Message::ParamProblem,
        }
    }

    /// Write the message into `packet`, which must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes long (longer buffers get the
    /// extra bytes covered by the checksum), then fill the checksum.
    ///
    /// # Panics
    ///
    /// Panics when the buffer is shorter than `buffer_len()`.
    pub fn emit<T>(&self, packet: &mut Packet<&mut T>, family: Family, mode: &ChecksumMode)
    where
        T: AsRef<[u8]> + AsMut<[u8]> + ?Sized,
    {
        let (ty, code, rest, body): (u8, u8, u32, &[u8]) = match *self {
            Self::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Self::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let ty = self.message().to_type(family).unwrap_or(0);
                (ty, 0, (u32::from(ident) << 16) | u32::from(seq_no), data)
            }
            Self::DstUnreachable { code, quoted } | Self::TimeExceeded { code, quoted } => {
                let ty = self.message().to_type(family).unwrap_or(0);
                (ty, code, 0, quoted)
            }
            Self::PacketTooBig { mtu, quoted } => match family {
                Family::V6 => (2, 0, mtu, quoted),
                Family::V4 => (3, 4, mtu.min(0xffff), quoted),
            },
            Self::ParamProblem {
                code,
                pointer,
                quoted,
            } => match family {
                Family::V4 => (12, code, pointer.min(0xff) << 24, quoted),
                Family::V6 => (4, code, pointer, quoted),
            },
        };
        packet.set_msg_type(ty);
        packet.set_msg_code(code);
        packet.set_rest_of_header(rest);
        packet.payload_mut()[..body.len()].copy_from_slice(body);
        packet.fill_checksum(mode);
    }
}

/// What an error message quotes of the packet that caused it, when that
/// packet was an ICMP echo request: enough to tell whether it was ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<'a> {
    /// Source of the quoted packet (our address).
    pub src: IpAddr,
    /// Destination of the quoted packet (the target probed).
    pub dst: IpAddr,
    /// Its identifier field.
    pub ident: u16,
    /// Its sequence number.
    pub seq_no: u16,
    /// As much of its data as was quoted (RFC 792 guarantees none; Linux
    /// quotes up to 576 bytes in all, RFC 4443 up to the minimum MTU).
    pub data: &'a [u8],
}

impl<'a> Quote<'a> {
    /// Read the quoted IP header and ICMP echo request header. Fails when
    /// the quoted packet is not an ICMP echo request of `family` or is cut
    /// before the end of the echo header.
    pub fn parse(family: Family, quoted: &'a [u8]) -> Result<Self, Error> {
        let (src, dst, icmp): (IpAddr, IpAddr, &'a [u8]) = match family {
            Family::V4 => {
                let ip = Ipv4Packet::new_checked(quoted)?;
                if ip.protocol() != PROTO_ICMP {
                    return Err(Error::Malformed("quoted packet is not ICMP"));
                }
                let hl = ip.header_len();
                (ip.src_addr().into(), ip.dst_addr().into(), &quoted[hl..])
            }
            Family::V6 => {
                let ip = Ipv6Packet::new_checked(quoted)?;
                if ip.next_header() != PROTO_ICMPV6 {
                    return Err(Error::Malformed("quoted packet is not ICMPv6"));
                }
                (ip.src_addr().into(), ip.dst_addr().into(), &quoted[40..])
            }
        };
        let p = Packet::new_checked(icmp)?;
        if p.message(family) != Message::EchoRequest {
            return Err(Error::Malformed("quoted packet is not an echo request"));
        }
        Ok(Self {
            src,
            dst,
            ident: p.echo_ident(),
            seq_no: p.echo_seq_no(),
            data: &icmp[HEADER_LEN..],
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{V4_REPLY, V4_REQUEST, V6_REPLY, V6_REQUEST};
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const LO6: ChecksumMode = ChecksumMode::V6 {
        src: Ipv6Addr::LOCALHOST,
        dst: Ipv6Addr::LOCALHOST,
    };

    fn emit_vec(r: &Repr<'_>, family: Family, mode: &ChecksumMode) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), family, mode);
        buf
    }

    #[test]
    fn parse_captured_packets() {
        let data = &[0u8, 1, 2, 3, 4, 5, 6, 7][..];
        let p = Packet::new_checked(&V4_REQUEST[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, Family::V4, &ChecksumMode::V4).unwrap(),
            Repr::EchoRequest {
                ident: 0x47d6,
                seq_no: 1,
                data
            }
        );
        let p = Packet::new_checked(&V6_REPLY[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, Family::V6, &LO6).unwrap(),
            Repr::EchoReply {
                ident: 0x47d7,
                seq_no: 1,
                data
            }
        );
    }

    #[test]
    fn emit_reproduces_captures() {
        let data = &[0u8, 1, 2, 3, 4, 5, 6, 7][..];
        let req = Repr::EchoRequest {
            ident: 0x47d6,
            seq_no: 1,
            data,
        };
        assert_eq!(emit_vec(&req, Family::V4, &ChecksumMode::V4), V4_REQUEST);
        let rep = Repr::EchoReply {
            ident: 0x47d6,
            seq_no: 1,
            data,
        };
        assert_eq!(emit_vec(&rep, Family::V4, &ChecksumMode::V4), V4_REPLY);
        let req6 = Repr::EchoRequest {
            ident: 0x47d7,
            seq_no: 1,
            data,
        };
        assert_eq!(emit_vec(&req6, Family::V6, &LO6), V6_REQUEST);
        // Kernel mode leaves the checksum to the kernel.
        let k = emit_vec(&req6, Family::V6, &ChecksumMode::Kernel);
        assert_eq!(&k[2..4], &[0, 0]);
    }

    #[test]
    fn bad_checksum_is_an_error_unless_kernel_checked() {
        let mut b = V4_REPLY;
        b[9] ^= 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, Family::V4, &ChecksumMode::V4),
            Err(Error::Checksum)
        );
        assert!(Repr::parse(&p, Family::V4, &ChecksumMode::Kernel).is_ok());
    }

    #[test]
    fn unknown_types_and_bad_codes() {
        let mut b = V4_REPLY;
        b[0] = 13; // timestamp request
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(
            Repr::parse(&p, Family::V4, &ChecksumMode::Kernel),
            Err(Error::Unsupported(13))
        );
        let mut b = V4_REPLY;
        b[1] = 1;
        let p = Packet::new_unchecked(&b[..]);
        assert!(matches!(
            Repr::parse(&p, Family::V4, &ChecksumMode::Kernel),
            Err(Error::Malformed(_))
        ));
    }

    /// A router's time-exceeded quoting our IPv4 echo request.
    #[test]
    fn time_exceeded_quotes_our_probe() {
        let mut quoted = vec![
            0x45, 0x00, 0x00, 0x24, 0x32, 0x72, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00, 10, 0, 0, 1,
            192, 0, 2, 7,
        ];
        quoted.extend_from_slice(&V4_REQUEST);
        let te = Repr::TimeExceeded {
            code: 0,
            quoted: &quoted,
        };
        let wire = emit_vec(&te, Family::V4, &ChecksumMode::V4);
        assert_eq!(wire[0], 11);
        let p = Packet::new_checked(&wire[..]).unwrap();
        let Repr::TimeExceeded { code: 0, quoted: q } =
            Repr::parse(&p, Family::V4, &ChecksumMode::V4).unwrap()
        else {
            panic!("not a time exceeded")
        };
        let quote = Quote::parse(Family::V4, q).unwrap();
        assert_eq!(quote.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(quote.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!((quote.ident, quote.seq_no), (0x47d6, 1));
        assert_eq!(quote.data, &[0, 1, 2, 3, 4, 5, 6, 7]);
        // Cut inside the echo header: not enough to match.
        assert!(Quote::parse(Family::V4, &q[..24]).is_err());
        // A quoted UDP packet is not ours.
        let mut udp = quoted.clone();
        udp[9] = 17;
        assert!(Quote::parse(Family::V4, &udp).is_err());
    }

    #[test]
    fn v6_unreachable_quote() {
        let mut quoted = vec![0u8; 40];
        quoted[0] = 0x60;
        quoted[6] = PROTO_ICMPV6;
        quoted[7] = 64;
        quoted[23] = 1;
        quoted[24..40].copy_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&V6_REQUEST);
        let q = Quote::parse(Family::V6, &quoted).unwrap();
        assert_eq!(q.dst, "2001:db8::9".parse::<IpAddr>().unwrap());
        assert_eq!(q.seq_no, 1);
        assert!(Quote::parse(Family::V4, &quoted).is_err());
    }

    #[test]
    fn packet_too_big_in_v4_is_fragmentation_needed() {
        let r = Repr::PacketTooBig {
            mtu: 1400,
            quoted: &[],
        };
        let w = emit_vec(&r, Family::V4, &ChecksumMode::V4);
        assert_eq!((w[0], w[1]), (3, 4));
        assert_eq!(&w[6..8], &1400u16.to_be_bytes());
    }

    fn make_repr(
        family: Family,
        kind: u8,
        a: u16,
        b: u16,
        code: u8,
        word: u32,
        data: &[u8],
    ) -> Repr<'_> {
        match kind {
            0 => Repr::EchoRequest {
                ident: a,
                seq_no: b,
                data,
            },
            1 => Repr::EchoReply {
                ident: a,
                seq_no: b,
                data,
            },
            2 => Repr::DstUnreachable { code, quoted: data },
            3 => Repr::TimeExceeded { code, quoted: data },
            4 if family == Family::V6 => Repr::PacketTooBig {
                mtu: word,
                quoted: data,
            },
            _ => Repr::ParamProblem {
                code,
                pointer: if family == Family::V4 {
                    word >> 24
                } else {
                    word
                },
                quoted: data,
            },
        }
    }

    proptest! {
        #[test]
        fn round_trip_v4(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            kind in 0u8..6, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(), word in any::<u32>(),
        ) {
            let repr = make_repr(Family::V4, kind, a, b, code, word, &data);
            let wire = emit_vec(&repr, Family::V4, &ChecksumMode::V4);
            let p = Packet::new_checked(&wire[..]).unwrap();
            prop_assert!(p.verify_checksum(&ChecksumMode::V4));
            prop_assert_eq!(Repr::parse(&p, Family::V4, &ChecksumMode::V4).unwrap(), repr);
        }

        #[test]
        fn round_trip_v6(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            kind in 0u8..6, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(), word in any::<u32>(),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        ) {
            let repr = make_repr(Family::V6, kind, a, b, code, word, &data);
            let mode = ChecksumMode::V6 { src: Ipv6Addr::from(src), dst: Ipv6Addr::from(dst) };
            let wire = emit_vec(&repr, Family::V6, &mode);
            let p = Packet::new_checked(&wire[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p, Family::V6, &mode).unwrap(), repr);
            // Any flipped bit is caught by the checksum.
            let mut bad = wire.clone();
            let at = usize::from(a) % bad.len();
            bad[at] ^= 1 << (b % 8);
            let p = Packet::new_checked(&bad[..]).unwrap();
            prop_assert!(!p.verify_checksum(&mode));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            for family in [Family::V4, Family::V6] {
                if let Ok(p) = Packet::new_checked(&bytes[..]) {
                    let _ = Repr::parse(&p, family, &ChecksumMode::Kernel);
                }
                let _ = Quote::parse(family, &bytes);
            }
        }
    }
}
