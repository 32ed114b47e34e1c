//! Running a parsed [`Format`] backwards: bytes to [`Entry`] values.

use super::format::{Count, Endian, Format, Item, Kind, StrKind};
use super::half::f16_to_f64;
use super::{Entry, Error, Value};

/// What [`Format::unpack_partial`] found in the bytes it was given.
#[derive(Debug, Clone, PartialEq)]
pub enum Partial {
    /// The whole format: its values, and how many bytes it covered.
    Done(Vec<Entry>, usize),
    /// The bytes end before the format does. Call again with more.
    More(Need),
}

/// How much more input [`Format::unpack_partial`] wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// At least this many bytes in all (counting those already given).
    /// Fewer than that at the end of the input is [`Error::TooShort`].
    AtLeast(usize),
    /// A field that runs to the end of the input (`C*`, `a*`) or to a NUL
    /// not seen yet (`Z*`): give more, or say the input is complete.
    ToEnd,
}

impl Format {
    /// Unpack `data` from the start. Returns the values (names attached
    /// PHP-style) and how many bytes the format covered; bytes after that
    /// are left alone.
    ///
    /// Two values with the same name are an [`Error::DuplicateName`]: PHP
    /// would keep only the last one.
    pub fn unpack_prefix(&self, data: &[u8]) -> Result<(Vec<Entry>, usize), Error> {
        match self.unpack_partial(data, true)? {
            Partial::Done(entries, covered) => Ok((entries, covered)),
            Partial::More(_) => Err(incomplete(data.len())),
        }
    }

    /// Unpack from a stream that arrives in pieces. `data` is what has
    /// arrived so far, from the start of the record; `complete` says that
    /// nothing more will. Returns [`Partial::Done`] only when more bytes
    /// could not change the result (so the result is what
    /// [`Format::unpack_prefix`] gives for the whole input), else
    /// [`Partial::More`] with how much to wait for. With `complete` it never
    /// returns `More`: a short input is [`Error::TooShort`].
    pub fn unpack_partial(&self, data: &[u8], complete: bool) -> Result<Partial, Error> {
        match self.decode(data, complete) {
            Ok((entries, covered)) => Ok(Partial::Done(entries, covered)),
            Err(Halt::More(_)) if complete => Err(incomplete(data.len())),
            Err(Halt::More(need)) => Ok(Partial::More(need)),
            Err(Halt::Fail(e)) => Err(e),
        }
    }

    fn decode(&self, data: &[u8], complete: bool) -> Result<(Vec<Entry>, usize), Halt> {
        let mut r = Reader {
            data,
            at: 0,
            complete,
        };
        let mut entries = Vec::new();
        let mut end = 0usize;
        let named = self.items.iter().any(|i| i.name.is_some());
        let mut seen = std::collections::HashSet::new();
        for item in &self.items {
            let first = entries.len();
            unpack_item(item, &mut r, &mut entries)?;
            end = end.max(r.at);
            if named {
                check_names(item, &entries[first..], &mut seen)?;
            }
        }
        Ok((entries, r.at.max(end)))
    }
}

/// A wait for more input although the input was complete. Cannot happen
/// ([`Reader`] turns every wait into an error when complete); an error
/// rather than a panic all the same.
fn incomplete(have: usize) -> Error {
    Error::TooShort {
        code: ' ',
        pos: 0,
        need: have + 1,
        offset: 0,
        have,
    }
}

/// Why decoding stopped early.
enum Halt {
    /// For good.
    Fail(Error),
    /// Until more input arrives.
    More(Need),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Self::Fail(e)
    }
}

/// The input seen so far, and the position in it.
struct Reader<'d> {
    data: &'d [u8],
    at: usize,
    /// No more input will come: running out is an error, not a wait.
    complete: bool,
}

impl<'d> Reader<'d> {
    fn rest(&self) -> usize {
        self.data.len().saturating_sub(self.at)
    }

    /// `need` bytes at `at` are missing: an error, or a wait for them.
    fn short(&self, item: &Item, need: usize, at: usize) -> Halt {
        if self.complete {
            Halt::Fail(Error::TooShort {
                code: item.code,
                pos: item.pos,
                need,
                offset: at,
                have: self.data.len().saturating_sub(at),
            })
        } else {
            Halt::More(Need::AtLeast(at.saturating_add(need)))
        }
    }

    /// A field that runs to the end of the input: wait for all of it.
    fn to_end(&self) -> Result<usize, Halt> {
        if self.complete {
            Ok(self.rest())
        } else {
            Err(Halt::More(Need::ToEnd))
        }
    }

    /// `len` bytes at the position, advancing.
    fn field(&mut self, item: &Item, len: usize) -> Result<&'d [u8], Halt> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.short(item, len, self.at))?;
        let f = &self.data[self.at..end];
        self.at = end;
        Ok(f)
    }
}

/// Refuse a name that an earlier value already has.
fn check_names(
    item: &Item,
    new: &[Entry],
    seen: &mut std::collections::HashSet<String>,
) -> Result<(), Error> {
    for name in new.iter().filter_map(|e| e.name.as_ref()) {
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateName {
                name: name.clone(),
                code: item.code,
                pos: item.pos,
            });
        }
    }
    Ok(())
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

fn unpack_item(item: &Item, r: &mut Reader<'_>, entries: &mut Vec<Entry>) -> Result<(), Halt> {
    if item.align > 1 {
        let aligned = r.at.next_multiple_of(item.align);
        if aligned > r.data.len() {
            return Err(r.short(item, aligned - r.at, r.at));
        }
        r.at = aligned;
    }
    if let Some(size) = item.kind.elem_size() {
        let reps = match item.count.fixed() {
            Some(n) => n,
            None => r.to_end()? / size,
        };
        let single = matches!(item.count, Count::Implicit | Count::N(1));
        if reps.saturating_mul(size) > r.rest() {
            return Err(r.short(item, reps.saturating_mul(size), r.at));
        }
        for i in 0..reps {
            let bytes = r.field(item, size)?;
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
                (StrKind::NulTerminated, Count::Star) => {
                    match r.data[r.at..].iter().position(|&b| b == 0) {
                        Some(p) => p + 1,
                        None => r.to_end()?,
                    }
                }
                (_, Count::Star) => r.to_end()?,
                (_, c) => c.fixed().unwrap_or(1),
            };
            Value::Bytes(unpack_str(kind, r.field(item, len)?))
        }
        Kind::Hex { high_first } => {
            let digits = match item.count.fixed() {
                Some(n) => n,
                None => r.to_end()?.saturating_mul(2),
            };
            Value::Hex(unpack_hex(high_first, r.field(item, digits / 2)?))
        }
        Kind::Pad => {
            r.field(item, item.count.fixed().unwrap_or(0))?;
            return Ok(());
        }
        Kind::Back => {
            let n = item.count.fixed().unwrap_or(0);
            r.at = r.at.checked_sub(n).ok_or(Error::BackBeyondStart {
                code: item.code,
                pos: item.pos,
                back: n,
                at: r.at,
            })?;
            return Ok(());
        }
        Kind::Goto => {
            let n = item.count.fixed().unwrap_or(0);
            if n > r.data.len() {
                return Err(r.short(item, n, 0));
            }
            r.at = n;
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
