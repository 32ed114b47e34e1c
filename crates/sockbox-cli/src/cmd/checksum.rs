//! `sockbox checksum`: the RFC 1071 internet checksum of a file, stdin or a
//! hex string, or a check that data carrying its own checksum is intact.

use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;

use sockbox_wire::checksum::Checksum;
use sockbox_wire::hex::{self, TextDecoder, TextError};

use crate::exit::{PARTIAL, SUCCESS, usage};
use crate::input::{Source, parse_hex, show_byte};

const AFTER_HELP: &str = "\
Output: the checksum to write into a header, as 0x followed by four lowercase hex digits
(the complement of the one's-complement sum). --sum prints the sum itself instead.
With --verify the data must already contain its checksum (an IPv4 header, an ICMP message):
prints `ok` and exits 0 when it sums to 0xffff, else prints what it sums to and exits 1.

Examples:
  sockbox checksum --hex '4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7'   # 0xb861
  sockbox checksum --verify --hex 450000730000400040 11b861c0a80001c0a800c7     # ok
  sockbox checksum packet.bin
  head -c 20 capture.bin | sockbox checksum --verify -
  tr -d ' ' < header.txt | sockbox checksum --hex -                        # hex text on stdin

An empty FILE or standard input sums to nothing: 0xffff, with a note on stderr. Hex text
without a single digit is an error.

Exit codes: 0 success (--verify: checksum right); 1 --verify: checksum wrong;
2 unreadable file or bad hex.";

/// Arguments of `sockbox checksum`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// File to read; `-` or nothing reads standard input.
    #[arg(value_name = "FILE", conflicts_with = "hex")]
    pub file: Option<PathBuf>,
    /// Take the bytes from this hex string (spaces and colons allowed;
    /// several words are joined). `--hex -` reads hex text from standard
    /// input.
    #[arg(long, value_name = "STR", num_args = 1.., allow_hyphen_values = false)]
    pub hex: Option<Vec<String>>,
    /// Check that the data, which contains its checksum, sums to 0xffff.
    #[arg(long, conflicts_with = "sum")]
    pub verify: bool,
    /// Print the one's-complement sum instead of the checksum.
    #[arg(long)]
    pub sum: bool,
}

/// Run `sockbox checksum`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let mut c = Checksum::new();
    match a.hex.as_deref() {
        Some([only]) if only == "-" => add_hex_text(&mut c)?,
        Some(words) => add_hex_words(&mut c, words)?,
        None => add_file(&mut c, &Source::from_arg(a.file.as_deref()))?,
    }
    let mut out = std::io::stdout().lock();
    if a.verify {
        if c.verify() {
            writeln!(out, "ok")?;
            return Ok(SUCCESS);
        }
        writeln!(
            out,
            "bad checksum: the data sums to {:#06x}, not 0xffff",
            c.sum()
        )?;
        return Ok(PARTIAL);
    }
    let value = if a.sum { c.sum() } else { c.finish() };
    writeln!(out, "{value:#06x}")?;
    Ok(SUCCESS)
}

/// `--hex WORD...`: the words joined. A later word that names a file, or
/// is `-`, is the FILE argument swallowed by `--hex`: say so.
fn add_hex_words(c: &mut Checksum, words: &[String]) -> anyhow::Result<()> {
    for w in words.iter().skip(1) {
        let is_hex = w
            .bytes()
            .all(|b| hex::digit(b).is_some() || hex::is_separator(b));
        if w == "-" || (!is_hex && std::path::Path::new(w).exists()) {
            return Err(usage(format!(
                "--hex and FILE conflict: {w:?} follows the --hex words; checksum either \
                 hex text (--hex STR, or --hex - to read it from standard input) or a FILE"
            )));
        }
    }
    let bytes = parse_hex(&words.join(" "))?;
    if bytes.is_empty() {
        return Err(usage("--hex: no hex digits given, so nothing to checksum"));
    }
    c.add(&bytes);
    Ok(())
}

/// `--hex -`: hex text from standard input, decoded as it arrives.
fn add_hex_text(c: &mut Checksum) -> anyhow::Result<()> {
    const WHAT: &str = "standard input (--hex -)";
    const HINT: &str = "--hex - reads hex text; to checksum binary data, drop --hex";
    let mut d = TextDecoder::new();
    let mut bytes = Vec::new();
    each_chunk(&Source::Stdin, |chunk| {
        bytes.clear();
        d.push(chunk, &mut bytes).map_err(|e| {
            let TextError::NotHex { offset, byte } = e else {
                return usage(format!("{WHAT}: {e}"));
            };
            usage(format!(
                "{WHAT}: {} at offset {offset} is not a hex digit ({HINT})",
                show_byte(byte)
            ))
        })?;
        c.add(&bytes);
        Ok(())
    })?;
    let digits = d.digits();
    d.finish()
        .map_err(|e| usage(format!("{WHAT}: {e} ({HINT})")))?;
    if digits == 0 {
        return Err(usage(format!(
            "{WHAT} holds no hex digits, so nothing to checksum"
        )));
    }
    Ok(())
}

/// The bytes of FILE or standard input. An empty input is summed (its
/// checksum is 0xffff) with a note, since it is usually a mistake.
fn add_file(c: &mut Checksum, src: &Source) -> anyhow::Result<()> {
    let mut total = 0u64;
    each_chunk(src, |chunk| {
        total += chunk.len() as u64;
        c.add(chunk);
        Ok(())
    })?;
    if total == 0 {
        crate::output::note(format_args!(
            "{} is empty: the checksum of no bytes is 0xffff",
            src.name()
        ));
    }
    Ok(())
}

/// Read `src` in chunks (any length, odd ones too: they accumulate
/// correctly), calling `f` on each.
fn each_chunk(src: &Source, mut f: impl FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let name = src.name();
    let mut r = src.open()?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(&buf[..n])?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(usage(format!("cannot read {name}: {e}"))),
        }
    }
}
