//! Fuzz the streaming hexdump: any split of any input gives the one-shot
//! dump, and the fast formatter agrees with a naive `hexdump -C` written
//! with `format!` (squeezing, start offsets past 4 GiB and `-v` included),
//! and so do line-aligned pieces dumped separately with `Dumper::continuing`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::hexdump::{Dumper, dump};

/// The obvious, slow `hexdump -C`.
fn reference(data: &[u8], start: u64, squeeze: bool) -> Vec<u8> {
    let mut out = String::new();
    let mut prev: Option<&[u8]> = None;
    let mut starred = false;
    let mut offset = start;
    for line in data.chunks(16) {
        if squeeze && line.len() == 16 && prev == Some(line) {
            if !starred {
                out.push_str("*\n");
                starred = true;
            }
        } else {
            let mut hex = String::new();
            for (i, b) in line.iter().enumerate() {
                if i == 8 {
                    hex.push(' ');
                }
                hex.push_str(&format!("{b:02x} "));
            }
            let ascii: String = line
                .iter()
                .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
                .collect();
            out.push_str(&format!("{offset:08x}  {hex:<49} |{ascii}|\n"));
            starred = false;
            if line.len() == 16 {
                prev = Some(line);
            }
        }
        offset += line.len() as u64;
    }
    if offset > 0 {
        out.push_str(&format!("{offset:08x}\n"));
    }
    out.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let whole = dump(data);
    let split = data.first().map_or(1, |b| usize::from(*b) + 1);
    let mut d = Dumper::new();
    let mut out = Vec::new();
    for c in data.chunks(split) {
        d.push(c, &mut out);
    }
    d.finish(&mut out);
    assert_eq!(out, whole);
    assert_eq!(whole, reference(data, 0, true));

    // A start offset (as `-s` gives) near and past the 32-bit boundary.
    let start = data.get(1).map_or(0, |&b| (0xffff_ff00u64 + u64::from(b)) << (b & 1));
    let mut d = Dumper::starting_at(start).no_squeeze();
    let mut out = Vec::new();
    d.push(data, &mut out);
    d.finish(&mut out);
    assert_eq!(out, reference(data, start, false));

    // Line-aligned pieces formatted separately (as worker threads do).
    let piece = data.get(2).map_or(16, |&b| (usize::from(b % 5) + 1) * 16);
    let mut out = Vec::new();
    let mut d = Dumper::new();
    let mut at = 0;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        d = Dumper::continuing(at as u64, &data[at.saturating_sub(32)..at]);
        d.push(&data[at..end], &mut out);
        at = end;
    }
    d.finish(&mut out);
    assert_eq!(out, whole);
});
