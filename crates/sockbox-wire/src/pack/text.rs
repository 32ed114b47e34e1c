//! Values as text: parsing command-line arguments into [`Value`]s by what
//! each code wants, and printing unpacked values back in a form the parser
//! reads again.

use std::fmt;

use super::codec::{Source, Want};
use super::format::Item;
use super::{Error, Value};

/// A [`Source`] over typed values.
#[derive(Debug)]
pub struct ValueSource<'a> {
    values: &'a [Value],
    next: usize,
}

impl<'a> ValueSource<'a> {
    /// Take values from `values`, in order.
    pub fn new(values: &'a [Value]) -> Self {
        Self { values, next: 0 }
    }
}

impl Source for ValueSource<'_> {
    fn remaining(&self) -> usize {
        self.values.len() - self.next
    }

    fn next(&mut self, _item: &Item, _want: Want) -> Option<Result<Value, Error>> {
        let v = self.values.get(self.next)?;
        self.next += 1;
        Some(Ok(v.clone()))
    }
}

/// A [`Source`] over text arguments, each parsed as its code wants.
#[derive(Debug)]
pub struct ArgSource<'a, A> {
    args: &'a [A],
    next: usize,
}

impl<'a, A: AsRef<[u8]>> ArgSource<'a, A> {
    /// Take arguments from `args`, in order.
    pub fn new(args: &'a [A]) -> Self {
        Self { args, next: 0 }
    }
}

impl<A: AsRef<[u8]>> Source for ArgSource<'_, A> {
    fn remaining(&self) -> usize {
        self.args.len() - self.next
    }

    fn next(&mut self, item: &Item, want: Want) -> Option<Result<Value, Error>> {
        let raw = self.args.get(self.next)?.as_ref();
        self.next += 1;
        let bad = || Error::BadText {
            text: String::from_utf8_lossy(raw).into_owned(),
            code: item.code,
            pos: item.pos,
            expected: want.describe(),
        };
        let text = std::str::from_utf8(raw).map(str::trim);
        Some(match want {
            Want::Bytes => Ok(Value::Bytes(raw.to_vec())),
            Want::Int => text
                .ok()
                .and_then(parse_int)
                .map(Value::Int)
                .ok_or_else(bad),
            Want::Float => text
                .ok()
                .and_then(|t| {
                    t.parse::<f64>()
                        .ok()
                        .or_else(|| parse_int(t).map(|n| n as f64))
                })
                .map(Value::Float)
                .ok_or_else(bad),
            Want::Bool => text
                .ok()
                .and_then(parse_bool)
                .map(Value::Bool)
                .ok_or_else(bad),
            Want::Hex => text.map(|t| Value::Hex(t.to_owned())).map_err(|_| bad()),
        })
    }
}

/// An integer in decimal, `0x` hex, `0o` octal or `0b` binary, with an
/// optional sign and `_` between digits: `-5`, `+7`, `0xff`, `1_000_000`.
pub fn parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = match body.get(..2) {
        Some("0x" | "0X") => (16, &body[2..]),
        Some("0o" | "0O") => (8, &body[2..]),
        Some("0b" | "0B") => (2, &body[2..]),
        _ => (10, body),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)?;
        v = v
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(d))?;
    }
    Some(if neg { -v } else { v })
}

/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Undo the escapes [`Value`]'s `Display` writes for byte strings:
/// `\n \r \t \0 \\ \' \"` and `\xHH`. Any other backslash is an error
/// that says where.
pub fn unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let esc = s.get(i + 1).copied();
        let byte = match esc {
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'0') => 0,
            Some(b @ (b'\\' | b'\'' | b'"')) => b,
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 4;
                        continue;
                    }
                    None => {
                        return Err(format!(
                            "escape at byte {i}: \\x needs two hex digits (\\x41 is 'A')"
                        ));
                    }
                }
            }
            Some(c) => {
                return Err(format!(
                    "escape at byte {i}: unknown escape \\{} (use \\\\ for a backslash)",
                    char::from(c).escape_default()
                ));
            }
            None => {
                return Err(format!(
                    "escape at byte {i}: a lone backslash ends the string"
                ));
            }
        };
        out.push(byte);
        i += 2;
    }
    Ok(out)
}

impl fmt::Display for Value {
    /// Integers in decimal, floats in their shortest round-trip form
    /// (`0.1`, `1e300`, `NaN`, `inf`), booleans as `true`/`false`, hex as
    /// is, and byte strings with `\n`, `\t`, `\xHH`… escapes so the output
    /// is one line of printable ASCII that [`unescape`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x:?}"),
            Self::F32(x) => write!(f, "{x:?}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Bytes(b) => write!(f, "{}", b.escape_ascii()),
            Self::Hex(h) => f.write_str(h),
        }
    }
}
