//! `sockbox unpack`: bytes to values by a PHP `unpack()` or Python `struct`
//! format string, as text or JSON lines.

use std::io::{Read, Write};
use std::path::PathBuf;

use sockbox_wire::pack::{Entry, Error, Format, Need, Partial, Value};

use crate::cmd::pack::{DialectArgs, codes_help};
use crate::exit::usage;
use crate::input::{Source, parse_hex};

/// Arguments of `sockbox unpack`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!(
    "Output: one line per record; values separated by tabs, named values as\n",
    "name=value. Strings are printed with \\n, \\t, \\xHH escapes (feed them back with\n",
    "`sockbox pack -e`). --json prints one JSON value per record: an array, or an\n",
    "object when the format names its fields; strings that are not UTF-8 become\n",
    "{\"hex\": \"...\"}; NaN and infinities become the strings \"NaN\", \"inf\", \"-inf\".\n",
    "Bytes after the format are ignored (as PHP does) unless --exact. Input is read as\n",
    "the format needs it: only its bytes, or record by record with --records.\n\n",
    "Names follow PHP's unpack(): after a code and its count, everything up to the next\n",
    "'/' names the value. So Nlen is one u32 named len, C*b gives b1, b2…, and fields\n",
    "without names are separated by '/' too (n/N), unlike pack's nN. A name given twice\n",
    "(Cx/Cx) is an error: PHP would keep only the last value.\n\n",
    "Examples:\n",
    "  sockbox unpack v --hex 4141                    # 16705\n",
    "  sockbox unpack 'nport/Cttl' --hex 1f9040 --json  # {\"port\":8080,\"ttl\":64}\n",
    "  sockbox unpack Nlen --hex 0000000100000002 --json # {\"len\":1}\n",
    "  sockbox unpack '<IH' header.bin\n",
    "  sockbox unpack --records '<HH' pairs.bin\n",
    "  sockbox pack '>d' 0.1 | sockbox unpack '>d'\n\n",
    codes_help!()
))]
pub struct Args {
    /// The format string (PHP unpack or Python struct codes).
    pub format: String,
    /// File to read; `-` or nothing for stdin.
    #[arg(value_name = "FILE", conflicts_with = "hex")]
    pub file: Option<PathBuf>,
    /// Unpack these hex bytes instead of a file ("1f90", "1f 90", "0x1f90").
    #[arg(long, value_name = "STR")]
    pub hex: Option<String>,
    /// One JSON value per record.
    #[arg(long)]
    pub json: bool,
    /// Require the input to be exactly as long as the format (like Python).
    #[arg(long, conflicts_with = "records")]
    pub exact: bool,
    /// Repeat the format over the whole input, one record per line (like
    /// Python's struct.iter_unpack); an incomplete last record is an error.
    #[arg(long)]
    pub records: bool,
    #[command(flatten)]
    pub dialect: DialectArgs,
}

/// Run `sockbox unpack`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let format = a.dialect.parse_unpack(&a.format)?;
    let mut input = open_input(a)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.records {
        let mut index = 0u64;
        loop {
            let next = next_record(&format, &mut input).map_err(|e| {
                let at = format!(", record {} (at byte {})", index + 1, input.offset);
                unpack_error(e, &input, &a.format, &at)
            })?;
            let Some((record, covered)) = next else { break };
            print_record(&mut out, &record, a.json)?;
            input.consume(covered);
            index += 1;
        }
    } else {
        let (record, covered) = first_record(&format, &mut input)
            .map_err(|e| unpack_error(e, &input, &a.format, ""))?;
        if a.exact {
            let extra = input.count_rest(covered)?;
            if extra > 0 {
                let extra = usize::try_from(extra).unwrap_or(usize::MAX);
                let e = Error::Trailing { covered, extra };
                return Err(unpack_error(e.into(), &input, &a.format, ""));
            }
        }
        print_record(&mut out, &record, a.json)?;
    }
    out.flush()?;
    Ok(0)
}

/// `--hex` bytes, or FILE / stdin opened unbuffered.
fn open_input(a: &Args) -> anyhow::Result<Input> {
    if let Some(h) = &a.hex {
        let bytes = parse_hex(h)?;
        let len = bytes.len() as u64;
        return Ok(Input::new(
            "--hex",
            Box::new(std::io::Cursor::new(bytes)),
            Some(len),
        ));
    }
    let src = Source::from_arg(a.file.as_deref());
    let (file, left) = src.open_unbuffered()?;
    Ok(Input::new(&src.name(), Box::new(file), left))
}

/// An unpack error names the input, the format and where (`at`); a read
/// error is already whole.
fn unpack_error(e: anyhow::Error, input: &Input, format: &str, at: &str) -> anyhow::Error {
    match e.downcast::<Error>() {
        Ok(e) => {
            let hint = if matches!(e, Error::UnknownCode { .. }) {
                " (see `sockbox pack --help` for the codes)"
            } else {
                ""
            };
            usage(format!(
                "{} with format {format:?}{at}: {e}{hint}",
                input.name
            ))
        }
        Err(e) => e,
    }
}

fn print_record<W: Write>(out: &mut W, record: &[Entry], json: bool) -> anyhow::Result<()> {
    if json {
        // Serialized first: a failed write then stays an io::Error (a
        // closed pipe ends quietly), not a serde_json one.
        let mut line = serde_json::to_vec(&record_json(record)?)?;
        line.push(b'\n');
        out.write_all(&line)?;
    } else {
        write_text(out, record)?;
    }
    Ok(())
}

/// Bytes read per read call while streaming records.
const CHUNK: usize = 1 << 18;

/// The input, read as the format asks: whole chunks for records, only the
/// bytes a format needs otherwise. Holds one record (and a chunk) at most.
struct Input {
    name: String,
    reader: Box<dyn Read>,
    /// Bytes the reader still holds, when known: a format that needs more
    /// fails at once instead of reading everything first.
    left: Option<u64>,
    /// `buf[start..end]` is read and not yet unpacked.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl Input {
    fn new(name: &str, reader: Box<dyn Read>, left: Option<u64>) -> Self {
        Self {
            name: name.to_owned(),
            reader,
            left,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Read and not yet unpacked.
    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Read until `want` bytes are available, or the input ends; with
    /// `exact`, not a byte more (a pipe keeps the rest for the next reader).
    fn fill_to(&mut self, want: usize, exact: bool) -> anyhow::Result<()> {
        let missing = want.saturating_sub(self.avail().len());
        if self.left.is_some_and(|left| (missing as u64) > left) {
            // Cannot be satisfied: unpack what there is, to report it.
            self.eof = true;
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let goal = if exact {
            want
        } else {
            want.max(self.end + CHUNK)
        };
        if self.buf.len() < goal {
            self.buf.resize(goal, 0);
        }
        while !self.eof && self.end < want {
            let n = loop {
                match self.reader.read(&mut self.buf[self.end..goal]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(usage(format!("cannot read {}: {e}", self.name))),
                }
            };
            self.end += n;
            if let Some(left) = &mut self.left {
                *left = left.saturating_sub(n as u64);
            }
            self.eof = n == 0;
        }
        Ok(())
    }

    /// Bytes after the first `covered` available ones, reading (and
    /// dropping) the rest of the input to count them.
    fn count_rest(&mut self, covered: usize) -> anyhow::Result<u64> {
        let held = self.avail().len().saturating_sub(covered) as u64;
        let rest = std::io::copy(&mut self.reader, &mut std::io::sink())
            .map_err(|e| usage(format!("cannot read {}: {e}", self.name)))?;
        Ok(held + rest)
    }

    /// Add the unread bytes to a too-short error made from what was read.
    fn fix_short(&self, e: Error) -> Error {
        match (e, self.left) {
            (
                Error::TooShort {
                    code,
                    pos,
                    need,
                    offset,
                    have,
                },
                Some(left),
            ) => Error::TooShort {
                code,
                pos,
                need,
                offset,
                have: have.saturating_add(usize::try_from(left).unwrap_or(usize::MAX)),
            },
            (e, _) => e,
        }
    }
}

/// Unpack the format once from the start, reading only what it needs.
fn first_record(format: &Format, input: &mut Input) -> anyhow::Result<(Vec<Entry>, usize)> {
    loop {
        match format.unpack_partial(input.avail(), input.eof) {
            Ok(Partial::Done(record, covered)) => return Ok((record, covered)),
            Ok(Partial::More(Need::AtLeast(n))) => input.fill_to(n, true)?,
            Ok(Partial::More(Need::ToEnd)) => input.fill_to(input.avail().len() + 1, false)?,
            Err(e) => return Err(input.fix_short(e).into()),
        }
    }
}

/// The next of back-to-back records, or `None` at the end of the input.
fn next_record(format: &Format, input: &mut Input) -> anyhow::Result<Option<(Vec<Entry>, usize)>> {
    if input.avail().is_empty() {
        input.fill_to(1, false)?;
        if input.avail().is_empty() {
            return Ok(None);
        }
    }
    loop {
        match format.unpack_partial(input.avail(), input.eof) {
            Ok(Partial::Done(_, 0)) => {
                return Err(Error::BadCount {
                    code: format.items().first().map_or(' ', |i| i.code),
                    pos: 0,
                    reason: "a format that covers no bytes cannot repeat",
                }
                .into());
            }
            Ok(Partial::Done(record, covered)) => return Ok(Some((record, covered))),
            Ok(Partial::More(Need::AtLeast(n))) => input.fill_to(n, false)?,
            Ok(Partial::More(Need::ToEnd)) => input.fill_to(input.avail().len() + 1, false)?,
            Err(e) => return Err(input.fix_short(e).into()),
        }
    }
}

fn write_text<W: Write>(out: &mut W, record: &[Entry]) -> std::io::Result<()> {
    for (i, e) in record.iter().enumerate() {
        if i > 0 {
            out.write_all(b"\t")?;
        }
        match &e.name {
            Some(n) => write!(out, "{n}={}", e.value)?,
            None => write!(out, "{}", e.value)?,
        }
    }
    out.write_all(b"\n")
}

/// A record as JSON: an array, or an object keyed by name (in format order)
/// when any value is named; unnamed ones are keyed by their 1-based
/// position. A key given twice is an error: JSON readers would keep one.
fn record_json(record: &[Entry]) -> anyhow::Result<Record> {
    if !record.iter().any(|e| e.name.is_some()) {
        return Ok(Record::Array(
            record.iter().map(|e| value_json(&e.value)).collect(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut fields = Vec::with_capacity(record.len());
    for (i, e) in record.iter().enumerate() {
        let key = e.name.clone().unwrap_or_else(|| (i + 1).to_string());
        if !seen.insert(key.clone()) {
            return Err(usage(format!(
                "--json: the key {key:?} would appear twice (a name and the position of an \
                 unnamed value): rename the field"
            )));
        }
        fields.push((key, value_json(&e.value)));
    }
    Ok(Record::Object(fields))
}

/// One record, serialized with object keys in format order.
enum Record {
    Array(Vec<serde_json::Value>),
    Object(Vec<(String, serde_json::Value)>),
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Array(v) => v.serialize(s),
            Self::Object(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

fn float_json(x: f64, shown: String) -> serde_json::Value {
    if x.is_finite() {
        // Parse the shortest text form so f32 values print as 0.1, not 0.100000001.
        shown
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::String(shown), serde_json::Value::Number)
    } else {
        serde_json::Value::String(shown)
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Int(n) => i64::try_from(*n)
            .map(J::from)
            .or_else(|_| u64::try_from(*n).map(J::from))
            .unwrap_or_else(|_| J::String(n.to_string())),
        Value::Float(x) => float_json(*x, v.to_string()),
        Value::F32(x) => float_json(f64::from(*x), v.to_string()),
        Value::Bool(b) => J::Bool(*b),
        Value::Hex(h) => J::String(h.clone()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => J::String(s.to_owned()),
            Err(_) => serde_json::json!({ "hex": crate::output::hex(b) }),
        },
    }
}
