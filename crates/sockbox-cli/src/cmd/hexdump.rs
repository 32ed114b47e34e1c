//! `sockbox hexdump`: the canonical hex+ASCII dump, byte-identical to
//! `hexdump -C`, streamed in constant memory with large reads and writes.
//! The engine is the library's [`sockbox::hexdump`]; this is flags and
//! printing.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use sockbox::hexdump::{self, Dump, Input, Options};

use crate::exit::usage;

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
    #[arg(short = 's', long, value_name = "OFFSET", value_parser = crate::input::size)]
    pub skip: Option<u64>,
    /// Dump at most LENGTH bytes.
    #[arg(short = 'n', long, value_name = "LENGTH", value_parser = crate::input::size)]
    pub length: Option<u64>,
    /// Canonical format; accepted for `hexdump -C` habits (it is the only format).
    #[arg(short = 'C', hide = true)]
    pub canonical: bool,
}

/// Run `sockbox hexdump`: the library's [`sockbox::hexdump`] engine (every
/// core for regular files, streaming for pipes) writing to standard output.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let inputs: Vec<Input> = a
        .files
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                Input::Stdin
            } else {
                Input::Path(p.clone())
            }
        })
        .collect();
    // Open everything first, so a bad name fails before any output.
    let dump = Dump::open(&inputs).map_err(cli_error)?;
    // Unbuffered: the engine writes whole pieces of text.
    let out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let options = Options {
        no_squeeze: a.no_squeeze,
        skip: a.skip.unwrap_or(0),
        length: a.length,
        threads: None,
    };
    dump.write_to(&options, out).map_err(cli_error)?;
    Ok(0)
}

/// Unreadable inputs are the user's (exit 2); a failed write or thread is
/// the system's (exit 3; a closed pipe on stdout ends quietly).
fn cli_error(e: hexdump::Error) -> anyhow::Error {
    match e {
        hexdump::Error::Write(_) | hexdump::Error::Thread(_) => anyhow::Error::new(e),
        _ => usage(e.to_string()),
    }
}
