//! Hex digits: the one decoder the codecs (MAC addresses, pack's `H`/`h`)
//! and the command line's `--hex` inputs share.

/// The value of the hex digit `b` (`0-9`, `a-f`, `A-F`); `None` otherwise.
pub const fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_byte() {
        for b in 0..=u8::MAX {
            let want = char::from(b).to_digit(16).map(|d| d as u8);
            assert_eq!(super::digit(b), want, "{b:#04x}");
        }
    }
}
