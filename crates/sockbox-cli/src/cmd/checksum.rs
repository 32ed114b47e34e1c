//! `sockbox checksum`: the RFC 1071 internet checksum of a file, stdin or a
//! hex string, or a check that data carrying its own checksum is intact.

use std::io::{ErrorKind, Read};
use std::path::PathBuf;

use sockbox_wire::checksum::Checksum;

use crate::exit::{PARTIAL, SUCCESS, usage};
use crate::input::{Source, parse_hex};

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
    /// several words are joined).
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
    if let Some(words) = &a.hex {
        c.add(&parse_hex(&words.join(" "))?);
    } else {
        let src = Source::from_arg(a.file.as_deref());
        let name = src.name();
        let mut r = src.open()?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                // Chunks of any length (odd ones too) accumulate correctly.
                Ok(n) => c.add(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(usage(format!("cannot read {name}: {e}"))),
            }
        }
    }
    if a.verify {
        if c.verify() {
            println!("ok");
            return Ok(SUCCESS);
        }
        println!(
            "bad checksum: the data sums to {:#06x}, not 0xffff",
            c.sum()
        );
        return Ok(PARTIAL);
    }
    let value = if a.sum { c.sum() } else { c.finish() };
    println!("{value:#06x}");
    Ok(SUCCESS)
}
