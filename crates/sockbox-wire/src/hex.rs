//! Hex digits: the one decoder the codecs (MAC addresses, pack's `H`/`h`)
//! and the command line's `--hex` inputs share, and [`TextDecoder`], which
//! turns hex text arriving in pieces into bytes.

/// The value of the hex digit `b` (`0-9`, `a-f`, `A-F`); `None` otherwise.
pub const fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `b` may separate hex digits in [`TextDecoder`] input: space,
/// tab, CR, LF, `:` and `-`.
pub const fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b':' | b'-')
}

/// Hex text that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A byte that is neither a hex digit nor a separator.
    #[error("byte {byte:#04x} at offset {offset} is not a hex digit")]
    NotHex {
        /// Offset of the byte in the text, from 0.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// The text ended after an odd number of digits.
    #[error("{digits} hex digits: an odd number, but every byte needs two")]
    OddDigits {
        /// How many digits the text held.
        digits: u64,
    },
}

/// Where a [`TextDecoder`] is in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only separators so far: a `0x` prefix may still come.
    Start,
    /// The first digit was `0`: an `x` next makes it a prefix.
    Zero,
    /// In the digits.
    Body,
}

/// Decodes hex text that arrives in pieces (`"de ad be ef"`, `"de:ad"`,
/// `"0xdeadbeef"`, a file of hex lines): pairs of digits become bytes;
/// separators ([`is_separator`]) between digits, even inside a pair, are
/// skipped; one `0x` or `0X` before the first digit is skipped.
///
/// ```
/// use sockbox_wire::hex::TextDecoder;
/// let mut d = TextDecoder::new();
/// let mut out = Vec::new();
/// d.push(b"0xde a", &mut out).unwrap();
/// d.push(b"d:0", &mut out).unwrap();
/// d.push(b"1\n", &mut out).unwrap();
/// d.finish().unwrap();
/// assert_eq!(out, [0xde, 0xad, 0x01]);
/// ```
#[derive(Debug, Clone)]
pub struct TextDecoder {
    /// Bytes of text seen.
    offset: u64,
    /// Digits decoded.
    digits: u64,
    /// The first digit of a pair whose second has not come yet.
    high: Option<u8>,
    state: State,
}

impl Default for TextDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TextDecoder {
    /// A decoder at the start of its text.
    pub const fn new() -> Self {
        Self {
            offset: 0,
            digits: 0,
            high: None,
            state: State::Start,
        }
    }

    /// Decode the next piece of text, appending whole bytes to `out`. After
    /// an error the decoder should not be used again.
    pub fn push(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), TextError> {
        out.reserve(text.len() / 2);
        for &b in text {
            let offset = self.offset;
            self.offset += 1;
            if self.state == State::Zero {
                // The `0` was a digit unless an `x` follows at once.
                self.state = State::Body;
                if matches!(b, b'x' | b'X') {
                    continue;
                }
                self.digit(0, out);
            }
            if is_separator(b) {
                continue;
            }
            let d = digit(b).ok_or(TextError::NotHex { offset, byte: b })?;
            if self.state == State::Start && d == 0 {
                self.state = State::Zero;
                continue;
            }
            self.state = State::Body;
            self.digit(d, out);
        }
        Ok(())
    }

    fn digit(&mut self, d: u8, out: &mut Vec<u8>) {
        self.digits += 1;
        match self.high.take() {
            Some(h) => out.push((h << 4) | d),
            None => self.high = Some(d),
        }
    }

    /// Digits decoded so far (a `0x` prefix is not counted).
    pub fn digits(&self) -> u64 {
        self.digits + u64::from(self.state == State::Zero)
    }

    /// The text has ended: a lone `0` is the digit 0, so with nothing else
    /// it is an odd count.
    pub fn finish(self) -> Result<(), TextError> {
        let digits = self.digits();
        if digits % 2 == 1 {
            return Err(TextError::OddDigits { digits });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_byte() {
        for b in 0..=u8::MAX {
            let want = char::from(b).to_digit(16).map(|d| d as u8);
            assert_eq!(super::digit(b), want, "{b:#04x}");
        }
    }

    fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, TextError> {
        let mut d = TextDecoder::new();
        let mut out = Vec::new();
        for p in pieces {
            d.push(p, &mut out)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn text_forms_and_pieces() {
        assert_eq!(decode(&[b"deadBEEF"]).unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(decode(&[b" 0x00 01:02-03\n"]).unwrap(), [0, 1, 2, 3]);
        assert_eq!(decode(&[b"0", b"x", b"ab"]).unwrap(), [0xab]);
        assert_eq!(decode(&[b"0", b"0"]).unwrap(), [0]);
        assert_eq!(decode(&[b"0", b" 1"]).unwrap(), [1]);
        assert!(decode(&[b"0 x1"]).is_err(), "a prefix is written 0x");
        assert_eq!(decode(&[b"a", b"b c", b"d"]).unwrap(), [0xab, 0xcd]);
        assert_eq!(decode(&[b"", b"  \n"]).unwrap(), []);
        // Only one prefix, only at the start.
        assert_eq!(
            decode(&[b"0x0x"]),
            Err(TextError::NotHex {
                offset: 3,
                byte: b'x'
            })
        );
        assert_eq!(
            decode(&[b"01 0x02"]),
            Err(TextError::NotHex {
                offset: 4,
                byte: b'x'
            })
        );
    }

    #[test]
    fn errors_name_the_offset_across_pieces() {
        assert_eq!(
            decode(&[b"4500", b"ab\x00"]),
            Err(TextError::NotHex { offset: 6, byte: 0 })
        );
        let e = decode(&[b"E\x00"]).unwrap_err();
        assert_eq!(e.to_string(), "byte 0x00 at offset 1 is not a hex digit");
        assert_eq!(decode(&[b"abc"]), Err(TextError::OddDigits { digits: 3 }));
        assert_eq!(decode(&[b"0"]), Err(TextError::OddDigits { digits: 1 }));
        assert_eq!(decode(&[b"0x"]).unwrap(), []);
    }
}
