//! `checksum` input handling (`--hex`, `--hex -`, FILE, empty input) and
//! how every `--hex` argument reports a bad digit.

use predicates::str::contains;

use super::pack::fails_with;
use crate::util::sockbox;

/// Regression: `printf '\x45\x00' | sockbox checksum --hex -` took `-` for
/// a separator and printed 0xffff, the checksum of nothing. `--hex -` reads
/// hex text from stdin; a byte that is not hex is an error at its offset.
#[test]
fn checksum_hex_dash_reads_hex_text_from_stdin() {
    sockbox()
        .args(["checksum", "--hex", "-"])
        .write_stdin(b"\x45\x00".to_vec())
        .assert()
        .code(2)
        .stdout("")
        .stderr(contains("byte 0x00 at offset 1 is not a hex digit"))
        .stderr(contains("drop --hex"));
    sockbox()
        .args(["checksum", "--hex", "-"])
        .write_stdin("4500 0073 0000 4000 4011\n0000 c0a8 0001 c0a8 00c7\n")
        .assert()
        .success()
        .stdout("0xb861\n");
    sockbox()
        .args(["checksum", "--hex", "-"])
        .write_stdin("ab\nz")
        .assert()
        .code(2)
        .stderr(contains("'z' (0x7a) at offset 3"));
    sockbox()
        .args(["checksum", "--hex", "-"])
        .write_stdin("abc")
        .assert()
        .code(2)
        .stderr(contains("odd"));
}

/// The checksum of no bytes is 0xffff: for FILE or stdin it is printed with
/// a note; hex text without a digit is an error.
#[test]
fn checksum_of_empty_input_is_explicit() {
    sockbox()
        .args(["checksum", "-"])
        .write_stdin("")
        .assert()
        .success()
        .stdout("0xffff\n")
        .stderr(contains("standard input is empty"));
    for args in [
        &["checksum", "--hex", ""][..],
        &["checksum", "--hex", ": -"],
    ] {
        fails_with(args, &["no hex digits"]);
    }
    sockbox()
        .args(["checksum", "--hex", "-"])
        .write_stdin(" \n")
        .assert()
        .code(2)
        .stderr(contains("no hex digits"));
}

/// Regression: `checksum --hex 00 FILE` read FILE as one more hex word
/// ("'/' is not a hex digit").
#[test]
fn checksum_hex_and_file_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let file = super::write_temp(&dir, "data.bin", b"\x45\x00");
    let path = file.to_str().unwrap();
    fails_with(
        &["checksum", "--hex", "00", path],
        &["--hex and FILE conflict", "data.bin"],
    );
    fails_with(
        &["checksum", "--hex", "00", "-"],
        &["--hex and FILE conflict"],
    );
    // Several hex words are still joined.
    sockbox()
        .args(["checksum", "--hex", "4500", "0073"])
        .assert()
        .success();
    // FILE first: clap's own conflict, exit 2 too.
    sockbox()
        .args(["checksum", path, "--hex", "00"])
        .assert()
        .code(2);
}

/// Regression: a 120,000-character bad `--hex` argument was echoed whole
/// in a one-line error (checksum, unpack, udp send). The error is short and
/// points at the offending character.
#[test]
fn a_huge_bad_hex_argument_is_cut_in_the_error() {
    let mut hex = "0a".repeat(60_000);
    hex.insert(60_213, 'z');
    let commands: [&[&str]; 3] = [
        &["checksum", "--hex", &hex],
        &["unpack", "N", "--hex", &hex],
        // Fails before anything is sent (loopback all the same).
        &["udp", "send", "--hex", "127.0.0.1", "9", &hex],
    ];
    for args in commands {
        let out = sockbox().args(args).assert().code(2).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{}", &args[0]);
        assert!(err.len() < 200, "{} bytes: {err}", err.len());
        assert!(
            err.contains("'z' at offset 60213 is not a hex digit"),
            "{err}"
        );
        assert!(err.contains("0a0za0a"), "no excerpt: {err}");
    }
}
