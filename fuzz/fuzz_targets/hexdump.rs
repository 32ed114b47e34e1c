//! Fuzz the streaming hexdump: any split of any input gives the one-shot dump.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::hexdump::{Dumper, dump};

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
});
