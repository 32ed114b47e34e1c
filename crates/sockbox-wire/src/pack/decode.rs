//! Running a parsed [`Format`] backwards: bytes to [`Entry`] values.

use super::format::{Count, Endian, Format, Item, Kind, StrKind};
use super::half::f16_to_f64;
use super::{Entry, Error, Value};

impl Format {
    /// Unpack `data` from the start. Returns the values (names attached
    /// PHP-style) and how many bytes the format covered; bytes after that
    /// are left alone.
    pub fn unpack_prefix(&self, data: &[u8]) -> Result<(Vec<Entry>, usize), Error> {
        let mut entries = Vec::new();
        let mut at = 0usize;
        let mut end = 0usize;
        for item in &self.items {
            unpack_item(item, data, &mut at, &mut entries)?;
            end = end.max(at);
        }
        Ok((entries, at.max(end)))
    }
}

fn too_short(item: &Item, need: usize, at: usize, len: usize) -> Error {
    Error::TooShort {
        code: item.code,
        pos: item.pos,
        need,
        offset: at,
        have: len.saturating_sub(at),
    }
}

/// `len` bytes at `*at`, advancing.
fn field<'d>(item: &Item, data: &'d [u8], at: &mut usize, len: usize) -> Result<&'d [u8], Error> {
    let end = at
        .checked_add(len)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| too_short(item, len, *at, data.len()))?;
    let f = &data[*at..end];
    *at = end;
    Ok(f)
}

/// PHP names: `name` for a single value, `name1`, `name2`… for repeats.
fn entry_name(item: &Item, index: usize, single: bool) -> Option<String> {
    let n = item.name.as_ref()?;
    Some(if single {
        n.clone()
    } else {
        format!("{n}{}", index + 1)
    })
}

fn unpack_item(
    item: &Item,
    data: &[u8],
    at: &mut usize,
    entries: &mut Vec<Entry>,
) -> Result<(), Error> {
    if item.align > 1 {
        let aligned = at.next_multiple_of(item.align);
        if aligned > data.len() {
            return Err(too_short(item, aligned - *at, *at, data.len()));
        }
        *at = aligned;
    }
    let rest = data.len().saturating_sub(*at);
    if let Some(size) = item.kind.elem_size() {
        let reps = item.count.fixed().unwrap_or(rest / size);
        let single = matches!(item.count, Count::Implicit | Count::N(1));
        if reps.saturating_mul(size) > rest {
            return Err(too_short(item, reps.saturating_mul(size), *at, data.len()));
        }
        for i in 0..reps {
            let bytes = field(item, data, at, size)?;
            entries.push(Entry {
                name: entry_name(item, i, single),
                code: item.code,
                value: decode_one(item.kind, bytes),
            });
        }
        return Ok(());
    }
    let value = match item.kind {
        Kind::Str(kind) => {
            let len = match (kind, item.count) {
                (StrKind::NulTerminated, Count::Star) => data[*at..]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(rest, |p| p + 1),
                (_, Count::Star) => rest,
                (_, c) => c.fixed().unwrap_or(1),
            };
            let f = field(item, data, at, len)?;
            Value::Bytes(unpack_str(kind, f))
        }
        Kind::Hex { high_first } => {
            let digits = item.count.fixed().unwrap_or(rest.saturating_mul(2));
            let f = field(item, data, at, digits / 2)?;
            Value::Hex(unpack_hex(high_first, f))
        }
        Kind::Pad => {
            field(item, data, at, item.count.fixed().unwrap_or(0))?;
            return Ok(());
        }
        Kind::Back => {
            let n = item.count.fixed().unwrap_or(0);
            *at = at.checked_sub(n).ok_or(Error::BackBeyondStart {
                code: item.code,
                pos: item.pos,
                back: n,
                at: *at,
            })?;
            return Ok(());
        }
        Kind::Goto => {
            let n = item.count.fixed().unwrap_or(0);
            if n > data.len() {
                return Err(too_short(item, n, 0, data.len()));
            }
            *at = n;
            return Ok(());
        }
        Kind::Int { .. } | Kind::Float { .. } | Kind::Bool => return Ok(()),
    };
    entries.push(Entry {
        name: entry_name(item, 0, true),
        code: item.code,
        value,
    });
    Ok(())
}

fn unpack_str(kind: StrKind, f: &[u8]) -> Vec<u8> {
    match kind {
        StrKind::SpacePadded => {
            let end = f
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
                .map_or(0, |p| p + 1);
            f[..end].to_vec()
        }
        StrKind::NulTerminated => {
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            f[..end].to_vec()
        }
        StrKind::Pascal => match f.split_first() {
            Some((&len, rest)) => rest[..usize::from(len).min(rest.len())].to_vec(),
            None => Vec::new(),
        },
        StrKind::NulPadded | StrKind::Bytes | StrKind::Char => f.to_vec(),
    }
}

fn unpack_hex(high_first: bool, f: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(f.len() * 2);
    for &b in f {
        let (first, second) = if high_first {
            (b >> 4, b & 0xf)
        } else {
            (b & 0xf, b >> 4)
        };
        s.push(char::from(HEX[usize::from(first)]));
        s.push(char::from(HEX[usize::from(second)]));
    }
    s
}

/// Decode one fixed-size element; `bytes.len()` is the element size.
fn decode_one(kind: Kind, bytes: &[u8]) -> Value {
    let be = |endian: Endian| -> [u8; 8] {
        let mut b = [0u8; 8];
        let n = bytes.len();
        match endian {
            Endian::Big => b[8 - n..].copy_from_slice(bytes),
            Endian::Little => {
                for (dst, src) in b[8 - n..].iter_mut().zip(bytes.iter().rev()) {
                    *dst = *src;
                }
            }
        }
        b
    };
    match kind {
        Kind::Int {
            size,
            signed,
            endian,
        } => {
            let raw = u64::from_be_bytes(be(endian));
            let bits = 8 * size as u32;
            if signed && bits < 64 {
                let shift = 64 - bits;
                Value::Int(i128::from(((raw << shift) as i64) >> shift))
            } else if signed {
                Value::Int(i128::from(raw as i64))
            } else {
                Value::Int(i128::from(raw))
            }
        }
        Kind::Float { size, endian } => {
            let raw = u64::from_be_bytes(be(endian));
            match size {
                2 => Value::F32(f16_to_f64(raw as u16) as f32),
                4 => Value::F32(f32::from_bits(raw as u32)),
                _ => Value::Float(f64::from_bits(raw)),
            }
        }
        Kind::Bool => Value::Bool(bytes.iter().any(|&b| b != 0)),
        _ => Value::Bytes(bytes.to_vec()),
    }
}
