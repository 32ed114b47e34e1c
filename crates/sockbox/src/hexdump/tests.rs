//! The file dump against the reference formatter: serial and parallel,
//! skip and length across inputs, errors.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use sockbox_wire::hexdump::Dumper;

use super::*;

/// Deterministic bytes with long runs of equal lines, so `*` squeezes cross
/// the 256 KiB pieces the parallel path cuts files into.
fn varied(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let run = (x % 70_000) as usize;
        if x.is_multiple_of(3) {
            out.extend(std::iter::repeat_n(0u8, run));
        } else {
            out.extend((0..run).map(|i| (x >> (i % 56)) as u8));
        }
    }
    out.truncate(n);
    out
}

/// What `hexdump -C -s skip -n len` prints for `data`.
fn reference(data: &[u8], skip: usize, len: Option<usize>, no_squeeze: bool) -> Vec<u8> {
    let start = skip.min(data.len());
    let end = len.map_or(data.len(), |l| (start + l).min(data.len()));
    let mut d = Dumper::starting_at(start as u64);
    if no_squeeze {
        d = d.no_squeeze();
    }
    let mut out = Vec::new();
    d.push(&data[start..end], &mut out);
    d.finish(&mut out);
    out
}

fn dump(inputs: &[Input], options: &Options) -> Vec<u8> {
    let mut out = Vec::new();
    Dump::open(inputs)
        .unwrap()
        .write_to(options, &mut out)
        .unwrap();
    out
}

#[test]
fn files_dump_like_the_reference_on_one_thread_and_four() {
    let dir = tempfile::tempdir().unwrap();
    for size in [
        0,
        1,
        15,
        16,
        33,
        READ_BLOCK,
        READ_BLOCK + 17,
        5 * READ_BLOCK + 3,
    ] {
        let data = varied(size);
        let path = dir.path().join("in.bin");
        std::fs::write(&path, &data).unwrap();
        for threads in [1, 4] {
            for no_squeeze in [false, true] {
                let options = Options {
                    no_squeeze,
                    threads: Some(threads),
                    ..Options::default()
                };
                let got = dump(&[Input::Path(path.clone())], &options);
                assert!(
                    got == reference(&data, 0, None, no_squeeze),
                    "{size} bytes, {threads} threads, no_squeeze {no_squeeze}"
                );
            }
        }
    }
}

#[test]
fn skip_and_length_cross_input_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let a = varied(3 * READ_BLOCK + 5);
    let b = varied(READ_BLOCK / 2 + 9);
    let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&pa, &a).unwrap();
    std::fs::write(&pb, &b).unwrap();
    let both: Vec<u8> = a.iter().chain(&b).copied().collect();
    let inputs = [Input::Path(pa), Input::Path(pb)];
    for (skip, len) in [
        (0, None),
        (7, Some(100)),
        (a.len() - 3, None),
        (a.len() + 1, Some(40)),
        (both.len() + 10, None),
        (READ_BLOCK, Some(2 * READ_BLOCK + 1)),
    ] {
        for threads in [1, 3] {
            let options = Options {
                skip: skip as u64,
                length: len.map(|l| l as u64),
                threads: Some(threads),
                ..Options::default()
            };
            let mut out = Vec::new();
            let n = Dump::open(&inputs)
                .unwrap()
                .write_to(&options, &mut out)
                .unwrap();
            assert!(
                out == reference(&both, skip, len, false),
                "skip {skip} len {len:?} threads {threads}"
            );
            let start = skip.min(both.len());
            let want = len.map_or(both.len() - start, |l| l.min(both.len() - start));
            assert_eq!(n, want as u64);
        }
    }
    assert!(
        dump(
            &inputs,
            &Options {
                length: Some(0),
                ..Options::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn bad_inputs_fail_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bin");
    let good = dir.path().join("good.bin");
    std::fs::write(&good, b"x").unwrap();
    let e = Dump::open(&[Input::Path(good), Input::Path(missing)])
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Open { name, .. } if name.ends_with("nope.bin")),
        "{e}"
    );
    let e = Dump::open(&[Input::Path(dir.path().to_path_buf())])
        .err()
        .unwrap();
    assert!(matches!(e, Error::Directory { .. }), "{e}");
    assert!(e.to_string().contains("directory"));
}

/// A writer that takes `room` bytes, then fails as a closed pipe does.
struct Closing {
    room: usize,
}

impl Write for Closing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_stops_the_dump_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.bin");
    std::fs::write(&path, varied(4 * READ_BLOCK)).unwrap();
    for threads in [1, 4] {
        let options = Options {
            threads: Some(threads),
            ..Options::default()
        };
        let e = Dump::open(&[Input::Path(path.clone())])
            .unwrap()
            .write_to(&options, Closing { room: 1000 })
            .unwrap_err();
        assert!(
            matches!(&e, Error::Write(io) if io.kind() == io::ErrorKind::BrokenPipe),
            "{e}"
        );
    }
}
