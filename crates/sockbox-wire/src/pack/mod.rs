//! Pack values into bytes and back by a format string, in the two dialects
//! people already know: PHP's `pack()`/`unpack()` and Python's `struct`.
//!
//! # Choosing the dialect
//!
//! The first character decides. A format starting with one of Python's
//! byte-order prefixes `<` (little-endian), `>` or `!` (big-endian/network),
//! `=` (native order, standard sizes) or `@` (native order, sizes and
//! alignment) is a **struct** format; anything else is a **PHP** format.
//! [`Format::parse_as`] forces a dialect (a struct format without a prefix
//! then means `@`, as in Python; a PHP format may then start with `@`).
//!
//! The two dialects never mix inside one format: the same letter means
//! different things (`h` is a hex string in PHP, a 16-bit integer in
//! struct; `e` a little-endian double in PHP, a half float in struct).
//!
//! ## PHP codes (count *after* the code)
//!
//! | code | field | | code | field |
//! |---|---|---|---|---|
//! | `c` `C` | i8, u8 | | `q` `Q` | i64, u64 native order |
//! | `s` `S` | i16, u16 native order | | `J` `P` | u64 big, little |
//! | `n` `v` | u16 big, little | | `f` `d` | f32, f64 native order |
//! | `l` `L` `i` `I` | i32, u32 native order | | `g` `G` | f32 little, big |
//! | `N` `V` | u32 big, little | | `e` `E` | f64 little, big |
//! | `a` `A` | string, NUL / space padded | | `Z` | NUL-terminated string |
//! | `H` `h` | hex string, high / low nibble first | | `x` | NUL byte |
//! | `X` | back up one byte | | `@` | NUL-fill to an absolute position |
//!
//! A count repeats numeric codes (`n3` takes three values); `*` takes every
//! remaining value. For strings the count is the field length (`a8`) and `*`
//! the string's own length (plus the NUL for `Z*`); for `H`/`h` it counts
//! hex digits and must be even.
//!
//! Names follow PHP. [`unpack`] and [`Format::parse_unpack`] read a PHP
//! format as PHP's `unpack()` does: each `/`-separated field is a code, its
//! count, then the value's name, so `Nlen` is one `N` named `len` and
//! `Nlen/a*data` names the values `len` and `data`; a repeated field gets
//! `name1`, `name2`…; `n/N` are two unnamed fields. [`pack`] and
//! [`Format::parse`] read codes back to back as PHP's `pack()` does
//! (`nvC*`), and accept the `/`-separated named form too. Two values with
//! the same name are an [`Error::DuplicateName`] (PHP keeps only the last).
//!
//! ## struct codes (count *before* the code)
//!
//! `x` pad byte, `c` 1-byte string, `b` `B` i8/u8, `?` bool, `h` `H`
//! i16/u16, `i` `I` i32/u32, `l` `L` i32/u32 (`c_long` with `@`), `q` `Q`
//! i64/u64, `n` `N` `P` ssize_t/size_t/pointer (only with `@`), `e` `f` `d`
//! half/single/double floats, `s` fixed-length string (`10s`), `p` Pascal
//! string. A count repeats other codes (`3h`). Whitespace between codes is
//! ignored (in both dialects).
//!
//! # Strictness
//!
//! Where PHP silently truncates and Python sometimes does, this module
//! refuses: an integer that does not fit its field, a finite float too large
//! for `f` or `e`, a string longer than its field, a hex string of the wrong
//! or odd length, a missing or extra value are all typed [`Error`]s that
//! name the value, the code and its position. Unpack never reads past the
//! data ([`Error::TooShort`]). Packed output is capped at [`MAX_PACKED`].
//!
//! Unpack reads `Z*` up to and including the first NUL (PHP takes the whole
//! rest), so `Z*` fields can be followed by more fields and round-trip.
//!
//! ```
//! use sockbox_wire::pack::{Value, pack, unpack};
//! // PHP's classic int2string(16705, 2): little-endian 16-bit.
//! assert_eq!(pack("v", &[Value::Int(16705)]).unwrap(), b"AA");
//! assert_eq!(pack("<H", &[Value::Int(16705)]).unwrap(), b"AA");
//! let e = unpack("nport/Cttl", &[0x1f, 0x90, 64]).unwrap();
//! assert_eq!(e[0].name.as_deref(), Some("port"));
//! assert_eq!(e[0].value, Value::Int(8080));
//! ```

mod codec;
mod decode;
mod format;
mod half;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;

pub use codec::{Source, Want};
pub use decode::{Need, Partial};
pub use format::{Count, Endian, Format, Item, Kind, StrKind};
pub use half::{f16_to_f64, f64_to_f16};
pub use text::{ArgSource, ValueSource, parse_bool, parse_int, unescape};

/// Largest output [`Format::pack`] produces (16 MiB): a guard against
/// formats like `x999999999`.
pub const MAX_PACKED: usize = 16 << 20;

/// Which format language a [`Format`] was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PHP `pack()`/`unpack()` codes, counts after the code.
    Php,
    /// Python `struct` codes, counts before the code, a byte-order prefix.
    Struct,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Php => "PHP pack",
            Self::Struct => "Python struct",
        })
    }
}

/// A value to pack or an unpacked value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any integer (covers both i64 and u64).
    Int(i128),
    /// A double; what unpacking `d`/`e`/`E` gives.
    Float(f64),
    /// A single-precision float; what unpacking `f`/`g`/`G` and struct `e` gives.
    F32(f32),
    /// struct `?`.
    Bool(bool),
    /// A byte string (`a`, `A`, `Z`, `s`, `p`, `c`).
    Bytes(Vec<u8>),
    /// Hex digits (`H`, `h`), lowercase on unpack.
    Hex(String),
}

impl Value {
    /// The bytes of a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// What to call this kind of value in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "an integer",
            Self::Float(_) | Self::F32(_) => "a float",
            Self::Bool(_) => "a boolean",
            Self::Bytes(_) => "a string",
            Self::Hex(_) => "a hex string",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(i128::from(v))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(i128::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Bytes(v.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

/// One unpacked value, with the code that produced it and its PHP-style
/// name when the format named it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `len` for `Nlen`, `b1`, `b2`… for `C2b`; `None` when unnamed.
    pub name: Option<String>,
    /// The format code.
    pub code: char,
    /// The value.
    pub value: Value,
}

/// Everything that can go wrong parsing a format, packing or unpacking.
/// Positions are byte offsets in the format string, starting at 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A character that is not a code of the dialect.
    #[error("unknown {dialect} code {code:?} at position {pos}")]
    UnknownCode {
        /// The character.
        code: char,
        /// Where.
        pos: usize,
        /// The dialect the format was read in.
        dialect: Dialect,
    },
    /// A count that cannot be used with its code.
    #[error("code {code:?} at position {pos}: {reason}")]
    BadCount {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// Why.
        reason: &'static str,
    },
    /// `n`, `N`, `P` in a struct format without the native `@` prefix.
    #[error(
        "struct code {code:?} at position {pos} exists only in native mode: start the format with '@'"
    )]
    NativeOnly {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
    },
    /// The format wants more values than were given.
    #[error("code {code:?} at position {pos} needs value #{index}, but only {} given", index - 1)]
    MissingValue {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// 1-based number of the missing value.
        index: usize,
    },
    /// Values left over after the whole format was used.
    #[error("{extra} value(s) left over: the format uses only {used}")]
    TooManyValues {
        /// Values the format consumed.
        used: usize,
        /// Values not consumed.
        extra: usize,
    },
    /// A value outside the range of its field.
    #[error("value {value} does not fit code {code:?} at position {pos} ({range})")]
    OutOfRange {
        /// The value, as text.
        value: String,
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// The allowed range.
        range: String,
    },
    /// A value of the wrong kind (a string for an integer code…).
    #[error("code {code:?} at position {pos} takes {expected}, got {got}")]
    WrongType {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// What it takes.
        expected: &'static str,
        /// What it got.
        got: &'static str,
    },
    /// A text value that does not parse as what its code takes.
    #[error("value {text:?} for code {code:?} at position {pos} is not {expected}")]
    BadText {
        /// The text.
        text: String,
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// What it should be.
        expected: &'static str,
    },
    /// A string longer than its field.
    #[error("a {len}-byte string does not fit code {code:?} at position {pos}: room for {room}")]
    StringLength {
        /// The string's length.
        len: usize,
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// How much fits.
        room: String,
    },
    /// A hex string with an odd number of digits.
    #[error(
        "hex string for code {code:?} at position {pos} has {digits} digits: every byte needs two"
    )]
    OddHex {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// How many digits it has.
        digits: usize,
    },
    /// A character in a hex string that is not a hex digit.
    #[error(
        "hex string for code {code:?} at position {pos}: {ch:?} (digit {at}) is not a hex digit"
    )]
    BadHex {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// The character.
        ch: char,
        /// Its index in the hex string.
        at: usize,
    },
    /// A hex string whose length differs from the code's count.
    #[error("code {code:?} at position {pos} wants {want} hex digits, got {got}")]
    HexLength {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// The count.
        want: usize,
        /// The string's length.
        got: usize,
    },
    /// Unpack ran out of data.
    #[error(
        "data too short: code {code:?} at position {pos} needs {need} byte(s) at offset {offset}, {have} left"
    )]
    TooShort {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// Bytes it needs.
        need: usize,
        /// Where in the data.
        offset: usize,
        /// Bytes left there.
        have: usize,
    },
    /// `X` backing up before the start.
    #[error(
        "code {code:?} at position {pos} backs up {back} byte(s) from offset {at}: before the start"
    )]
    BackBeyondStart {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// How far.
        back: usize,
        /// From where.
        at: usize,
    },
    /// Output would exceed [`MAX_PACKED`].
    #[error(
        "code {code:?} at position {pos} would make the output {size} bytes, over the 16 MiB limit"
    )]
    TooLarge {
        /// The code.
        code: char,
        /// Where.
        pos: usize,
        /// The size it would reach.
        size: usize,
    },
    /// Unpack: two values with the same name (`Cx/Cx`, `C2x/Cx1`). PHP's
    /// `unpack()` would keep only the last of them.
    #[error(
        "code {code:?} at position {pos} names a value {name:?}, as an earlier field did: \
         PHP's unpack would keep only the last one; give each field its own name"
    )]
    DuplicateName {
        /// The name given twice.
        name: String,
        /// The code of the second field with that name.
        code: char,
        /// Where that code is.
        pos: usize,
    },
    /// [`Format::unpack_exact`]: bytes left after the format.
    #[error("{extra} byte(s) left after the format, which covers {covered}")]
    Trailing {
        /// Bytes the format covered.
        covered: usize,
        /// Bytes left over.
        extra: usize,
    },
}

impl Format {
    /// Pack typed values.
    pub fn pack(&self, values: &[Value]) -> Result<Vec<u8>, Error> {
        self.pack_from(&mut ValueSource::new(values))
    }

    /// Pack command-line style text values, each parsed as its code wants:
    /// integers (`-5`, `0x1f`, `0b101`, `1_000`), floats (`1.5`, `inf`),
    /// booleans (`true`, `1`), strings as their bytes, hex digits.
    pub fn pack_args<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Vec<u8>, Error> {
        self.pack_from(&mut ArgSource::new(args))
    }

    /// Unpack `data`, ignoring bytes after the format (as PHP does).
    pub fn unpack(&self, data: &[u8]) -> Result<Vec<Entry>, Error> {
        self.unpack_prefix(data).map(|(e, _)| e)
    }

    /// Unpack `data`, which must be exactly as long as the format (as
    /// Python's `struct.unpack` requires).
    pub fn unpack_exact(&self, data: &[u8]) -> Result<Vec<Entry>, Error> {
        let (e, covered) = self.unpack_prefix(data)?;
        if covered < data.len() {
            return Err(Error::Trailing {
                covered,
                extra: data.len() - covered,
            });
        }
        Ok(e)
    }

    /// Unpack `data` as back-to-back records of this format (like Python's
    /// `struct.iter_unpack`). A record that covers no bytes, or an
    /// incomplete last record, is an error.
    pub fn unpack_records(&self, mut data: &[u8]) -> Result<Vec<Vec<Entry>>, Error> {
        let mut records = Vec::new();
        while !data.is_empty() {
            let (e, covered) = self.unpack_prefix(data)?;
            if covered == 0 {
                return Err(Error::BadCount {
                    code: self.items.first().map_or(' ', |i| i.code),
                    pos: 0,
                    reason: "a format that covers no bytes cannot repeat",
                });
            }
            records.push(e);
            data = &data[covered.min(data.len())..];
        }
        Ok(records)
    }
}

/// Parse `format` (dialect by its first character) and pack `values`.
pub fn pack(format: &str, values: &[Value]) -> Result<Vec<u8>, Error> {
    Format::parse(format)?.pack(values)
}

/// Parse `format` as an unpack format (dialect by its first character; PHP
/// names as PHP's `unpack()` reads them, see [`Format::parse_unpack`]) and
/// unpack `data`, ignoring trailing bytes.
pub fn unpack(format: &str, data: &[u8]) -> Result<Vec<Entry>, Error> {
    Format::parse_unpack(format)?.unpack(data)
}
