//! Running a parsed [`Format`] forwards: values to bytes.

use super::format::{Count, Endian, Format, Item, Kind, StrKind};
use super::half::f64_to_f16;
use super::{Error, MAX_PACKED, Value};

/// The kind of value a code consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// An integer.
    Int,
    /// A float (integers are accepted too).
    Float,
    /// A boolean.
    Bool,
    /// A byte string.
    Bytes,
    /// A string of hex digits.
    Hex,
}

impl Want {
    /// What to call it in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Int => "an integer",
            Self::Float => "a number",
            Self::Bool => "a boolean (true/false/1/0)",
            Self::Bytes => "a string",
            Self::Hex => "a hex string",
        }
    }

    fn of(kind: Kind) -> Self {
        match kind {
            Kind::Int { .. } => Self::Int,
            Kind::Float { .. } => Self::Float,
            Kind::Bool => Self::Bool,
            Kind::Hex { .. } => Self::Hex,
            _ => Self::Bytes,
        }
    }
}

/// Where pack takes its values from: typed [`Value`]s or command-line text.
pub trait Source {
    /// Values not yet taken.
    fn remaining(&self) -> usize;
    /// Take the next value as the kind `item` wants; `None` when none is left.
    fn next(&mut self, item: &Item, want: Want) -> Option<Result<Value, Error>>;
}

impl Format {
    /// Pack values taken from `src`; every value must be used.
    pub fn pack_from<S: Source>(&self, src: &mut S) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut taken = 0usize;
        for item in &self.items {
            pack_item(item, src, &mut out, &mut taken)?;
        }
        if src.remaining() > 0 {
            return Err(Error::TooManyValues {
                used: taken,
                extra: src.remaining(),
            });
        }
        Ok(out)
    }
}

fn grow(item: &Item, out: &mut Vec<u8>, len: usize) -> Result<(), Error> {
    if len > MAX_PACKED {
        return Err(Error::TooLarge {
            code: item.code,
            pos: item.pos,
            size: len,
        });
    }
    out.resize(len, 0);
    Ok(())
}

fn take<S: Source>(item: &Item, src: &mut S, taken: &mut usize) -> Result<Value, Error> {
    let want = Want::of(item.kind);
    let v = src.next(item, want).ok_or(Error::MissingValue {
        code: item.code,
        pos: item.pos,
        index: *taken + 1,
    })??;
    *taken += 1;
    Ok(v)
}

fn pack_item<S: Source>(
    item: &Item,
    src: &mut S,
    out: &mut Vec<u8>,
    taken: &mut usize,
) -> Result<(), Error> {
    if item.align > 1 {
        let len = out.len().next_multiple_of(item.align);
        grow(item, out, len)?;
    }
    if item.kind.repeats() {
        let reps = item.count.fixed().unwrap_or_else(|| src.remaining());
        for _ in 0..reps {
            let v = take(item, src, taken)?;
            encode_one(item, &v, out)?;
        }
        return Ok(());
    }
    match item.kind {
        Kind::Str(kind) => {
            let v = take(item, src, taken)?;
            let bytes = v.as_bytes().ok_or_else(|| wrong_type(item, &v))?;
            pack_str(item, kind, bytes, out)
        }
        Kind::Hex { high_first } => {
            let v = take(item, src, taken)?;
            let Value::Hex(digits) = &v else {
                return Err(wrong_type(item, &v));
            };
            pack_hex(item, high_first, digits, out)
        }
        Kind::Pad => {
            let n = item.count.fixed().unwrap_or(0);
            grow(item, out, out.len().saturating_add(n))
        }
        Kind::Back => {
            let n = item.count.fixed().unwrap_or(0);
            let len = out.len().checked_sub(n).ok_or(Error::BackBeyondStart {
                code: item.code,
                pos: item.pos,
                back: n,
                at: out.len(),
            })?;
            out.truncate(len);
            Ok(())
        }
        Kind::Goto => {
            let n = item.count.fixed().unwrap_or(0);
            if n <= out.len() {
                out.truncate(n);
                Ok(())
            } else {
                grow(item, out, n)
            }
        }
        Kind::Int { .. } | Kind::Float { .. } | Kind::Bool => Ok(()),
    }
}

fn wrong_type(item: &Item, v: &Value) -> Error {
    Error::WrongType {
        code: item.code,
        pos: item.pos,
        expected: Want::of(item.kind).describe(),
        got: v.type_name(),
    }
}

fn out_of_range(item: &Item, value: String, range: String) -> Error {
    Error::OutOfRange {
        value,
        code: item.code,
        pos: item.pos,
        range,
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8], endian: Endian) {
    match endian {
        Endian::Little => out.extend(bytes.iter().rev()),
        Endian::Big => out.extend_from_slice(bytes),
    }
}

/// Encode one repeated element (integer, float, bool or char).
fn encode_one(item: &Item, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match item.kind {
        Kind::Int {
            size,
            signed,
            endian,
        } => {
            let &Value::Int(n) = v else {
                return Err(wrong_type(item, v));
            };
            let bits = 8 * size as u32;
            let (lo, hi) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if n < lo || n > hi {
                let what = if signed { "signed" } else { "unsigned" };
                return Err(out_of_range(
                    item,
                    n.to_string(),
                    format!("{what} {bits}-bit: {lo}..={hi}"),
                ));
            }
            let be = (n as u64).to_be_bytes();
            put(out, &be[8 - size..], endian);
        }
        Kind::Float { size, endian } => {
            let x = match *v {
                Value::Float(x) => x,
                Value::F32(x) => f64::from(x),
                Value::Int(n) => n as f64,
                _ => return Err(wrong_type(item, v)),
            };
            match size {
                2 => {
                    let h = f64_to_f16(x).ok_or_else(|| {
                        out_of_range(item, format!("{x:?}"), "half float: ±65504".into())
                    })?;
                    put(out, &h.to_be_bytes(), endian);
                }
                4 => {
                    let f = x as f32;
                    if f.is_infinite() && x.is_finite() {
                        return Err(out_of_range(
                            item,
                            format!("{x:?}"),
                            format!("32-bit float: ±{:?}", f32::MAX),
                        ));
                    }
                    put(out, &f.to_be_bytes(), endian);
                }
                _ => put(out, &x.to_be_bytes(), endian),
            }
        }
        Kind::Bool => match *v {
            Value::Bool(b) => out.push(u8::from(b)),
            Value::Int(n @ (0 | 1)) => out.push(n as u8),
            Value::Int(n) => {
                return Err(out_of_range(item, n.to_string(), "0 or 1".into()));
            }
            _ => return Err(wrong_type(item, v)),
        },
        Kind::Str(StrKind::Char) => {
            let b = v.as_bytes().ok_or_else(|| wrong_type(item, v))?;
            let [c] = b else {
                return Err(Error::StringLength {
                    code: item.code,
                    pos: item.pos,
                    len: b.len(),
                    room: "exactly 1 byte".into(),
                });
            };
            out.push(*c);
        }
        _ => {}
    }
    Ok(())
}

fn pack_str(item: &Item, kind: StrKind, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let too_long = |room: String| Error::StringLength {
        code: item.code,
        pos: item.pos,
        len: bytes.len(),
        room,
    };
    let start = out.len();
    let field = match (kind, item.count) {
        (StrKind::NulTerminated, Count::Star) => bytes.len() + 1,
        (_, Count::Star) => bytes.len(),
        (_, c) => c.fixed().unwrap_or(1),
    };
    let room = match kind {
        StrKind::NulTerminated => field.saturating_sub(1),
        StrKind::Pascal => field.saturating_sub(1).min(255),
        _ => field,
    };
    if bytes.len() > room {
        let what = match kind {
            StrKind::NulTerminated => format!("{room} bytes (a {field}-byte field with its NUL)"),
            StrKind::Pascal => format!("{room} bytes (after the length byte)"),
            _ => format!("{room} bytes"),
        };
        return Err(too_long(what));
    }
    grow(item, out, start.saturating_add(field))?;
    let body = &mut out[start..];
    if kind == StrKind::SpacePadded {
        body.fill(b' ');
    }
    if kind == StrKind::Pascal {
        if let Some((len, rest)) = body.split_first_mut() {
            *len = bytes.len() as u8;
            rest[..bytes.len()].copy_from_slice(bytes);
        }
    } else {
        body[..bytes.len()].copy_from_slice(bytes);
    }
    Ok(())
}

fn pack_hex(item: &Item, high_first: bool, digits: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let d = digits.as_bytes();
    if let Some(want) = item.count.fixed()
        && d.len() != want
    {
        return Err(Error::HexLength {
            code: item.code,
            pos: item.pos,
            want,
            got: d.len(),
        });
    }
    if d.len() % 2 == 1 {
        return Err(Error::OddHex {
            code: item.code,
            pos: item.pos,
            digits: d.len(),
        });
    }
    if out.len().saturating_add(d.len() / 2) > MAX_PACKED {
        return Err(Error::TooLarge {
            code: item.code,
            pos: item.pos,
            size: out.len().saturating_add(d.len() / 2),
        });
    }
    for (i, pair) in d.chunks_exact(2).enumerate() {
        let mut nib = [0u8; 2];
        for (k, &c) in pair.iter().enumerate() {
            nib[k] = crate::hex::digit(c).ok_or(Error::BadHex {
                code: item.code,
                pos: item.pos,
                ch: char::from(c),
                at: 2 * i + k,
            })?;
        }
        let (hi, lo) = if high_first {
            (nib[0], nib[1])
        } else {
            (nib[1], nib[0])
        };
        out.push((hi << 4) | lo);
    }
    Ok(())
}
