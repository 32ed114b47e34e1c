//! Offline subcommands: `hexdump` (byte-identical to `hexdump -C`), `pack`
//! and `unpack`.

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
            eprintln!("skipping hexdump comparison: {e}");
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

// ---- pack / unpack ----

/// Run sockbox with `args`; expect success and exactly `want` on stdout.
fn prints(args: &[&str], want: &[u8]) {
    sockbox()
        .args(args)
        .assert()
        .success()
        .stdout(want.to_vec());
}

#[test]
fn pack_seed_int2string_is_aa() {
    prints(&["pack", "v", "16705"], b"AA");
    prints(&["pack", "<H", "16705"], b"AA");
}

#[test]
fn pack_hex_output_both_dialects_and_negative_values() {
    let cases: &[(&[&str], &str)] = &[
        (&["nN", "8080", "0xdeadbeef"], "1f90deadbeef\n"),
        (&["<hf", "-2", "1.5"], "feff0000c03f\n"),
        (&["c", "-1"], "ff\n"),
        (&["C*", "1", "2", "3"], "010203\n"),
        (&[">e", "-2"], "c000\n"),
        (&["a4Z*", "ab", "cd"], "61620000636400\n"),
        (&["H*", "CAFE"], "cafe\n"),
        (&["!3B", "1", "2", "3"], "010203\n"),
        (&["--php", "@2C", "9"], "000009\n"),
        (&["--struct", "bi", "1", "2"], "0100000002000000\n"),
    ];
    for (args, want) in cases {
        let mut full = vec!["pack", "--hex"];
        full.extend_from_slice(args);
        prints(&full, want.as_bytes());
    }
}

#[test]
fn pack_escapes_and_raw_bytes() {
    prints(&["pack", "-e", "a*", "A\\x00\\t\\\\"], b"A\x00\t\\");
    prints(&["pack", "a*", "A\\x00"], b"A\\x00");
}

#[test]
fn unpack_text_json_named_and_records() {
    let cases: &[(&[&str], &str)] = &[
        (&["unpack", "v", "--hex", "4141"], "16705\n"),
        (
            &["unpack", "nport/Cttl", "--hex", "1f9040"],
            "port=8080\tttl=64\n",
        ),
        (
            &[
                "unpack",
                "nport/Cttl/a*msg",
                "--hex",
                "1f904068690a",
                "--json",
            ],
            "{\"port\":8080,\"ttl\":64,\"msg\":\"hi\\n\"}\n",
        ),
        (
            &["unpack", "<hf?", "--hex", "feff0000c03f01", "--json"],
            "[-2,1.5,true]\n",
        ),
        (
            &["unpack", "a*", "--hex", "41ff", "--json"],
            "[{\"hex\":\"41ff\"}]\n",
        ),
        (&["unpack", "a*", "--hex", "41ff0a"], "A\\xff\\n\n"),
        (
            &["unpack", "--records", "<HB", "--hex", "010009020008"],
            "1\t9\n2\t8\n",
        ),
        (
            &["unpack", "<d", "--json", "--hex", "000000000000f07f"],
            "[\"inf\"]\n",
        ),
    ];
    for (args, want) in cases {
        prints(args, want.as_bytes());
    }
}

#[test]
fn pack_then_unpack_round_trips_through_a_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let fmt = "qJEZ*H4";
    let values = [
        "-9223372036854775808",
        "18446744073709551615",
        "0.1",
        "tab\there",
        "beef",
    ];
    let mut args = vec!["pack", fmt];
    args.extend_from_slice(&values);
    let bytes = sockbox_out(&args);
    let path = write_temp(&dir, "packed.bin", &bytes);
    let text = String::from_utf8(sockbox_out(&["unpack", fmt, path.to_str().unwrap()])).unwrap();
    assert_eq!(
        text,
        "-9223372036854775808\t18446744073709551615\t0.1\ttab\\there\tbeef\n"
    );
    // The printed values, unescaped with -e, pack to the same bytes.
    let shown: Vec<&str> = text.trim_end().split('\t').collect();
    let mut again = vec!["pack", "-e", fmt];
    again.extend_from_slice(&shown);
    assert_eq!(sockbox_out(&again), bytes);
    let from_stdin = sockbox()
        .args(["unpack", fmt, "-"])
        .write_stdin(bytes)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(from_stdin).unwrap(), text);
}

/// Run sockbox, expect exit 2 and one stderr line containing every needle.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = sockbox().args(args).assert().code(2).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
}

#[test]
fn pack_and_unpack_bad_inputs_exit_2_with_one_line() {
    fails_with(
        &["pack", "nCy", "1", "2"],
        &["\"nCy\"", "'y'", "position 2"],
    );
    fails_with(&["pack", "<hk", "1"], &["struct", "'k'"]);
    fails_with(&["pack", "v", "70000"], &["70000", "'v'", "0..=65535"]);
    fails_with(&["pack", "c", "200"], &["200", "'c'"]);
    fails_with(&["pack", "nn", "1"], &["value #2"]);
    fails_with(&["pack", "n", "1", "2"], &["left over"]);
    fails_with(&["pack", "n", "ten"], &["\"ten\"", "integer"]);
    fails_with(&["pack", "H*", "abc"], &["3 digits"]);
    fails_with(&["pack", "H3", "abc"], &["even"]);
    fails_with(&["pack", "a2", "abc"], &["3-byte string"]);
    fails_with(&["pack", "-e", "a*", "\\q"], &["\\q"]);
    fails_with(&["pack", "<e", "1e6"], &["1000000", "'e'"]);
    fails_with(&["unpack", "N", "--hex", "010203"], &["too short", "--hex"]);
    fails_with(&["unpack", "N", "--hex", "0102030"], &["odd"]);
    fails_with(
        &["unpack", "--exact", "<H", "--hex", "010203"],
        &["1 byte(s) left"],
    );
    fails_with(
        &["unpack", "--records", "<H", "--hex", "010203"],
        &["too short"],
    );
    fails_with(
        &["unpack", "N", "/nonexistent/x.bin"],
        &["/nonexistent/x.bin"],
    );
}

/// Regression: a non-breaking space (a copy-paste accident) in a format made
/// `pack`/`unpack` panic inside the whitespace skipper instead of exiting 2.
#[test]
fn pack_format_with_non_ascii_space_exits_2_not_a_panic() {
    fails_with(&["pack", "C\u{a0}C", "1", "2"], &["unknown", "position 1"]);
    fails_with(
        &["pack", "<h\u{3000}h", "1", "2"],
        &["unknown", "position 2"],
    );
    fails_with(&["unpack", "n\u{a0}", "--hex", "0102"], &["unknown"]);
}

/// Regression: PHP's `unpack("Nlen", …)` names the value `len`; sockbox reads
/// a format without '/' as codes only (`N l e n`) and said only "data too
/// short: code 'l'". Now the error says how to name it, and `Nlen/` works.
#[test]
fn unpack_php_name_without_slash_says_how_to_name_it() {
    fails_with(
        &["unpack", "Nlen", "--hex", "00000004"],
        &["code 'l'", "\"Nlen/\""],
    );
    fails_with(&["unpack", "C*b", "--hex", "0102"], &["'b'", "\"C*b/\""]);
    prints(&["unpack", "Nlen/", "--hex", "00000004"], b"len=4\n");
    // No such hint for struct formats or pack.
    let out = sockbox()
        .args(["unpack", "--struct", "hk", "--hex", "0102"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert!(!String::from_utf8_lossy(&out).contains("PHP"));
}
