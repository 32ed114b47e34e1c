//! `sockbox pack`: values to bytes by a PHP `pack()` or Python `struct`
//! format string.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use sockbox_wire::pack::{Dialect, Format, unescape};

use crate::exit::usage;

/// The code tables shown by `pack --help` and `unpack --help`, as a literal
/// for `concat!`.
macro_rules! codes_help {
    () => {
        concat!(
            "Dialect: a format starting with < > ! = @ is Python struct (count before the\n",
            "code: <3H), anything else PHP pack (count after: n3, C*). --php / --struct force one.\n",
            "\n",
            "PHP codes:\n",
            "  c C i8 u8 | s S i16 u16 native | n v u16 big/little | l L i I i32 u32 native\n",
            "  N V u32 big/little | q Q i64 u64 native | J P u64 big/little | f d f32 f64 native\n",
            "  g G f32 little/big | e E f64 little/big | a A Z string NUL-padded, space-padded,\n",
            "  NUL-terminated | H h hex string, high/low nibble first | x NUL | X back one | @ goto\n",
            "  Counts: n3 repeats, C* takes all remaining values, a8 is an 8-byte field, a* the\n",
            "  string's length, H4 four hex digits. Named form: Nlen/a*data.\n",
            "struct codes:\n",
            "  x pad | c char | b B i8 u8 | ? bool | h H i16 u16 | i I l L i32 u32 | q Q i64 u64\n",
            "  n N P ssize_t size_t pointer (@ only) | e f d half single double | s string (10s)\n",
            "  p Pascal string. Prefixes: < little, > ! big, = native, @ native with C alignment.\n",
            "\n",
            "Values out of range, strings longer than their field, odd-length hex and missing\n",
            "or extra values are errors (exit 2), never silently truncated.\n",
            "Exit codes: 0 success; 2 usage or input error; 3 system failure."
        )
    };
}
pub(crate) use codes_help;

/// Arguments of `sockbox pack`.
#[derive(Debug, clap::Args)]
#[command(
    allow_negative_numbers = true,
    after_help = concat!(
        "Examples:\n",
        "  sockbox pack v 16705                   # AA (PHP int2string(16705, 2))\n",
        "  sockbox pack --hex nN 8080 0xdeadbeef  # 1f90deadbeef\n",
        "  sockbox pack --hex '<hf' -2 1.5        # feff0000c03f\n",
        "  sockbox pack 'a4Z*' ab cd | sockbox hexdump\n",
        "  sockbox pack -e 'A*' 'tab\\there' > out.bin\n\n",
        codes_help!()
    )
)]
pub struct Args {
    /// The format string (PHP pack or Python struct codes).
    pub format: String,
    /// One value per code (integers: 42, -1, 0x1f, 0b101; floats: 1.5, inf;
    /// booleans: true/false; strings as given; hex digits for H/h).
    #[arg(allow_hyphen_values = true)]
    pub values: Vec<std::ffi::OsString>,
    /// Print the bytes as lowercase hex and a newline instead of raw bytes.
    #[arg(long)]
    pub hex: bool,
    /// Read string values with backslash escapes (\n \t \0 \\ \xHH), as
    /// `sockbox unpack` prints them.
    #[arg(short = 'e', long)]
    pub escapes: bool,
    #[command(flatten)]
    pub dialect: DialectArgs,
}

/// `--php` / `--struct`: force a dialect instead of guessing from the prefix.
#[derive(Debug, clap::Args)]
pub struct DialectArgs {
    /// Read the format as PHP pack codes even if it starts with '@'.
    #[arg(long, conflicts_with = "struct_")]
    pub php: bool,
    /// Read the format as Python struct codes; without a prefix it means '@'.
    #[arg(long = "struct", id = "struct_")]
    pub struct_: bool,
}

/// A format error as a usage error naming the format; an unknown code
/// points at the list of codes.
pub fn format_error(format: &str, e: &sockbox_wire::pack::Error) -> anyhow::Error {
    let hint = if matches!(e, sockbox_wire::pack::Error::UnknownCode { .. }) {
        " (see `sockbox pack --help` for the codes)"
    } else {
        ""
    };
    usage(format!("format {format:?}: {e}{hint}"))
}

impl DialectArgs {
    /// Parse `format` in the chosen (or guessed) dialect; errors name it.
    pub fn parse(&self, format: &str) -> anyhow::Result<Format> {
        Format::parse_as(format, self.dialect(format)).map_err(|e| format_error(format, &e))
    }

    /// Parse `format` as an unpack format: PHP ones name their fields as
    /// PHP's `unpack()` does (`Nlen` is one `N` named `len`).
    pub fn parse_unpack(&self, format: &str) -> anyhow::Result<Format> {
        Format::parse_unpack_as(format, self.dialect(format)).map_err(|e| format_error(format, &e))
    }

    /// The dialect `format` is read in: the forced one, or the guess.
    pub fn dialect(&self, format: &str) -> Dialect {
        if self.php {
            Dialect::Php
        } else if self.struct_ {
            Dialect::Struct
        } else {
            Dialect::guess(format)
        }
    }
}

/// Run `sockbox pack`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let format = a.dialect.parse(&a.format)?;
    let mut values = Vec::with_capacity(a.values.len());
    for (n, v) in a.values.iter().enumerate() {
        let raw = v.as_bytes();
        if a.escapes {
            values.push(
                unescape(raw).map_err(|e| {
                    usage(format!("value #{} {:?}: {e}", n + 1, v.to_string_lossy()))
                })?,
            );
        } else {
            values.push(raw.to_vec());
        }
    }
    let bytes = format
        .pack_args(&values)
        .map_err(|e| format_error(&a.format, &e))?;
    let mut out = std::io::stdout().lock();
    if a.hex {
        writeln!(out, "{}", crate::output::hex(&bytes))?;
    } else {
        out.write_all(&bytes)?;
    }
    out.flush()?;
    Ok(0)
}
