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

use crate::mac::MacAddr;

mod password;

pub use password::{Password, PasswordError};

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

    /// Copy `index` of the target MAC; `None` unless `index` is below
    /// [`MAC_REPEATS`] (16).
    pub fn mac_copy(&self, index: usize) -> Option<MacAddr> {
        if index >= MAC_REPEATS {
            return None;
        }
        let at = field::MACS.start + index * MacAddr::LEN;
        MacAddr::from_bytes(self.buffer.as_ref().get(at..)?)
    }

    /// The target MAC (its first copy).
    pub fn mac(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::MACS];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
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
mod tests;
