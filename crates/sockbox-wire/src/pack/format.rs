//! Parsing format strings of both dialects into a list of [`Item`]s.

use super::{Dialect, Error};

/// Byte order of a multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first (network order).
    Big,
}

impl Endian {
    /// The byte order of the machine running this code.
    pub const NATIVE: Self = if cfg!(target_endian = "big") {
        Self::Big
    } else {
        Self::Little
    };
}

/// How a string field is padded and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// PHP `a`: NUL-padded, read back as is.
    NulPadded,
    /// PHP `A`: space-padded; trailing whitespace and NULs stripped on unpack.
    SpacePadded,
    /// PHP `Z`: NUL-terminated and NUL-padded; cut at the first NUL on unpack.
    NulTerminated,
    /// struct `s`: exactly `count` bytes, NUL-padded.
    Bytes,
    /// struct `p`: a length byte, then the bytes, NUL-padded to `count`.
    Pascal,
    /// struct `c`: one byte per value, `count` values.
    Char,
}

/// What a format code does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer of `size` bytes.
    Int {
        /// Width in bytes (1, 2, 4 or 8).
        size: usize,
        /// Two's complement signed, or unsigned.
        signed: bool,
        /// Byte order.
        endian: Endian,
    },
    /// An IEEE 754 float of `size` bytes (2, 4 or 8).
    Float {
        /// Width in bytes.
        size: usize,
        /// Byte order.
        endian: Endian,
    },
    /// struct `?`: one byte, 0 or 1.
    Bool,
    /// A byte string.
    Str(StrKind),
    /// PHP `H` (high nibble first) and `h` (low nibble first): a hex string.
    Hex {
        /// `H`: the first digit is the high nibble.
        high_first: bool,
    },
    /// `x`: NUL bytes on pack, skipped on unpack.
    Pad,
    /// PHP `X`: back up `count` bytes.
    Back,
    /// PHP `@`: go to absolute position `count` (NUL-filling on pack).
    Goto,
}

impl Kind {
    /// Bytes per repetition for repeated fixed-size fields.
    pub(crate) fn elem_size(self) -> Option<usize> {
        match self {
            Self::Int { size, .. } | Self::Float { size, .. } => Some(size),
            Self::Bool | Self::Str(StrKind::Char) => Some(1),
            _ => None,
        }
    }

    /// Whether `count` repeats the field (one value each) rather than
    /// giving a length.
    pub(crate) fn repeats(self) -> bool {
        self.elem_size().is_some()
    }
}

/// A code's count: implicit, a number, or PHP's `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// No count written (means 1).
    Implicit,
    /// A number.
    N(usize),
    /// `*` (PHP only): every remaining value, or the whole string.
    Star,
}

impl Count {
    /// The number, with implicit counting as 1; `None` for `*`.
    pub fn fixed(self) -> Option<usize> {
        match self {
            Self::Implicit => Some(1),
            Self::N(n) => Some(n),
            Self::Star => None,
        }
    }
}

/// One code of a format, with its count and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The code character as written.
    pub code: char,
    /// Byte position of the code in the format string (0-based).
    pub pos: usize,
    /// What it does.
    pub kind: Kind,
    /// Its count.
    pub count: Count,
    /// A PHP unpack-style name (`Nlen/a*data`), if given.
    pub name: Option<String>,
    /// Alignment in bytes (struct `@` mode), 1 when none.
    pub align: usize,
}

/// A parsed format string. Build one with [`Format::parse`] (dialect chosen
/// by the first character) or [`Format::parse_as`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub(crate) dialect: Dialect,
    pub(crate) items: Vec<Item>,
}

/// Characters that start a Python struct format.
const STRUCT_PREFIXES: &[char] = &['<', '>', '!', '=', '@'];

impl Format {
    /// Parse `fmt`: a leading `<`, `>`, `!`, `=` or `@` selects the Python
    /// struct dialect, anything else is PHP `pack()`.
    pub fn parse(fmt: &str) -> Result<Self, Error> {
        Self::parse_as(fmt, Dialect::guess(fmt))
    }

    /// Parse `fmt` in the given dialect. A struct format without a prefix
    /// means `@` (native order, sizes and alignment), as in Python.
    ///
    /// PHP formats are read as `pack()` reads them: codes back to back
    /// (`nvC*`), with names only in the `/`-separated form (`nport/Cttl`).
    /// To read a format as PHP's `unpack()` does, use
    /// [`Format::parse_unpack_as`].
    pub fn parse_as(fmt: &str, dialect: Dialect) -> Result<Self, Error> {
        let items = match dialect {
            Dialect::Php => parse_php(fmt, fmt.contains('/'))?,
            Dialect::Struct => parse_struct(fmt)?,
        };
        Ok(Self { dialect, items })
    }

    /// Parse `fmt` as an unpack format (dialect by its first character, as
    /// [`Format::parse`]).
    pub fn parse_unpack(fmt: &str) -> Result<Self, Error> {
        Self::parse_unpack_as(fmt, Dialect::guess(fmt))
    }

    /// Parse `fmt` as an unpack format in the given dialect. A PHP format
    /// follows PHP's `unpack()` rule: a field is a code, its count, then a
    /// name running up to the next `/`. So `Nlen` is one `N` named `len`,
    /// `C*b` the bytes `b1`, `b2`…, and `n/N` two unnamed fields. Struct
    /// formats read as in [`Format::parse_as`].
    pub fn parse_unpack_as(fmt: &str, dialect: Dialect) -> Result<Self, Error> {
        let items = match dialect {
            Dialect::Php => parse_php(fmt, true)?,
            Dialect::Struct => parse_struct(fmt)?,
        };
        Ok(Self { dialect, items })
    }

    /// The dialect this format was parsed in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The codes, in order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

impl Dialect {
    /// The dialect [`Format::parse`] reads `fmt` in: Python struct when it
    /// starts with `<`, `>`, `!`, `=` or `@`, PHP otherwise.
    pub fn guess(fmt: &str) -> Self {
        if fmt.starts_with(STRUCT_PREFIXES) {
            Self::Struct
        } else {
            Self::Php
        }
    }
}

/// A cursor over a format string that knows byte positions.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let c = self.peek()?;
        let pos = self.at;
        self.at += c.len_utf8();
        Some((pos, c))
    }

    /// Skip ASCII whitespace (as Python's struct does). Other Unicode
    /// spaces (U+00A0, U+3000…) are not skipped: they are reported as
    /// unknown codes, like any other stray character.
    fn skip_ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
        {
            self.at += 1;
        }
    }

    /// Digits at the cursor, if any.
    fn number(&mut self, code: char, pos: usize) -> Result<Option<usize>, Error> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if start == self.at {
            return Ok(None);
        }
        self.s[start..self.at]
            .parse::<usize>()
            .map(Some)
            .map_err(|_| Error::BadCount {
                code,
                pos,
                reason: "the count is too large",
            })
    }
}

fn php_kind(code: char) -> Option<Kind> {
    use Endian::{Big, Little};
    let n = Endian::NATIVE;
    let int = |size, signed, endian| Kind::Int {
        size,
        signed,
        endian,
    };
    let float = |size, endian| Kind::Float { size, endian };
    Some(match code {
        'c' => int(1, true, n),
        'C' => int(1, false, n),
        's' => int(2, true, n),
        'S' => int(2, false, n),
        'n' => int(2, false, Big),
        'v' => int(2, false, Little),
        'i' | 'l' => int(4, true, n),
        'I' | 'L' => int(4, false, n),
        'N' => int(4, false, Big),
        'V' => int(4, false, Little),
        'q' => int(8, true, n),
        'Q' => int(8, false, n),
        'J' => int(8, false, Big),
        'P' => int(8, false, Little),
        'f' => float(4, n),
        'g' => float(4, Little),
        'G' => float(4, Big),
        'd' => float(8, n),
        'e' => float(8, Little),
        'E' => float(8, Big),
        'a' => Kind::Str(StrKind::NulPadded),
        'A' => Kind::Str(StrKind::SpacePadded),
        'Z' => Kind::Str(StrKind::NulTerminated),
        'H' => Kind::Hex { high_first: true },
        'h' => Kind::Hex { high_first: false },
        'x' => Kind::Pad,
        'X' => Kind::Back,
        '@' => Kind::Goto,
        _ => return None,
    })
}

/// Parse a PHP format. With `named`, everything after a code and its count
/// up to the next `/` is the value's name (PHP `unpack()`: "Nlen/a*data");
/// without, codes follow each other with no names (PHP `pack()`: "nvC*").
fn parse_php(fmt: &str, named: bool) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut cur = Cursor { s: fmt, at: 0 };
    loop {
        cur.skip_ws();
        let Some((pos, code)) = cur.bump() else { break };
        if code == '/' {
            continue;
        }
        let kind = php_kind(code).ok_or(Error::UnknownCode {
            code,
            pos,
            dialect: Dialect::Php,
        })?;
        let count = if cur.peek() == Some('*') {
            cur.at += 1;
            Count::Star
        } else {
            cur.number(code, pos)?.map_or(Count::Implicit, Count::N)
        };
        let mut name = None;
        if named {
            let start = cur.at;
            while cur.peek().is_some_and(|c| c != '/') {
                cur.bump();
            }
            let n = fmt[start..cur.at].trim_ascii();
            if !n.is_empty() {
                name = Some(n.to_owned());
            }
        }
        check_count(code, pos, kind, count)?;
        items.push(Item {
            code,
            pos,
            kind,
            count,
            name,
            align: 1,
        });
    }
    Ok(items)
}

fn check_count(code: char, pos: usize, kind: Kind, count: Count) -> Result<(), Error> {
    let bad = |reason| Err(Error::BadCount { code, pos, reason });
    match (kind, count) {
        (Kind::Pad | Kind::Back | Kind::Goto, Count::Star) => {
            bad("'*' makes no sense here; give a number")
        }
        (Kind::Hex { .. }, Count::Implicit) => {
            bad("a hex field needs an even digit count (H2, H4…) or '*'")
        }
        (Kind::Hex { .. }, Count::N(n)) if n % 2 == 1 => {
            bad("the count is in hex digits and must be even: every byte is two digits")
        }
        _ => Ok(()),
    }
}

/// Byte order, whether sizes/alignment are native, for a struct prefix.
fn struct_mode(prefix: Option<char>) -> (Endian, bool) {
    match prefix {
        Some('<') => (Endian::Little, false),
        Some('>' | '!') => (Endian::Big, false),
        Some('=') => (Endian::NATIVE, false),
        _ => (Endian::NATIVE, true),
    }
}

fn struct_kind(code: char, endian: Endian, native: bool) -> Option<Kind> {
    let int = |size, signed| Kind::Int {
        size,
        signed,
        endian,
    };
    let long = if native {
        size_of::<std::ffi::c_long>()
    } else {
        4
    };
    Some(match code {
        'x' => Kind::Pad,
        'c' => Kind::Str(StrKind::Char),
        'b' => int(1, true),
        'B' => int(1, false),
        '?' => Kind::Bool,
        'h' => int(2, true),
        'H' => int(2, false),
        'i' => int(4, true),
        'I' => int(4, false),
        'l' => int(long, true),
        'L' => int(long, false),
        'q' => int(8, true),
        'Q' => int(8, false),
        'n' if native => int(size_of::<isize>(), true),
        'N' | 'P' if native => int(size_of::<usize>(), false),
        'e' => Kind::Float { size: 2, endian },
        'f' => Kind::Float { size: 4, endian },
        'd' => Kind::Float { size: 8, endian },
        's' => Kind::Str(StrKind::Bytes),
        'p' => Kind::Str(StrKind::Pascal),
        _ => return None,
    })
}

fn parse_struct(fmt: &str) -> Result<Vec<Item>, Error> {
    let mut cur = Cursor { s: fmt, at: 0 };
    let prefix = cur.peek().filter(|c| STRUCT_PREFIXES.contains(c));
    if prefix.is_some() {
        cur.at += 1;
    }
    let (endian, native) = struct_mode(prefix);
    let mut items = Vec::new();
    loop {
        cur.skip_ws();
        let start = cur.at;
        let Some(first) = cur.peek() else { break };
        let n = cur.number(first, start)?;
        let Some((pos, code)) = cur.bump() else {
            return Err(Error::BadCount {
                code: first,
                pos: start,
                reason: if prefix == Some('@') {
                    "a struct count must be followed by a code (a format starting with '@' is \
                     Python struct; force the PHP dialect for PHP's '@')"
                } else {
                    "a struct count must be followed by a code"
                },
            });
        };
        let kind = struct_kind(code, endian, native).ok_or({
            if matches!(code, 'n' | 'N' | 'P') {
                Error::NativeOnly { code, pos }
            } else if code == '*' {
                Error::BadCount {
                    code,
                    pos,
                    reason: "'*' counts are PHP pack syntax, not struct; give a number before the code",
                }
            } else {
                Error::UnknownCode {
                    code,
                    pos,
                    dialect: Dialect::Struct,
                }
            }
        })?;
        let align = match kind.elem_size() {
            Some(size) if native => size,
            _ => 1,
        };
        items.push(Item {
            code,
            pos,
            kind,
            count: n.map_or(Count::Implicit, Count::N),
            name: None,
            align,
        });
    }
    Ok(items)
}
