//! Ethernet (EUI-48) MAC addresses: parsing every common spelling, printing
//! one canonical form.
//!
//! Accepted forms, any letter case:
//!
//! | form | example |
//! |---|---|
//! | colon-separated, 6 groups of 1–2 digits | `00:11:22:aa:bb:cc`, `0:11:22:a:bb:cc` (macOS `arp`) |
//! | dash-separated, 6 groups of 1–2 digits | `00-11-22-AA-BB-CC` (Windows) |
//! | dotted, 3 groups of 4 digits | `0011.22aa.bbcc` (Cisco) |
//! | dash-separated, 2 groups of 6 digits | `001122-aabbcc` (HP switches) |
//! | bare, 12 digits | `001122aabbcc` |
//!
//! Anything else is a [`ParseError`] that quotes the input and says what is
//! wrong with it: a mixed separator, the wrong number of groups, a group of
//! the wrong length, or a character that is not a hex digit. Nothing is
//! trimmed: surrounding whitespace is an error too.
//!
//! [`MacAddr`] prints as lower-case colon form (`00:11:22:aa:bb:cc`), so
//! `s.parse::<MacAddr>()?.to_string()` normalises any accepted spelling.

use core::fmt;
use core::str::FromStr;

/// Longest input quoted back in an error message; longer inputs are cut.
const MAX_QUOTED: usize = 64;

/// A 48-bit Ethernet hardware address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Length of an address in bytes.
    pub const LEN: usize = 6;
    /// `ff:ff:ff:ff:ff:ff`, the Ethernet broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address from its six octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// The address from the first six bytes of `bytes`; `None` when shorter.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let b: [u8; 6] = bytes.get(..Self::LEN)?.try_into().ok()?;
        Some(Self(b))
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// The octets as a slice.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the group bit (least significant bit of the first octet) is
    /// set: multicast and broadcast addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for `00:00:00:00:00:00`.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// What is wrong with a string that is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Nothing was given.
    #[error("it is empty; expected six hex bytes like 00:11:22:aa:bb:cc")]
    Empty,
    /// A character that is neither a hex digit nor a separator.
    #[error("{ch:?} at position {pos} is not a hex digit (0-9, a-f) or a separator (':' '-' '.')")]
    BadChar {
        /// The offending character.
        ch: char,
        /// Its 1-based character position.
        pos: usize,
    },
    /// Two different separators in one address.
    #[error("it mixes separators {first:?} and {second:?}; use one kind throughout")]
    MixedSeparators {
        /// The first separator seen.
        first: char,
        /// The first different separator seen after it.
        second: char,
    },
    /// The wrong number of groups for the separator used.
    #[error("it has {found} groups separated by {sep:?}; expected {expected}{}",
        if *.sep == '-' { " (or 2 groups of 6 digits)" } else { "" })]
    GroupCount {
        /// The separator.
        sep: char,
        /// How many groups were found.
        found: usize,
        /// How many the form needs.
        expected: usize,
    },
    /// A group with too few or too many digits.
    #[error("group {group} ({text:?}) has {len} hex digits; expected {expected}")]
    GroupLength {
        /// 1-based group number.
        group: usize,
        /// The group's text.
        text: String,
        /// How many digits it has.
        len: usize,
        /// What the form allows, e.g. `"1 or 2"`.
        expected: &'static str,
    },
    /// A form without separators that does not have exactly 12 digits.
    #[error("it has {len} hex digits and no separators; expected 12 (6 bytes)")]
    DigitCount {
        /// How many digits it has.
        len: usize,
    },
}

/// A string that is not a MAC address: the input (quoted, cut to 64
/// characters) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: {kind}")]
pub struct ParseError {
    /// The rejected input (cut to its first 64 characters).
    pub input: String,
    /// What is wrong with it.
    pub kind: ParseErrorKind,
}

impl ParseError {
    fn new(input: &str, kind: ParseErrorKind) -> Self {
        let input = match input.char_indices().nth(MAX_QUOTED) {
            Some((cut, _)) => format!("{}…", &input[..cut]),
            None => input.to_owned(),
        };
        Self { input, kind }
    }
}

/// Parse a string of 1..=N hex digits (already checked) into an integer.
fn hex_value(digits: &str) -> u64 {
    digits
        .bytes()
        .filter_map(crate::hex::digit)
        .fold(0, |acc, d| (acc << 4) | u64::from(d))
}

fn parse(s: &str) -> Result<MacAddr, ParseErrorKind> {
    if s.is_empty() {
        return Err(ParseErrorKind::Empty);
    }
    // One pass: every character is a hex digit or a separator, and all
    // separators are the same.
    let mut sep: Option<char> = None;
    for (i, ch) in s.chars().enumerate() {
        match ch {
            ':' | '-' | '.' => match sep {
                None => sep = Some(ch),
                Some(first) if first != ch => {
                    return Err(ParseErrorKind::MixedSeparators { first, second: ch });
                }
                Some(_) => {}
            },
            c if c.is_ascii_hexdigit() => {}
            c => return Err(ParseErrorKind::BadChar { ch: c, pos: i + 1 }),
        }
    }
    let (groups, min, max, expected_len): (usize, usize, usize, &'static str) = match sep {
        None => {
            if s.len() != 12 {
                return Err(ParseErrorKind::DigitCount { len: s.len() });
            }
            let v = hex_value(s);
            let b = v.to_be_bytes();
            return Ok(MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]));
        }
        Some('.') => (3, 4, 4, "4"),
        // HP switches write two halves of six digits: 001122-aabbcc.
        Some('-') if s.split('-').count() == 2 => (2, 6, 6, "6"),
        Some(_) => (6, 1, 2, "1 or 2"),
    };
    let sep = sep.unwrap_or(':');
    let found = s.split(sep).count();
    if found != groups {
        return Err(ParseErrorKind::GroupCount {
            sep,
            found,
            expected: groups,
        });
    }
    let mut value: u64 = 0;
    for (i, g) in s.split(sep).enumerate() {
        if g.len() < min || g.len() > max {
            return Err(ParseErrorKind::GroupLength {
                group: i + 1,
                text: g.to_owned(),
                len: g.len(),
                expected: expected_len,
            });
        }
        let bits = match groups {
            2 => 24,
            3 => 16,
            _ => 8,
        };
        value = (value << bits) | hex_value(g);
    }
    let b = value.to_be_bytes();
    Ok(MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]))
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|kind| ParseError::new(s, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const M: MacAddr = MacAddr([0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);

    fn kind(s: &str) -> ParseErrorKind {
        s.parse::<MacAddr>().unwrap_err().kind
    }

    #[test]
    fn every_form_parses_to_the_same_address() {
        for s in [
            "00:11:22:aa:bb:cc",
            "00:11:22:AA:BB:CC",
            "00-11-22-aa-bb-cc",
            "00-11-22-Aa-bB-cC",
            "001122aabbcc",
            "001122AABBCC",
            "0011.22aa.bbcc",
            "0011.22AA.BBCC",
            "001122-aabbcc",
            "001122-AABBCC",
            "0:11:22:aa:bb:cc",
        ] {
            assert_eq!(s.parse::<MacAddr>(), Ok(M), "{s}");
        }
        assert_eq!(
            "0:1:2:a:b:c".parse::<MacAddr>(),
            Ok(MacAddr([0, 1, 2, 0xa, 0xb, 0xc]))
        );
    }

    #[test]
    fn display_is_lower_case_colon_form() {
        assert_eq!(M.to_string(), "00:11:22:aa:bb:cc");
        assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
    }

    #[test]
    fn mixed_separators_are_rejected() {
        assert_eq!(
            kind("00:11-22:aa:bb:cc"),
            ParseErrorKind::MixedSeparators {
                first: ':',
                second: '-'
            }
        );
        assert_eq!(
            kind("0011.22aa:bbcc"),
            ParseErrorKind::MixedSeparators {
                first: '.',
                second: ':'
            }
        );
    }

    #[test]
    fn wrong_group_counts_are_rejected() {
        assert_eq!(
            kind("00:11:22:aa:bb"),
            ParseErrorKind::GroupCount {
                sep: ':',
                found: 5,
                expected: 6
            }
        );
        assert_eq!(
            kind("00:11:22:aa:bb:cc:dd"),
            ParseErrorKind::GroupCount {
                sep: ':',
                found: 7,
                expected: 6
            }
        );
        assert_eq!(
            kind("0011.22aa"),
            ParseErrorKind::GroupCount {
                sep: '.',
                found: 2,
                expected: 3
            }
        );
        let e = kind("00-11-22");
        assert_eq!(
            e,
            ParseErrorKind::GroupCount {
                sep: '-',
                found: 3,
                expected: 6
            }
        );
        assert!(e.to_string().contains("or 2 groups of 6 digits"), "{e}");
    }

    #[test]
    fn hp_halves_need_six_digits_each() {
        assert_eq!(
            kind("00112-2aabbcc"),
            ParseErrorKind::GroupLength {
                group: 1,
                text: "00112".into(),
                len: 5,
                expected: "6"
            }
        );
        assert!(matches!(
            kind("001122-aabbc"),
            ParseErrorKind::GroupLength {
                group: 2,
                len: 5,
                ..
            }
        ));
    }

    #[test]
    fn wrong_group_lengths_are_rejected() {
        assert_eq!(
            kind("00:11:222:aa:bb:cc"),
            ParseErrorKind::GroupLength {
                group: 3,
                text: "222".into(),
                len: 3,
                expected: "1 or 2"
            }
        );
        assert_eq!(
            kind("00::22:aa:bb:cc"),
            ParseErrorKind::GroupLength {
                group: 2,
                text: String::new(),
                len: 0,
                expected: "1 or 2"
            }
        );
        assert_eq!(
            kind("011.22aa.bbcc"),
            ParseErrorKind::GroupLength {
                group: 1,
                text: "011".into(),
                len: 3,
                expected: "4"
            }
        );
        assert!(matches!(
            kind("00:11:22:aa:bb:"),
            ParseErrorKind::GroupLength {
                group: 6,
                len: 0,
                ..
            }
        ));
    }

    #[test]
    fn bad_hex_and_bad_lengths_are_rejected() {
        assert_eq!(
            kind("00:11:22:aa:bb:cg"),
            ParseErrorKind::BadChar { ch: 'g', pos: 17 }
        );
        assert_eq!(
            kind(" 00:11:22:aa:bb:cc"),
            ParseErrorKind::BadChar { ch: ' ', pos: 1 }
        );
        assert_eq!(kind("001122aabb"), ParseErrorKind::DigitCount { len: 10 });
        assert_eq!(
            kind("001122aabbccdd"),
            ParseErrorKind::DigitCount { len: 14 }
        );
        assert_eq!(kind(""), ParseErrorKind::Empty);
        assert!(matches!(
            kind("00:11:22:aa:bb:cé"),
            ParseErrorKind::BadChar { ch: 'é', .. }
        ));
    }

    #[test]
    fn error_message_names_the_input_and_the_problem() {
        let e = "00:11:22:aa:bb".parse::<MacAddr>().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid MAC address \"00:11:22:aa:bb\": it has 5 groups separated by ':'; expected 6"
        );
        let long = "a".repeat(500);
        let e = long.parse::<MacAddr>().unwrap_err();
        assert!(e.input.chars().count() <= MAX_QUOTED + 1, "{}", e.input);
    }

    #[test]
    fn flags() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!M.is_multicast());
        assert!(MacAddr::ZERO.is_zero());
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3]), None);
    }

    fn spell(m: MacAddr, form: u8, upper: bool) -> String {
        let b = m.0;
        let s = match form % 5 {
            0 => m.to_string(),
            1 => m.to_string().replace(':', "-"),
            2 => m.to_string().replace(':', ""),
            3 => format!(
                "{:02x}{:02x}{:02x}-{:02x}{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ),
            _ => format!(
                "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ),
        };
        if upper { s.to_uppercase() } else { s }
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(b in any::<[u8; 6]>()) {
            let m = MacAddr(b);
            prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        }

        #[test]
        fn every_spelling_round_trips(b in any::<[u8; 6]>(), form in 0u8..5, upper in any::<bool>()) {
            let m = MacAddr(b);
            prop_assert_eq!(spell(m, form, upper).parse::<MacAddr>(), Ok(m));
        }

        #[test]
        fn parse_never_panics_and_accepted_input_normalises(s in "\\PC{0,40}") {
            if let Ok(m) = s.parse::<MacAddr>() {
                prop_assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
            }
        }
    }
}
