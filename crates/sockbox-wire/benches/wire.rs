//! Criterion benchmarks for the wire codecs: hexdump formatter throughput
//! (random and repetitive input) and pack/unpack.
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sockbox_wire::hexdump::{Dumper, LINE_BYTES, LINE_LEN, write_line};
use sockbox_wire::pack::{Format, Value};

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

fn hexdump_single_lines(c: &mut Criterion) {
    // The relay's -x dump formats chunks line by line with write_line.
    let data = random_bytes(4096);
    let mut g = c.benchmark_group("hexdump");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let mut out = Vec::with_capacity(data.len() / LINE_BYTES * LINE_LEN);
    g.bench_function("write_line_4KiB", |b| {
        b.iter(|| {
            out.clear();
            for (i, line) in black_box(&data).chunks(LINE_BYTES).enumerate() {
                write_line(&mut out, (i * LINE_BYTES) as u64, line);
            }
            black_box(out.len())
        });
    });
    g.finish();
}

fn pack_unpack(c: &mut Criterion) {
    // A small protocol header in each dialect.
    let php = Format::parse("nCCNa8H8").unwrap_or_else(|e| panic!("{e}"));
    let php_values = [
        Value::Int(8080),
        Value::Int(4),
        Value::Int(64),
        Value::Int(0xdead_beef),
        Value::from("sockbox"),
        Value::Hex("cafef00d".into()),
    ];
    let st = Format::parse("<HBBIqd?").unwrap_or_else(|e| panic!("{e}"));
    let st_values = [
        Value::Int(8080),
        Value::Int(4),
        Value::Int(64),
        Value::Int(0xdead_beef),
        Value::Int(-5),
        Value::Float(0.1),
        Value::Bool(true),
    ];
    let args = ["8080", "4", "64", "0xdeadbeef", "-5", "0.1", "true"];
    let php_bytes = php.pack(&php_values).unwrap_or_default();
    let st_bytes = st.pack(&st_values).unwrap_or_default();
    let mut g = c.benchmark_group("pack");
    g.bench_function("parse_format", |b| {
        b.iter(|| Format::parse(black_box("nCCNa8H8")).is_ok());
    });
    g.bench_function("php_pack", |b| b.iter(|| php.pack(black_box(&php_values))));
    g.bench_function("php_unpack", |b| {
        b.iter(|| php.unpack(black_box(&php_bytes)));
    });
    g.bench_function("struct_pack", |b| b.iter(|| st.pack(black_box(&st_values))));
    g.bench_function("struct_pack_text", |b| {
        b.iter(|| st.pack_args(black_box(&args)));
    });
    g.bench_function("struct_unpack", |b| {
        b.iter(|| st.unpack(black_box(&st_bytes)));
    });
    let records: Vec<u8> = st_bytes
        .iter()
        .copied()
        .cycle()
        .take(st_bytes.len() * 1000)
        .collect();
    g.throughput(Throughput::Bytes(records.len() as u64));
    g.bench_function("struct_unpack_records_1000", |b| {
        b.iter(|| st.unpack_records(black_box(&records)).map(|r| r.len()));
    });
    g.finish();
}

criterion_group!(benches, hexdump, hexdump_single_lines, pack_unpack);
criterion_main!(benches);
