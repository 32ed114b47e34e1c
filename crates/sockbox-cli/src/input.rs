//! Reading user inputs: a file path, `-` for stdin, or a hex string.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::AsFd;

use sockbox_wire::hex::{TextDecoder, TextError};

use crate::exit::usage;

/// A source of bytes named on the command line.
pub enum Source {
    /// Standard input (`-` or nothing).
    Stdin,
    /// A file path.
    File(std::path::PathBuf),
}

impl Source {
    /// `None` or `-` means stdin, anything else a path.
    pub fn from_arg(arg: Option<&std::path::Path>) -> Self {
        match arg {
            None => Self::Stdin,
            Some(p) if p.as_os_str() == "-" => Self::Stdin,
            Some(p) => Self::File(p.to_path_buf()),
        }
    }

    /// Open it for reading; an unreadable file is a usage error that names it.
    pub fn open(&self) -> anyhow::Result<Box<dyn Read>> {
        match self {
            Self::Stdin => Ok(Box::new(io::stdin().lock())),
            Self::File(p) => match File::open(p) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) => Err(usage(format!("cannot read {}: {e}", p.display()))),
            },
        }
    }

    /// Open it unbuffered (standard input too: reads take only the bytes
    /// asked for), with the number of bytes left when that is known (a
    /// regular file, or stdin redirected from one).
    pub fn open_unbuffered(&self) -> anyhow::Result<(File, Option<u64>)> {
        let name = self.name();
        let cannot = |e: io::Error| usage(format!("cannot read {name}: {e}"));
        let mut f = match self {
            Self::Stdin => io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(cannot)?,
            Self::File(p) => File::open(p).map_err(cannot)?,
        };
        let meta = f.metadata().map_err(cannot)?;
        if meta.is_dir() {
            return Err(usage(format!("cannot read {name}: it is a directory")));
        }
        // Files that report no size (/proc, /sys) are read like pipes.
        let left = if meta.is_file() && meta.len() > 0 {
            f.stream_position()
                .ok()
                .map(|pos| meta.len().saturating_sub(pos))
        } else {
            None
        };
        Ok((f, left))
    }

    /// A name for messages.
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "standard input".to_owned(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// The longest duration a flag takes: a year. Longer is a typo, and would
/// overflow the clock arithmetic of timeouts and deadlines.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Value parser for every duration flag (timeouts, waits, delays): plain
/// seconds (`5`, `0.5`) or a humantime duration (`500ms`, `2m`, `1h30m`), at
/// most [`MAX_DURATION`].
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.parse::<f64>() {
        Ok(f) => std::time::Duration::try_from_secs_f64(f)
            .map_err(|_| format!("{s:?} is not a valid number of seconds"))?,
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{s:?}: {e} (examples: 5, 0.5, 500ms, 1m)"))?,
    };
    if d > MAX_DURATION {
        return Err(format!("{s:?} is too long: at most a year"));
    }
    Ok(d)
}

/// Parse a size (offsets, lengths, limits) as `hexdump -s` does: decimal, `0x` hex or `0` octal,
/// then an optional K/M/G/T/P/E suffix (`KiB` = 1024, `KB` = 1000).
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a size (examples: 4096, 0x1000, 4K, 1MiB, 1MB)");
    let (radix, body) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let end = body
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(body.len());
    let (num, suffix) = body.split_at(end);
    let value = u64::from_str_radix(num, radix).map_err(|_| bad())?;
    let mult: u64 = if suffix.is_empty() {
        1
    } else {
        let mut chars = suffix.chars();
        let exp = match chars.next().map(|c| c.to_ascii_uppercase()) {
            Some('K') => 1,
            Some('M') => 2,
            Some('G') => 3,
            Some('T') => 4,
            Some('P') => 5,
            Some('E') => 6,
            _ => return Err(bad()),
        };
        let base: u64 = match chars.as_str() {
            "" | "iB" | "ib" => 1024,
            "B" | "b" => 1000,
            _ => return Err(bad()),
        };
        base.pow(exp)
    };
    value
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Decode a hex string given on the command line. Spaces, colons, dashes and
/// a leading `0x` are allowed (`"de ad be ef"`, `"de:ad:be:ef"`,
/// `"0xdeadbeef"`). An error points at the offending character and shows
/// the string, or for a long one an excerpt around that character.
pub fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut d = TextDecoder::new();
    let mut out = Vec::new();
    d.push(s.as_bytes(), &mut out)
        .and_then(|()| d.finish())
        .map_err(|e| usage(hex_error(s, e)))?;
    Ok(out)
}

/// Strings up to this many characters are shown whole in messages.
const SHOW_WHOLE: usize = 64;
/// Characters shown on each side of the offending one in longer strings.
const EXCERPT_SIDE: usize = 16;

fn hex_error(s: &str, e: TextError) -> String {
    match e {
        TextError::NotHex { offset, .. } => {
            let at = usize::try_from(offset).unwrap_or(s.len()).min(s.len());
            let ch = s[at..].chars().next().unwrap_or('?');
            let (head, near) = describe_hex(s, at);
            format!("{head}: {ch:?} at offset {at} is not a hex digit{near}")
        }
        TextError::OddDigits { digits } => {
            let (head, near) = describe_hex(s, s.len());
            format!("{head} has an odd number of digits ({digits}){near}; every byte needs two")
        }
    }
}

/// `hex string "…"` when short; else `hex string of N bytes` and, to
/// append, an excerpt around offset `at`.
fn describe_hex(s: &str, at: usize) -> (String, String) {
    if s.chars().count() <= SHOW_WHOLE {
        return (format!("hex string {s:?}"), String::new());
    }
    let mut start = at.saturating_sub(EXCERPT_SIDE);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + EXCERPT_SIDE + 1).min(s.len());
    while !s.is_char_boundary(end) {
        end += 1;
    }
    let near = format!(
        " (near \"{}{}{}\")",
        if start > 0 { "…" } else { "" },
        s[start..end].escape_debug(),
        if end < s.len() { "…" } else { "" },
    );
    (format!("hex string of {} bytes", s.len()), near)
}

/// A byte of hex text read from a file or stdin, for messages: the
/// character when printable, else its value.
pub fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("{:?} (0x{b:02x})", char::from(b))
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_in_seconds_or_units_up_to_a_year() {
        use std::time::Duration;
        assert_eq!(super::duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(super::duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(super::duration("1m30s"), Ok(Duration::from_secs(90)));
        // Regression: huge values overflowed deadline arithmetic (a panic).
        assert!(
            super::duration("584000000000y")
                .unwrap_err()
                .contains("at most a year")
        );
        assert!(super::duration("1e300").is_err());
        assert!(super::duration("-1").is_err());
        assert!(super::duration("nan").is_err());
        assert!(super::duration("5x").unwrap_err().contains("examples"));
    }

    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("deadBEEF").unwrap(), vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("0x00 01:02").unwrap(), vec![0, 1, 2]);
        assert!(parse_hex("abc").unwrap_err().to_string().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().to_string().contains("'z'"));
        // Regression: a non-ASCII character was shown as its first byte ('Ã' for 'é').
        assert!(parse_hex("0é").unwrap_err().to_string().contains("'é'"));
    }

    /// Regression: a 120,000-character bad hex argument was echoed whole in
    /// the one-line error.
    #[test]
    fn long_bad_hex_is_cut_around_the_offending_character() {
        let mut s = "0a".repeat(30_000);
        s.insert(41_000, 'z');
        s.push_str(&"0b".repeat(30_000));
        let msg = parse_hex(&s).unwrap_err().to_string();
        assert!(msg.len() < 160, "{} bytes: {msg}", msg.len());
        assert!(msg.contains("'z' at offset 41000"), "{msg}");
        assert!(msg.contains("120001 bytes"), "{msg}");
        assert!(
            msg.contains("(near \"…0a0a0a0a0a0a0a0az0a0a0a0a0a0a0a0a…\")"),
            "{msg}"
        );
        // Odd counts too: the excerpt is the end.
        let msg = parse_hex(&"a".repeat(99_999)).unwrap_err().to_string();
        assert!(
            msg.len() < 160 && msg.contains("odd number of digits (99999)"),
            "{msg}"
        );
        // Multi-byte characters near the cut do not split.
        let s = format!("{}é{}", "ü".repeat(40), "0".repeat(100));
        let msg = parse_hex(&s).unwrap_err().to_string();
        assert!(
            msg.contains("'ü' at offset 0") && msg.contains("near \"üüü"),
            "{msg}"
        );
        let s = format!("{}é", "00".repeat(100));
        let msg = parse_hex(&s).unwrap_err().to_string();
        assert!(
            msg.contains("'é' at offset 200") && msg.ends_with("00é\")"),
            "{msg}"
        );
    }

    #[test]
    fn sizes_like_hexdump() {
        assert_eq!(size("16"), Ok(16));
        assert_eq!(size("010"), Ok(8));
        assert_eq!(size("0x10"), Ok(16));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("1k"), Ok(1024));
        assert_eq!(size("1KiB"), Ok(1024));
        assert_eq!(size("1KB"), Ok(1000));
        assert_eq!(size("2M"), Ok(2 << 20));
        assert!(size("1b").is_err());
        assert!(size("").is_err());
        assert!(size("x").is_err());
        assert!(size("-5").is_err());
        assert!(size("99999999999E").unwrap_err().contains("too large"));
    }
}
