//! `sockbox unpack`: bytes to values by a PHP `unpack()` or Python `struct`
//! format string, as text or JSON lines.

use std::io::Write;
use std::path::PathBuf;

use sockbox_wire::pack::{Dialect, Entry, Format, Value};

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
    "Bytes after the format are ignored (as PHP does) unless --exact.\n\n",
    "Examples:\n",
    "  sockbox unpack v --hex 4141                    # 16705\n",
    "  sockbox unpack 'nport/Cttl' --hex 1f9040 --json  # {\"port\":8080,\"ttl\":64}\n",
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
    let php = a.dialect.dialect(&a.format) == Dialect::Php;
    let hint = |data: Option<&[u8]>| {
        php.then(|| php_name_hint(&a.format, data))
            .flatten()
            .unwrap_or_default()
    };
    let format = a
        .dialect
        .parse(&a.format)
        .map_err(|e| usage(format!("{e}{}", hint(None))))?;
    let (data, name) = if let Some(h) = &a.hex {
        (parse_hex(h)?, "--hex".to_owned())
    } else {
        let src = Source::from_arg(a.file.as_deref());
        (src.read_all()?, src.name())
    };
    let err = |e: sockbox_wire::pack::Error| {
        let hint = hint(Some(&data));
        usage(format!("{name} with format {:?}: {e}{hint}", a.format))
    };
    let records = if a.records {
        format.unpack_records(&data).map_err(err)?
    } else if a.exact {
        vec![format.unpack_exact(&data).map_err(err)?]
    } else {
        vec![format.unpack(&data).map_err(err)?]
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for r in &records {
        if a.json {
            serde_json::to_writer(&mut out, &record_json(r))?;
            out.write_all(b"\n")?;
        } else {
            write_text(&mut out, r)?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// PHP's `unpack()` reads everything after a code up to `/` as the value's
/// name (`Nlen` is `N` named `len`); sockbox reads a format without `/` as
/// codes only, so `Nlen` means `N l e n`. When `format` failed but would
/// work read PHP's way (and unpack `data`, when given), say how to write it.
fn php_name_hint(format: &str, data: Option<&[u8]>) -> Option<String> {
    if format.contains('/') {
        return None;
    }
    let named = format!("{format}/");
    let f = Format::parse_as(&named, Dialect::Php).ok()?;
    if let Some(data) = data {
        f.unpack(data).ok()?;
    }
    Some(format!(
        " (to name a value as PHP's unpack does, end the name with '/': {named:?})"
    ))
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
/// when any value is named; unnamed ones are keyed by their 1-based position.
fn record_json(record: &[Entry]) -> Record {
    if record.iter().any(|e| e.name.is_some()) {
        Record::Object(
            record
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let key = e.name.clone().unwrap_or_else(|| (i + 1).to_string());
                    (key, value_json(&e.value))
                })
                .collect(),
        )
    } else {
        Record::Array(record.iter().map(|e| value_json(&e.value)).collect())
    }
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
