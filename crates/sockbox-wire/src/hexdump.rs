//! Canonical hex+ASCII dump, byte-identical to `hexdump -C`.
//!
//! Each line shows an 8-digit hex offset, 16 bytes in two groups of 8, and
//! the bytes as ASCII between bars (`.` for anything not printable). A run of
//! full lines identical to the line before collapses into one `*` line, and
//! the dump ends with the total length on a line of its own. An empty input
//! prints nothing.
//!
//! [`Dumper`] streams: feed it any number of slices, then [`Dumper::finish`].
//! [`write_line`] formats one line on its own, for callers that tag chunks
//! themselves (the relay's `-x` dump).

use std::fmt::Write as _;

/// Bytes per dump line.
pub const LINE_BYTES: usize = 16;

/// Length of one full line including the newline.
pub const LINE_LEN: usize = 10 + 49 + 2 + LINE_BYTES + 2;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Column of the `|` that opens the ASCII part (after offset and hex area).
pub const ASCII_COL: usize = 10 + 49 + 1;

/// Append one dump line for `bytes` (at most 16) at `offset` to `out`,
/// newline included. Shorter slices are padded like `hexdump -C` pads the
/// last line.
pub fn write_line(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    debug_assert!(bytes.len() <= LINE_BYTES);
    let bytes = &bytes[..bytes.len().min(LINE_BYTES)];
    write_offset(out, offset);
    out.extend_from_slice(b"  ");
    let start = out.len();
    // Hex area: 49 columns, space-filled, bytes at i*3 (+1 after the 8th).
    out.resize(start + 49, b' ');
    for (i, &b) in bytes.iter().enumerate() {
        let pos = start + i * 3 + usize::from(i >= 8);
        out[pos] = HEX[usize::from(b >> 4)];
        out[pos + 1] = HEX[usize::from(b & 0x0f)];
    }
    out.extend_from_slice(b" |");
    out.extend(bytes.iter().map(|&b| printable(b)));
    out.extend_from_slice(b"|\n");
}

/// The ASCII column's character for `b`.
#[inline]
pub fn printable(b: u8) -> u8 {
    if (0x20..0x7f).contains(&b) { b } else { b'.' }
}

/// `%08x` of `offset` (more digits when it needs them).
fn write_offset(out: &mut Vec<u8>, offset: u64) {
    if offset <= 0xffff_ffff {
        let o = offset as u32;
        for shift in (0..8).rev() {
            out.push(HEX[((o >> (shift * 4)) & 0xf) as usize]);
        }
    } else {
        let mut s = String::with_capacity(16);
        let _ = write!(s, "{offset:08x}");
        out.extend_from_slice(s.as_bytes());
    }
}

/// A streaming `hexdump -C`: call [`Dumper::push`] with input in slices of
/// any size, then [`Dumper::finish`]. Output is appended to caller buffers so
/// the caller decides when to write.
#[derive(Debug, Clone)]
pub struct Dumper {
    offset: u64,
    /// The last full line printed or skipped, for `*` squeezing.
    prev: Option<[u8; LINE_BYTES]>,
    squeezing: bool,
    squeeze_enabled: bool,
    partial: [u8; LINE_BYTES],
    partial_len: usize,
}

impl Default for Dumper {
    fn default() -> Self {
        Self::new()
    }
}

impl Dumper {
    /// A dumper starting at offset 0, squeezing repeated lines like `hexdump -C`.
    pub fn new() -> Self {
        Self {
            offset: 0,
            prev: None,
            squeezing: false,
            squeeze_enabled: true,
            partial: [0; LINE_BYTES],
            partial_len: 0,
        }
    }

    /// Print every line, never `*` (like `hexdump -C -v`).
    #[must_use]
    pub fn no_squeeze(mut self) -> Self {
        self.squeeze_enabled = false;
        self
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset + self.partial_len as u64
    }

    /// Dump `data`, appending complete lines to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        if self.partial_len > 0 {
            let take = (LINE_BYTES - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < LINE_BYTES {
                return;
            }
            let line = self.partial;
            self.partial_len = 0;
            self.full_line(&line, out);
        }
        out.reserve((data.len() / LINE_BYTES + 1) * LINE_LEN);
        let mut chunks = data.chunks_exact(LINE_BYTES);
        for chunk in &mut chunks {
            let mut line = [0u8; LINE_BYTES];
            line.copy_from_slice(chunk);
            self.full_line(&line, out);
        }
        let rest = chunks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn full_line(&mut self, line: &[u8; LINE_BYTES], out: &mut Vec<u8>) {
        if self.squeeze_enabled && self.prev.as_ref() == Some(line) {
            if !self.squeezing {
                out.extend_from_slice(b"*\n");
                self.squeezing = true;
            }
        } else {
            write_line(out, self.offset, line);
            self.squeezing = false;
            self.prev = Some(*line);
        }
        self.offset += LINE_BYTES as u64;
    }

    /// Flush the last partial line and the final offset line. Prints nothing
    /// for an empty input.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.partial_len > 0 {
            let n = self.partial_len;
            write_line(out, self.offset, &self.partial[..n]);
            self.offset += n as u64;
            self.partial_len = 0;
        }
        if self.offset > 0 {
            write_offset(out, self.offset);
            out.push(b'\n');
        }
    }
}

/// The whole `hexdump -C` output for `data`.
pub fn dump(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((data.len() / LINE_BYTES + 2) * LINE_LEN);
    let mut d = Dumper::new();
    d.push(data, &mut out);
    d.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn short_line_is_padded() {
        assert_eq!(
            s(&dump(b"hello\n")),
            "00000000  68 65 6c 6c 6f 0a                                 |hello.|\n00000006\n"
        );
    }

    #[test]
    fn eight_bytes() {
        assert_eq!(
            s(&dump(b"01234567")),
            "00000000  30 31 32 33 34 35 36 37                           |01234567|\n00000008\n"
        );
    }

    #[test]
    fn repeated_lines_squeeze_and_partial_tail_does_not() {
        let mut data = vec![0u8; 32];
        data.extend_from_slice(b"abc");
        assert_eq!(
            s(&dump(&data)),
            "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n\
             *\n\
             00000020  61 62 63                                          |abc|\n\
             00000023\n"
        );
    }

    #[test]
    fn full_lines_then_star_then_final_offset() {
        let data = b"0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            s(&dump(data)),
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n\
             *\n\
             00000020  30 31 32 33 34 35 36 37                           |01234567|\n\
             00000028\n"
        );
    }

    #[test]
    fn empty_input_prints_nothing() {
        assert!(dump(b"").is_empty());
    }

    #[test]
    fn streaming_in_odd_slices_matches_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = dump(&data);
        for step in [1, 3, 15, 16, 17, 100] {
            let mut d = Dumper::new();
            let mut out = Vec::new();
            for c in data.chunks(step) {
                d.push(c, &mut out);
            }
            d.finish(&mut out);
            assert_eq!(out, whole, "step {step}");
        }
    }

    #[test]
    fn large_offsets_grow_past_eight_digits() {
        let mut out = Vec::new();
        write_line(&mut out, 0x1_0000_0000, b"A");
        assert!(s(&out).starts_with("100000000  41 "));
    }

    #[test]
    fn ascii_column_position_is_fixed() {
        let mut out = Vec::new();
        write_line(&mut out, 0, b"x");
        assert_eq!(out[ASCII_COL], b'|');
    }
}
