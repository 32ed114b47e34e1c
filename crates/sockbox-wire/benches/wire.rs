//! Criterion benchmarks for the wire codecs: hexdump formatter throughput
//! (random and repetitive input) and pack/unpack.
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sockbox_wire::hexdump::{Dumper, LINE_BYTES, LINE_LEN};

/// Deterministic pseudo-random bytes (xorshift), no extra dependency.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn hexdump(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let random = random_bytes(N);
    let zeros = vec![0u8; N];
    let mut g = c.benchmark_group("hexdump");
    g.throughput(Throughput::Bytes(N as u64));
    let mut out = Vec::with_capacity((N / LINE_BYTES + 2) * LINE_LEN);
    for (name, data) in [("random_1MiB", &random), ("zeros_1MiB", &zeros)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut d = Dumper::new();
                d.push(black_box(data), &mut out);
                d.finish(&mut out);
                black_box(out.len())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, hexdump);
criterion_main!(benches);
