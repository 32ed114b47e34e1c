//! Offline subcommands: `hexdump` (byte-identical to `hexdump -C`) here;
//! `pack` / `unpack` and `checksum` in their own files.

mod checksum;
mod pack;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use predicates::str::contains;

use crate::util::{in_ci, sockbox, sockbox_std};

/// Deterministic pseudo-random bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Output of the system `hexdump -C ARGS FILE`, or `None` (skip) when the
/// tool is missing outside CI.
fn system_hexdump(args: &[&str], file: &std::path::Path) -> Option<Vec<u8>> {
    match Command::new("hexdump")
        .arg("-C")
        .args(args)
        .arg(file)
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "hexdump -C {args:?} failed");
            Some(o.stdout)
        }
        Err(e) => {
            assert!(!in_ci(), "hexdump (bsdextrautils) is needed under CI: {e}");
            crate::util::skipped("no system hexdump to compare with (bsdextrautils)");
            None
        }
    }
}

fn write_temp(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn sockbox_out(args: &[&str]) -> Vec<u8> {
    sockbox()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

/// Inputs that exercise every path of the formatter and the squeezer.
fn varied_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut repeated = vec![0x41u8; 16 * 5];
    repeated.extend_from_slice(b"different line..");
    repeated.extend(std::iter::repeat_n(0x41u8, 16 * 3));
    repeated.extend_from_slice(b"tail");
    let mut blocks = Vec::new();
    for _ in 0..100 {
        blocks.extend_from_slice(&noise(16, 7));
    }
    blocks.extend_from_slice(&noise(16, 7)[..15]);
    // Runs of equal lines that cross the 256 KiB pieces files are cut into.
    let mut runs = Vec::new();
    for i in 0..200u64 {
        if i % 3 == 0 {
            runs.extend(noise(4096, i));
        } else {
            runs.extend(std::iter::repeat_n(0u8, 4096));
        }
    }
    runs.extend_from_slice(b"end");
    vec![
        ("empty", vec![]),
        ("one byte", vec![0x00]),
        ("eight", b"01234567".to_vec()),
        ("fifteen", b"abcdefghijklmno".to_vec()),
        ("sixteen", b"abcdefghijklmnop".to_vec()),
        ("seventeen", b"abcdefghijklmnopq".to_vec()),
        ("two equal lines", vec![0u8; 32]),
        ("equal lines then partial", vec![0u8; 35]),
        ("repeats, break, repeats", repeated),
        ("repeated random block", blocks),
        ("every byte value", (0..=255u8).collect()),
        ("random 100 KiB", noise(100 * 1024 + 7, 42)),
        ("zeros over a read block", vec![0u8; (1 << 18) + 48]),
        ("exactly one read block", vec![7u8; 1 << 18]),
        ("runs across pieces", runs),
    ]
}

#[test]
fn hexdump_is_byte_identical_to_hexdump_c_on_varied_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in varied_inputs() {
        let path = write_temp(&dir, "in.bin", &data);
        let Some(want) = system_hexdump(&[], &path) else {
            return;
        };
        let from_file = sockbox_out(&["hexdump", path.to_str().unwrap()]);
        assert!(
            from_file == want,
            "{name}: file output differs from hexdump -C"
        );
        let from_stdin = sockbox()
            .arg("hexdump")
            .write_stdin(data.clone())
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(
            from_stdin == want,
            "{name}: stdin output differs from hexdump -C"
        );
        let verbose = sockbox_out(&["hexdump", "-v", path.to_str().unwrap()]);
        assert!(
            verbose == system_hexdump(&["-v"], &path).unwrap(),
            "{name}: -v differs from hexdump -C -v"
        );
    }
}

#[test]
fn hexdump_skip_and_length_match_hexdump_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0x41u8; 73];
    data.extend(noise(300, 3));
    let path = write_temp(&dir, "in.bin", &data);
    let p = path.to_str().unwrap();
    for args in [
        &["-s", "5"][..],
        &["-s", "5", "-n", "40"],
        &["-n", "17"],
        &["-n", "0"],
        &["-s", "0x10"],
        &["-s", "010", "-n", "1"],
        &["-s", "373"],
        &["-s", "1000"],
        &["-s", "1K"],
        &["-s", "3", "-n", "0"],
    ] {
        let Some(want) = system_hexdump(args, &path) else {
            return;
        };
        let mut full = vec!["hexdump"];
        full.extend_from_slice(args);
        full.push(p);
        assert!(sockbox_out(&full) == want, "hexdump -C {args:?} differs");
    }
    // Two files are one stream, and -s crosses the boundary.
    let Some(want) = system_hexdump(&["-s", "400", p], &path) else {
        return;
    };
    assert!(sockbox_out(&["hexdump", "-s", "400", p, p]) == want);
}

#[test]
fn hexdump_stdin_redirected_from_a_file_seeks_and_matches() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = noise(600_000, 5);
    data.extend(std::iter::repeat_n(0u8, 300_000));
    let path = write_temp(&dir, "in.bin", &data);
    let Some(want) = system_hexdump(&["-s", "100000", "-n", "700000"], &path) else {
        return;
    };
    let out = sockbox_std()
        .args(["hexdump", "-s", "100000", "-n", "700000"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == want, "stdin < file differs from hexdump -C");
}

/// `sockbox hexdump ARGS` with `input` on stdin; its output as text.
fn hexdump_stdin(args: &[&str], input: &[u8]) -> String {
    let out = sockbox()
        .arg("hexdump")
        .args(args)
        .write_stdin(input.to_vec())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn hexdump_fixture_without_the_system_tool() {
    assert_eq!(
        hexdump_stdin(&[], b"hello, world\n\x00\x01\x02\x7f\x80"),
        "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 01 02  |hello, world....|\n\
         00000010  7f 80                                             |..|\n\
         00000012\n"
    );
}

#[test]
fn hexdump_skips_on_stdin_where_hexdump_cannot_seek() {
    assert_eq!(
        hexdump_stdin(&["-s", "16", "-n", "4", "-"], b"0123456789abcdefWXYZtail"),
        "00000010  57 58 59 5a                                       |WXYZ|\n00000014\n"
    );
}

#[test]
fn hexdump_streams_output_before_input_ends() {
    let mut child = sockbox_std()
        .arg("hexdump")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(&noise(64 * 1024, 9)).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = [0u8; 10];
        let r = stdout.read_exact(&mut first).map(|()| first);
        let _ = tx.send(r);
    });
    // stdin is still open: output must already be flowing.
    let got = rx.recv_timeout(Duration::from_secs(20));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        &got.expect("no output while input was open").unwrap(),
        b"00000000  "
    );
}

#[test]
fn hexdump_bad_inputs_exit_2_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bin");
    let a = sockbox()
        .args(["hexdump", missing.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("nope.bin"));
    assert_eq!(
        String::from_utf8_lossy(&a.get_output().stderr)
            .lines()
            .count(),
        1
    );
    // Nothing is printed for the good file before the bad one is found.
    let good = write_temp(&dir, "good.bin", b"x");
    sockbox()
        .args(["hexdump", good.to_str().unwrap(), missing.to_str().unwrap()])
        .assert()
        .code(2)
        .stdout("");
    sockbox()
        .args(["hexdump", dir.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("directory"));
    sockbox()
        .args(["hexdump", "-s", "12q", "-"])
        .assert()
        .code(2)
        .stderr(contains("12q"));
}
