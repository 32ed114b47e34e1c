//! SecureOn passwords: 4 bytes (dotted decimal) or 6 bytes (MAC-like),
//! parsed from text and printed back the same way.

use core::fmt;
use core::str::FromStr;

use crate::mac::MacAddr;

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
        // Decimal parts and dots, but not four of them: meant as a.b.c.d
        // (the dotted MAC form 0011.2233.4455 has four hex digits a part).
        if dots > 0
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && s.split('.').all(|p| p.len() <= 3)
        {
            return Err(err(format!(
                "the dotted form has 4 decimal parts (a.b.c.d), not {}",
                dots + 1
            )));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        // Regression: "1.2.3" was read as a dotted MAC and blamed "hex digits".
        for (bad, parts) in [
            ("1.2.3", "not 3"),
            ("1.2.3.4.5", "not 5"),
            ("10.1", "not 2"),
        ] {
            let e = bad.parse::<Password>().unwrap_err().reason;
            assert!(
                e.contains("4 decimal parts") && e.contains(parts),
                "{bad}: {e}"
            );
        }
        assert_eq!(Password::Four([1, 2, 3, 4]).to_string(), "1.2.3.4");
        assert_eq!(
            Password::Six([0xaa, 0, 0, 0, 0, 1]).to_string(),
            "aa:00:00:00:00:01"
        );
    }

    fn password() -> impl Strategy<Value = Password> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(Password::Four),
            any::<[u8; 6]>().prop_map(Password::Six),
        ]
    }

    proptest! {
        #[test]
        fn password_display_round_trips(p in password()) {
            prop_assert_eq!(p.to_string().parse::<Password>(), Ok(p));
        }
    }
}
