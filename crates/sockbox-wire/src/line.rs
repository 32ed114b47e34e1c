//! Line framing: lines are reassembled across reads (check-then-parse over
//! one buffer), never split or merged, and never buffered without bound.
//! Also the escaping that makes any line safe to print on a terminal.
//!
//! Sans-I/O: the caller reads into [`LineBuffer::buf_mut`] however it likes
//! (the chat server in `sockbox::chat` does, over TCP or TLS); this module
//! only frames. Nothing here panics on any input (fuzzed by `fuzz/chat_line`).

use std::fmt::Write as _;

use bytes::{Buf, BytesMut};

/// One complete input line, without its `\n` or `\r\n`.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes (at most the configured maximum).
    pub bytes: BytesMut,
    /// True when the line was longer than the maximum and was cut.
    pub cut: bool,
    /// True when the line ended in `\r\n`. For a cut line this depends on
    /// how the input was read: it is true only when the whole line, up to
    /// its `\r\n`, was in the buffer at once (a line cut earlier has its
    /// tail discarded unseen). Bytes and `cut` never depend on the reads.
    pub crlf: bool,
}

/// Reassembles lines from a byte stream.
///
/// Feed it by reading into [`LineBuffer::buf_mut`], then take complete lines
/// with [`LineBuffer::next_line`]. At most `max + 1` bytes of an unfinished
/// line are kept: a longer line is returned cut to `max` bytes (with
/// [`Line::cut`] set) and the rest of it, up to its newline, is discarded.
#[derive(Debug)]
pub struct LineBuffer {
    buf: BytesMut,
    max: usize,
    discarding: bool,
}

impl LineBuffer {
    /// A buffer for lines of at most `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max: max.max(1),
            discarding: false,
        }
    }

    /// The buffer to read more input into.
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// True when no partial line is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Free the buffer's memory when it holds nothing (idle connections).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// The next complete line, or `None` until more input arrives.
    pub fn next_line(&mut self) -> Option<Line> {
        loop {
            let newline = memchr::memchr(b'\n', &self.buf);
            if self.discarding {
                // Drop the tail of a cut line, up to and including its newline.
                if let Some(i) = newline {
                    self.buf.advance(i + 1);
                    self.discarding = false;
                    continue;
                }
                self.buf.clear();
                return None;
            }
            return match newline {
                Some(i) => {
                    let mut bytes = self.buf.split_to(i + 1);
                    bytes.truncate(i);
                    let crlf = bytes.last() == Some(&b'\r');
                    if crlf {
                        bytes.truncate(i - 1);
                    }
                    let cut = bytes.len() > self.max;
                    bytes.truncate(self.max);
                    Some(Line { bytes, cut, crlf })
                }
                // One byte of slack so a `\r` just before the newline fits.
                None if self.buf.len() > self.max + 1 => {
                    let bytes = self.buf.split_to(self.max);
                    self.buf.clear();
                    self.discarding = true;
                    Some(Line {
                        bytes,
                        cut: true,
                        crlf: false,
                    })
                }
                None => None,
            };
        }
    }

    /// At end of input: the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<Line> {
        if self.discarding || self.buf.is_empty() {
            self.buf.clear();
            return None;
        }
        let mut bytes = self.buf.split();
        if bytes.last() == Some(&b'\r') {
            bytes.truncate(bytes.len() - 1);
        }
        let cut = bytes.len() > self.max;
        bytes.truncate(self.max);
        Some(Line {
            bytes,
            cut,
            crlf: false,
        })
    }
}

/// True for bytes that are printed as they are on the fast path.
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

/// Characters that are escaped although valid: C0/C1 controls and DEL
/// (terminal escape sequences), and the bidirectional overrides that can
/// make text display differently from what it is.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Append `line` to `out` made safe for a terminal: control characters
/// become `\xNN` (or `\u{NNNN}` above ASCII), invalid UTF-8 bytes become
/// `\xNN`; everything else, including valid UTF-8 text, is copied.
pub fn escape_into(out: &mut BytesMut, line: &[u8]) {
    if line.iter().all(|&b| plain(b)) {
        out.extend_from_slice(line);
        return;
    }
    let mut tmp = String::new();
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if !needs_escape(c) {
                tmp.push(c);
            } else if (c as u32) < 0x80 {
                let _ = write!(tmp, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(tmp, "\\u{{{:04x}}}", c as u32);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(tmp, "\\x{b:02x}");
        }
    }
    out.extend_from_slice(tmp.as_bytes());
}

/// `escape_into` as a `String` (for logs and tests).
pub fn escape(line: &[u8]) -> String {
    let mut out = BytesMut::new();
    escape_into(&mut out, line);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl LineBuffer {
        fn next_line_of(mut self, data: &[u8]) -> Line {
            self.buf_mut().extend_from_slice(data);
            self.next_line().unwrap()
        }
    }

    fn feed(lb: &mut LineBuffer, data: &[u8]) -> Vec<(Vec<u8>, bool)> {
        lb.buf_mut().extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(l) = lb.next_line() {
            out.push((l.bytes.to_vec(), l.cut));
        }
        out
    }

    #[test]
    fn lines_across_reads_lf_and_crlf() {
        let mut lb = LineBuffer::new(100);
        assert!(feed(&mut lb, b"hel").is_empty());
        assert_eq!(feed(&mut lb, b"lo\r"), vec![]);
        let got = feed(&mut lb, b"\nworld\nx");
        assert_eq!(
            got,
            vec![(b"hello".to_vec(), false), (b"world".to_vec(), false)]
        );
        assert_eq!(lb.finish().unwrap().bytes.as_ref(), b"x");
        assert!(lb.finish().is_none());
    }

    #[test]
    fn crlf_flag_and_empty_lines() {
        let mut lb = LineBuffer::new(10);
        lb.buf_mut().extend_from_slice(b"a\r\n\nb\n");
        let l = lb.next_line().unwrap();
        assert!(l.crlf);
        assert_eq!(l.bytes.as_ref(), b"a");
        let l = lb.next_line().unwrap();
        assert!(!l.crlf && l.bytes.is_empty());
        assert_eq!(lb.next_line().unwrap().bytes.as_ref(), b"b");
    }

    #[test]
    fn long_line_is_cut_and_rest_discarded_without_buffering() {
        let mut lb = LineBuffer::new(4);
        let got = feed(&mut lb, b"abcdefgh");
        assert_eq!(got, vec![(b"abcd".to_vec(), true)]);
        assert!(lb.is_empty(), "the rest is discarded, not kept");
        assert!(feed(&mut lb, b"ijklmnop").is_empty());
        assert!(lb.is_empty());
        let got = feed(&mut lb, b"qr\nok\n");
        assert_eq!(got, vec![(b"ok".to_vec(), false)]);
    }

    #[test]
    fn long_line_within_one_read_is_cut() {
        let mut lb = LineBuffer::new(4);
        let got = feed(&mut lb, b"abcdefgh\nxy\n");
        assert_eq!(got, vec![(b"abcd".to_vec(), true), (b"xy".to_vec(), false)]);
        // Exactly max bytes plus CRLF is not cut.
        let got = feed(&mut lb, b"abcd\r");
        assert!(got.is_empty());
        let got = feed(&mut lb, b"\n");
        assert_eq!(got, vec![(b"abcd".to_vec(), false)]);
    }

    /// Found by the `chat_line` fuzz target: only the `crlf` flag of a cut
    /// line may depend on how the input was read; its bytes and `cut` do not.
    #[test]
    fn cut_line_is_the_same_however_it_is_read() {
        let whole = LineBuffer::new(4).next_line_of(b"abcdefgh\r\n");
        assert_eq!(
            (whole.bytes.as_ref(), whole.cut, whole.crlf),
            (&b"abcd"[..], true, true)
        );
        let mut lb = LineBuffer::new(4);
        assert_eq!(feed(&mut lb, b"abcdefg"), vec![(b"abcd".to_vec(), true)]);
        assert!(feed(&mut lb, b"h\r\nok\n") == vec![(b"ok".to_vec(), false)]);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape(b"plain text\twith tab"), "plain text\twith tab");
        assert_eq!(escape(b"\x1b[2Jclear"), "\\x1b[2Jclear");
        assert_eq!(
            escape("caf\u{e9} \u{9b}x".as_bytes()),
            "caf\u{e9} \\u{009b}x"
        );
        assert_eq!(escape(b"bad \xff\xfe utf8"), "bad \\xff\\xfe utf8");
        assert_eq!(escape(b"\x7f\x00"), "\\x7f\\x00");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(escape("\u{1f600} ok".as_bytes()), "\u{1f600} ok");
    }

    proptest! {
        /// However the input is chunked, the same lines come out, none longer than max.
        #[test]
        fn chunking_does_not_change_lines(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..10),
            max in 1usize..40,
        ) {
            let mut whole = LineBuffer::new(max);
            let mut expect = feed(&mut whole, &data);
            expect.extend(whole.finish().map(|l| (l.bytes.to_vec(), l.cut)));
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= data.len()).collect();
            cuts.sort_unstable();
            let mut lb = LineBuffer::new(max);
            let mut got = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                got.extend(feed(&mut lb, &data[start..c]));
                start = c;
                prop_assert!(lb.buf_mut().len() <= max + 1 + 1);
            }
            got.extend(lb.finish().map(|l| (l.bytes.to_vec(), l.cut)));
            for (l, _) in &got {
                prop_assert!(l.len() <= max);
                prop_assert!(!l.contains(&b'\n'));
            }
            prop_assert_eq!(got, expect);
        }

        /// Escaped output is valid UTF-8 with no control characters but tab.
        #[test]
        fn escaped_output_is_printable(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = BytesMut::new();
            escape_into(&mut out, &data);
            let s = std::str::from_utf8(&out).unwrap();
            prop_assert!(s.chars().all(|c| !needs_escape(c)));
        }
    }
}
