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
//!
//! # Speed
//!
//! Full lines go through a fast path: a constant line template is copied and
//! only the offset, the 32 hex digits and the 16 ASCII characters are filled
//! in from lookup tables, on fixed-size arrays so the compiler drops the
//! bounds checks. Squeezing compares lines as one `u128`. The formatter
//! writes several GB/s of text; see `benches/wire.rs`. Because a `*` line
//! only depends on the two lines before it, [`Dumper::continuing`] lets a
//! caller cut a large input into line-aligned pieces and format them on
//! several threads (the CLI does this for regular files).
//!
//! # Panics
//!
//! Nothing here panics, whatever the input.

use std::fmt::Write as _;

/// Bytes per dump line.
pub const LINE_BYTES: usize = 16;

/// Length of one full line including the newline.
pub const LINE_LEN: usize = 10 + 49 + 2 + LINE_BYTES + 2;

/// Column of the `|` that opens the ASCII part (after offset and hex area).
pub const ASCII_COL: usize = 10 + 49 + 1;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lowercase hex digits for every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    t
};

/// Column of the first hex digit of byte `i` of a line.
const fn hex_col(i: usize) -> usize {
    10 + i * 3 + if i >= 8 { 1 } else { 0 }
}

/// A full line with every variable column still to be filled in.
const TEMPLATE: [u8; LINE_LEN] = {
    let mut t = [b' '; LINE_LEN];
    t[ASCII_COL] = b'|';
    t[LINE_LEN - 2] = b'|';
    t[LINE_LEN - 1] = b'\n';
    t
};

/// Append one dump line for `bytes` (at most 16) at `offset` to `out`,
/// newline included. Shorter slices are padded like `hexdump -C` pads the
/// last line; bytes past the 16th are ignored.
pub fn write_line(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(LINE_BYTES)];
    if let (Ok(full), Ok(off)) = (<&[u8; LINE_BYTES]>::try_from(bytes), u32::try_from(offset)) {
        out.extend_from_slice(&full_line(off, full));
        return;
    }
    write_offset(out, offset);
    out.extend_from_slice(b"  ");
    let start = out.len();
    // Hex area: 49 columns, space-filled, bytes at i*3 (+1 after the 8th).
    out.resize(start + 49, b' ');
    for (i, &b) in bytes.iter().enumerate() {
        let pos = start + hex_col(i) - 10;
        out[pos..pos + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    out.extend_from_slice(b" |");
    out.extend(bytes.iter().map(|&b| printable(b)));
    out.extend_from_slice(b"|\n");
}

/// One full 16-byte line at a 32-bit offset: the hot path.
#[inline]
fn full_line(offset: u32, line: &[u8; LINE_BYTES]) -> [u8; LINE_LEN] {
    let mut l = TEMPLATE;
    fill_line(&mut l, offset, line);
    l
}

/// Fill the variable columns of a line that already holds [`TEMPLATE`].
#[inline]
fn fill_line(l: &mut [u8; LINE_LEN], offset: u32, line: &[u8; LINE_BYTES]) {
    let o = offset.to_be_bytes();
    for (k, &b) in o.iter().enumerate() {
        l[2 * k..2 * k + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    for (i, &b) in line.iter().enumerate() {
        let c = hex_col(i);
        l[c..c + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    let ascii = &mut l[ASCII_COL + 1..ASCII_COL + 1 + LINE_BYTES];
    for (a, &b) in ascii.iter_mut().zip(line) {
        *a = printable(b);
    }
}

/// The ASCII column's character for `b`.
#[inline]
pub fn printable(b: u8) -> u8 {
    if (0x20..0x7f).contains(&b) { b } else { b'.' }
}

/// `%08x` of `offset` (more digits when it needs them).
fn write_offset(out: &mut Vec<u8>, offset: u64) {
    if let Ok(o) = u32::try_from(offset) {
        for b in o.to_be_bytes() {
            out.extend_from_slice(&HEX_PAIRS[usize::from(b)]);
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
    /// Offset of the next full line (bytes in `partial` not counted).
    offset: u64,
    /// The last full line printed or skipped, for `*` squeezing.
    prev: Option<u128>,
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
        Self::starting_at(0)
    }

    /// A dumper whose first byte is labelled `offset`, as `hexdump -C -s
    /// OFFSET` labels the bytes after the skipped ones. The final offset line
    /// is printed even when no byte follows, as `hexdump` does when the skip
    /// reaches the end of the input.
    pub fn starting_at(offset: u64) -> Self {
        Self {
            offset,
            prev: None,
            squeezing: false,
            squeeze_enabled: true,
            partial: [0; LINE_BYTES],
            partial_len: 0,
        }
    }

    /// A dumper for one piece of a longer input, so pieces can be formatted
    /// in parallel. The piece starts on a line boundary; `offset` labels its
    /// first byte and `before` holds the input just before it: its last 32
    /// bytes are enough (fewer only when the input began less than 32 bytes
    /// earlier; then pass all of them).
    ///
    /// Concatenating the output of such dumpers over consecutive pieces, with
    /// [`Dumper::finish`] called only for the last, gives exactly the output
    /// of one dumper over the whole input: the `*` state carries over
    /// because a skipped line always equals the line before it.
    pub fn continuing(offset: u64, before: &[u8]) -> Self {
        /// The full line of `before` ending at `end`.
        fn line(before: &[u8], end: usize) -> Option<u128> {
            let start = end.checked_sub(LINE_BYTES)?;
            let bytes: &[u8; LINE_BYTES] = before.get(start..end)?.try_into().ok()?;
            Some(u128::from_ne_bytes(*bytes))
        }
        let mut d = Self::starting_at(offset);
        d.prev = line(before, before.len());
        let earlier = before
            .len()
            .checked_sub(LINE_BYTES)
            .and_then(|end| line(before, end));
        d.squeezing = d.prev.is_some() && d.prev == earlier;
        d
    }

    /// Print every line, never `*` (like `hexdump -C -v`).
    #[must_use]
    pub fn no_squeeze(mut self) -> Self {
        self.squeeze_enabled = false;
        self
    }

    /// Bytes consumed so far (plus the starting offset).
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
            self.full_lines(&[line], out);
        }
        let (lines, rest) = data.as_chunks::<LINE_BYTES>();
        self.full_lines(lines, out);
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// The hot loop over whole lines; state lives in locals meanwhile.
    fn full_lines(&mut self, lines: &[[u8; LINE_BYTES]], out: &mut Vec<u8>) {
        out.reserve(lines.len() * LINE_LEN);
        let mut offset = self.offset;
        let mut prev = self.prev;
        let mut squeezing = self.squeezing;
        let squeeze = self.squeeze_enabled;
        for line in lines {
            let v = u128::from_ne_bytes(*line);
            if squeeze && prev == Some(v) {
                if !squeezing {
                    out.extend_from_slice(b"*\n");
                    squeezing = true;
                }
            } else {
                match u32::try_from(offset) {
                    Ok(o) => {
                        let at = out.len();
                        out.extend_from_slice(&TEMPLATE);
                        if let Some(dst) = out[at..].first_chunk_mut::<LINE_LEN>() {
                            fill_line(dst, o, line);
                        }
                    }
                    Err(_) => write_line(out, offset, line),
                }
                squeezing = false;
                prev = Some(v);
            }
            offset = offset.wrapping_add(LINE_BYTES as u64);
        }
        self.offset = offset;
        self.prev = prev;
        self.squeezing = squeezing;
    }

    /// Flush the last partial line and the final offset line. Prints nothing
    /// for an empty input that started at offset 0.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.partial_len > 0 {
            let n = self.partial_len;
            write_line(out, self.offset, &self.partial[..n]);
            self.offset = self.offset.wrapping_add(n as u64);
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
    fn pieces_dumped_separately_concatenate_to_the_whole() {
        // Runs of equal lines that straddle piece boundaries in every way.
        let mut data = vec![0u8; 16 * 7];
        data.extend_from_slice(&[1u8; 16]);
        data.extend_from_slice(&[0u8; 16 * 3]);
        data.extend_from_slice(b"tail");
        for squeeze in [true, false] {
            let mut whole_d = Dumper::new();
            if !squeeze {
                whole_d = whole_d.no_squeeze();
            }
            let mut whole = Vec::new();
            whole_d.push(&data, &mut whole);
            whole_d.finish(&mut whole);
            for piece in [16, 32, 48, 64] {
                let mut out = Vec::new();
                let mut start = 0;
                let mut last = None;
                while start < data.len() {
                    let end = (start + piece).min(data.len());
                    let before = &data[start.saturating_sub(32)..start];
                    let mut d = Dumper::continuing(start as u64, before);
                    if !squeeze {
                        d = d.no_squeeze();
                    }
                    d.push(&data[start..end], &mut out);
                    last = Some(d);
                    start = end;
                }
                last.unwrap().finish(&mut out);
                assert_eq!(s(&out), s(&whole), "piece {piece} squeeze {squeeze}");
            }
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

    proptest::proptest! {
        /// Lines drawn from a tiny alphabet so runs of repeats are common;
        /// any line-aligned split into pieces reproduces the one-shot dump.
        #[test]
        fn pieces_match_whole_for_any_split(
            lines in proptest::collection::vec(0u8..3, 0..40),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
            cuts in proptest::collection::vec(1usize..6, 1..10),
        ) {
            let mut data: Vec<u8> = lines.iter().flat_map(|&l| [l; LINE_BYTES]).collect();
            data.extend_from_slice(&tail);
            let whole = dump(&data);
            let mut out = Vec::new();
            let mut start = 0;
            let mut d = Dumper::new();
            for lines_in_piece in cuts.iter().cycle() {
                if start >= data.len() {
                    break;
                }
                let end = (start + lines_in_piece * LINE_BYTES).min(data.len());
                d = Dumper::continuing(start as u64, &data[start.saturating_sub(32)..start]);
                d.push(&data[start..end], &mut out);
                start = end;
            }
            d.finish(&mut out);
            proptest::prop_assert_eq!(out, whole);
        }
    }
}
