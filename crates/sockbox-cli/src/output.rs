//! Output helpers shared by subcommands: JSON lines and stdout writing.

use std::io::Write;

use serde::Serialize;

/// Write one JSON object on its own line and flush, so consumers see events
/// as they happen.
pub fn json_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
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
