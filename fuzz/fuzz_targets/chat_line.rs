//! Fuzz chat line framing (`sockbox_wire::line`): arbitrary bytes fed in
//! arbitrary chunk splits never panic, never yield a line longer than the
//! cap or holding a newline, never buffer more than the cap allows, and give
//! exactly the lines the same input gives in one chunk (chunking never
//! splits or merges a line). Escaped lines are printable UTF-8.
//!
//! Input layout: byte 0 picks the cap (1..=64), byte 1 the number of chunk
//! lengths that follow (0..=15), then one byte per chunk length; the rest is
//! the stream (whatever the chunks leave over is the last chunk).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::line::{LineBuffer, escape_into};

/// One line as the test compares it: bytes, cut, crlf. The `crlf` flag of
/// a cut line depends on the reads by design (the tail of a line cut before
/// its newline arrived is discarded unseen), so it is kept false here.
type Got = (Vec<u8>, bool, bool);

fn seen(l: &sockbox_wire::line::Line) -> Got {
    (l.bytes.to_vec(), l.cut, l.crlf && !l.cut)
}

/// Feed `chunk`, drain every complete line, check the buffer stays bounded.
fn feed(lb: &mut LineBuffer, chunk: &[u8], max: usize, out: &mut Vec<Got>) {
    lb.buf_mut().extend_from_slice(chunk);
    // Each call consumes input or returns None: at most one line per byte, plus one.
    for _ in 0..=chunk.len() + 1 {
        let Some(l) = lb.next_line() else { break };
        out.push(seen(&l));
    }
    assert!(lb.next_line().is_none(), "lines left after draining");
    assert!(lb.buf_mut().len() <= max + 1, "unfinished line buffered past the cap");
}

fn finish(lb: &mut LineBuffer, out: &mut Vec<Got>) -> bool {
    match lb.finish() {
        Some(l) => {
            assert!(!l.crlf);
            out.push(seen(&l));
            true
        }
        None => false,
    }
}

fuzz_target!(|input: &[u8]| {
    let [cap, n, rest @ ..] = input else { return };
    let max = 1 + usize::from(*cap % 64);
    let n = usize::from(*n % 16).min(rest.len());
    let (lens, data) = rest.split_at(n);

    let mut whole = LineBuffer::new(max);
    let mut expect = Vec::new();
    feed(&mut whole, data, max, &mut expect);
    let framed = expect.len();
    let unterminated = finish(&mut whole, &mut expect);

    let mut lb = LineBuffer::new(max);
    let mut got = Vec::new();
    let mut pos = 0;
    for &len in lens {
        let end = (pos + usize::from(len)).min(data.len());
        feed(&mut lb, &data[pos..end], max, &mut got);
        pos = end;
    }
    feed(&mut lb, &data[pos..], max, &mut got);
    finish(&mut lb, &mut got);
    assert!(lb.is_empty());
    assert_eq!(got, expect, "chunking changed the lines");

    for (bytes, _, _) in &got {
        assert!(bytes.len() <= max, "line longer than the cap");
        assert!(!bytes.contains(&b'\n'), "line holds a newline");
        let mut esc = bytes::BytesMut::new();
        escape_into(&mut esc, bytes);
        let s = std::str::from_utf8(&esc).expect("escaped output is UTF-8");
        assert!(s.chars().all(|c| c == '\t' || !c.is_control()));
    }

    // Without cuts nothing is lost: the framed lines and their terminators
    // rebuild the input up to its last newline, and the rest (less one
    // trailing `\r`) is the unterminated last line.
    if got.iter().all(|(_, cut, _)| !cut) {
        let mut rebuilt = Vec::new();
        for (bytes, _, crlf) in &got[..framed] {
            rebuilt.extend_from_slice(bytes);
            rebuilt.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        let tail_start = memchr_last_newline(data).map_or(0, |i| i + 1);
        assert_eq!(rebuilt, &data[..tail_start], "a line was split or merged");
        let tail = &data[tail_start..];
        let tail = tail.strip_suffix(b"\r").unwrap_or(tail);
        assert_eq!(unterminated, !data[tail_start..].is_empty());
        if unterminated {
            assert_eq!(got[framed].0, tail);
        }
    }
});

fn memchr_last_newline(data: &[u8]) -> Option<usize> {
    data.iter().rposition(|&b| b == b'\n')
}
