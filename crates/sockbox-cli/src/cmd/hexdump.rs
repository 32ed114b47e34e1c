//! `sockbox hexdump`: the canonical hex+ASCII dump, byte-identical to
//! `hexdump -C`, streamed in constant memory with large reads and writes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

use sockbox_wire::hexdump::{Dumper, LINE_BYTES, LINE_LEN};

use crate::exit::usage;

/// Bytes read per `read` call.
const READ_BLOCK: usize = 1 << 18;

/// Arguments of `sockbox hexdump`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output is byte-identical to `hexdump -C` (same `*` lines for repeated rows,
same final offset line), only much faster.

OFFSET and LENGTH take decimal, 0x-prefixed hex or 0-prefixed octal numbers,
with an optional suffix as hexdump takes them: K, M, G, T (or KiB, MiB…) for
powers of 1024, KB, MB, GB, TB for powers of 1000.

Examples:
  sockbox hexdump /bin/true | head
  printf 'hello\\n' | sockbox hexdump
  sockbox hexdump -s 1K -n 64 disk.img
  sockbox hexdump -v capture.bin > capture.txt

Exit codes: 0 success; 2 unreadable input or bad option; 3 system failure.")]
pub struct Args {
    /// Files to dump, one after the other as one stream; `-` or nothing for stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print every line instead of `*` for repeated lines (like `hexdump -v`).
    #[arg(short = 'v', long = "no-squeeze")]
    pub no_squeeze: bool,
    /// Skip OFFSET bytes of input first; offsets shown count from the start.
    #[arg(short = 's', long, value_name = "OFFSET", value_parser = parse_size)]
    pub skip: Option<u64>,
    /// Dump at most LENGTH bytes.
    #[arg(short = 'n', long, value_name = "LENGTH", value_parser = parse_size)]
    pub length: Option<u64>,
    /// Canonical format; accepted for `hexdump -C` habits (it is the only format).
    #[arg(short = 'C', hide = true)]
    pub canonical: bool,
}

/// One input, opened.
struct Input {
    name: String,
    reader: Box<dyn Read>,
    /// A regular file that can seek past skipped bytes.
    file: Option<File>,
    /// Length, when known (regular files).
    len: Option<u64>,
}

/// Run `sockbox hexdump`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    // Open everything first, so a bad name fails before any output.
    let mut inputs = open_inputs(&a.files)?;
    let mut remaining = a.length.unwrap_or(u64::MAX);
    let mut out_file = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    if remaining == 0 {
        return Ok(0);
    }

    let skipped = skip(&mut inputs, a.skip.unwrap_or(0))?;
    let mut dumper = Dumper::starting_at(skipped);
    if a.no_squeeze {
        dumper = dumper.no_squeeze();
    }
    let mut buf = vec![0u8; READ_BLOCK];
    let mut out = Vec::with_capacity((READ_BLOCK / LINE_BYTES + 4) * LINE_LEN);
    for input in &mut inputs {
        while remaining > 0 {
            let want = usize::try_from(remaining).map_or(READ_BLOCK, |r| r.min(READ_BLOCK));
            let n = read_some(input, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            remaining -= n as u64;
            dumper.push(&buf[..n], &mut out);
            out_file.write_all(&out)?;
            out.clear();
        }
    }
    dumper.finish(&mut out);
    out_file.write_all(&out)?;
    out_file.flush()?;
    Ok(0)
}

fn open_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    if files.is_empty() {
        return Ok(vec![stdin_input()]);
    }
    files
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                return Ok(stdin_input());
            }
            let name = p.display().to_string();
            let f = File::open(p).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
            let meta = f
                .metadata()
                .map_err(|e| usage(format!("cannot read {name}: {e}")))?;
            if meta.is_dir() {
                return Err(usage(format!("cannot read {name}: it is a directory")));
            }
            let (file, len) = if meta.is_file() {
                (Some(f.try_clone()?), Some(meta.len()))
            } else {
                (None, None)
            };
            Ok(Input {
                name,
                reader: Box::new(f),
                file,
                len,
            })
        })
        .collect()
}

fn stdin_input() -> Input {
    Input {
        name: "standard input".to_owned(),
        reader: Box::new(io::stdin().lock()),
        file: None,
        len: None,
    }
}

/// Read into `buf`, retrying on EINTR; a read error names the input.
fn read_some(input: &mut Input, buf: &mut [u8]) -> anyhow::Result<usize> {
    loop {
        match input.reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(usage(format!("cannot read {}: {e}", input.name))),
        }
    }
}

/// Skip `n` bytes across the inputs (seeking regular files, reading the
/// rest); returns how many bytes were actually skipped.
fn skip(inputs: &mut [Input], mut n: u64) -> anyhow::Result<u64> {
    let mut skipped = 0;
    let mut scratch = Vec::new();
    for input in inputs {
        if n == 0 {
            break;
        }
        if let (Some(f), Some(len)) = (&mut input.file, input.len) {
            let step = n.min(len);
            f.seek(SeekFrom::Start(step))
                .map_err(|e| usage(format!("cannot seek in {}: {e}", input.name)))?;
            n -= step;
            skipped += step;
            continue;
        }
        scratch.resize(READ_BLOCK, 0);
        while n > 0 {
            let want = usize::try_from(n).map_or(READ_BLOCK, |r| r.min(READ_BLOCK));
            let got = read_some(input, &mut scratch[..want])?;
            if got == 0 {
                break;
            }
            n -= got as u64;
            skipped += got as u64;
        }
    }
    Ok(skipped)
}

/// Parse a size like `hexdump -s` does: decimal, `0x` hex or `0` octal,
/// then an optional K/M/G/T/P/E suffix (`KiB` = 1024, `KB` = 1000).
pub fn parse_size(s: &str) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_like_hexdump() {
        assert_eq!(parse_size("16"), Ok(16));
        assert_eq!(parse_size("010"), Ok(8));
        assert_eq!(parse_size("0x10"), Ok(16));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert!(parse_size("1b").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("-5").is_err());
        assert!(
            parse_size("99999999999E")
                .unwrap_err()
                .contains("too large")
        );
    }
}
