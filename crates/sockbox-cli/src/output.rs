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
