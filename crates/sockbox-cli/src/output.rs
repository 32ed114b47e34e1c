//! Output helpers shared by subcommands: JSON lines, stdout writing, and
//! standard-error lines that never panic.

use std::fmt;
use std::io::Write;

use serde::Serialize;

/// Write one JSON object on its own line and flush, so consumers see events
/// as they happen. Serialized first: a failed write is then an `io::Error`
/// (so a closed pipe ends quietly), not one hidden inside serde_json's.
pub fn json_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()?;
    Ok(())
}

/// Write one line to standard error, ignoring failure. A closed or full
/// standard error (`2>&-` with SIGPIPE ignored, `2>/dev/full`) has nowhere
/// to report to, and must neither panic (as `eprintln!` does) nor change
/// the exit code. The line goes out in one `write`.
pub fn stderr_line(args: fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `eprintln!` that never panics: see [`stderr_line`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}
pub(crate) use errln;

/// `sockbox: note: …` on standard error (see [`stderr_line`]).
pub fn note(args: fmt::Arguments<'_>) {
    stderr_line(format_args!("sockbox: note: {args}"));
}

/// Lower-case hex of `b`, two digits a byte, nothing between (the `hex`
/// fields of JSON output).
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_and_unseparated() {
        assert_eq!(super::hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(super::hex(&[]), "");
    }
}
