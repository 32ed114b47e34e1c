//! `pack` and `unpack`: both dialects, PHP's unpack names, records streamed
//! in bounded memory.

use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

use super::{sockbox_out, write_temp};
use crate::util::sockbox;

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
    // '/' separates fields so the same format reads back: unpack names a
    // field by what follows its code up to the next '/', as PHP does.
    let fmt = "q/J/E/Z*/H4";
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
pub(super) fn fails_with(args: &[&str], needles: &[&str]) {
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
    fails_with(&["unpack", "\u{a0}n", "--hex", "0102"], &["unknown"]);
}

/// Regression: `unpack Nlen` read `len` as three more codes (`N l e n`) and
/// printed four values; `unpack Cttl` was refused. PHP names the value.
#[test]
fn unpack_php_format_without_slash_is_one_named_field() {
    prints(
        &[
            "unpack",
            "Nlen",
            "--hex",
            "00000001000000020000000000000000ffff",
            "--json",
        ],
        b"{\"len\":1}\n",
    );
    prints(&["unpack", "Cttl", "--hex", "40"], b"ttl=64\n");
    prints(&["unpack", "C*b", "--hex", "0102"], b"b1=1\tb2=2\n");
    // Unnamed fields are separated by '/'; struct formats never take names.
    prints(&["unpack", "n/N", "--hex", "000100000002"], b"1\t2\n");
    prints(&["unpack", ">HI", "--hex", "000100000002"], b"1\t2\n");
    // pack still reads codes back to back, as PHP's pack() does.
    prints(&["pack", "--hex", "nN", "1", "2"], b"000100000002\n");
}

/// Regression: `unpack --json 'Cx/Cx'` printed `{"x":1,"x":2}`. PHP keeps
/// only the last value; sockbox refuses, in text and JSON alike.
#[test]
fn unpack_refuses_a_name_given_twice() {
    for json in [true, false] {
        let mut args = vec!["unpack", "Cx/Cx", "--hex", "0102"];
        if json {
            args.push("--json");
        }
        fails_with(&args, &["\"x\"", "position 3", "own name"]);
    }
    fails_with(&["unpack", "C2x/Cx1", "--hex", "010203"], &["\"x1\""]);
    prints(
        &["unpack", "Cx/Cy", "--hex", "0102", "--json"],
        b"{\"x\":1,\"y\":2}\n",
    );
}

/// A sparse 1 GiB file of zeros whose last 4 bytes are de ad be ef.
fn sparse_gib(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("sparse.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    f.seek(SeekFrom::End(-4)).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
    path
}

/// Run sockbox under `ulimit -v` (200 MB of address space): a run that
/// holds a 1 GiB input in memory fails.
fn sockbox_in_200mb(args: &[&OsStr], stdin: Option<std::fs::File>) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 200000 && exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("sockbox"))
        .args(args);
    if let Some(f) = stdin {
        c.stdin(f);
    }
    c.output().unwrap()
}

/// Regression: `unpack --records` read the whole input into memory (4.9 GB
/// RSS on 64 MiB; on 1 GiB it aborted), and `unpack N FILE` read all of
/// FILE to decode 4 bytes. Records now stream; one record reads its bytes.
#[test]
fn unpack_streams_records_of_a_1gib_file_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = sparse_gib(&dir);
    let records = [
        OsStr::new("unpack"),
        "--records".as_ref(),
        "x65532/N".as_ref(),
    ];
    let mut args = records.to_vec();
    args.push(path.as_os_str());
    for stdin in [None, Some(std::fs::File::open(&path).unwrap())] {
        let mut args = args.clone();
        if stdin.is_some() {
            args.pop();
        }
        let out = sockbox_in_200mb(&args, stdin);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 << 14);
        assert!(lines[..lines.len() - 1].iter().all(|l| *l == "0"));
        assert_eq!(lines.last(), Some(&"3735928559"));
    }
    // One record: reads 4 bytes, not 1 GiB; --exact counts what is left.
    let out = sockbox_in_200mb(&["unpack".as_ref(), "N".as_ref(), path.as_os_str()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"0\n");
    let exact = [
        "unpack".as_ref(),
        "--exact".as_ref(),
        "N".as_ref(),
        path.as_os_str(),
    ];
    let out = sockbox_in_200mb(&exact, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1073741820 byte(s) left"));
}

/// Without --records, unpack reads from a pipe only the bytes its format
/// covers: the rest stays for the next reader.
#[test]
fn unpack_reads_only_the_bytes_the_format_needs() {
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf '\\000\\005\\000\\007rest' | { \"$0\" unpack n/C -; cat; }")
        .arg(assert_cmd::cargo::cargo_bin("sockbox"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"5\t0\n\x07rest");
    // A record cut short names the record and where it starts.
    fails_with(
        &["unpack", "--records", "<H", "--hex", "0100020003"],
        &["record 3 (at byte 4)", "too short"],
    );
}
