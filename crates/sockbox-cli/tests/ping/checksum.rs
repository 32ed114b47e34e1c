//! `sockbox checksum`: RFC 1071 vectors, a real IPv4 header, --verify,
//! odd lengths from a file, stdin and hex, bad input.

use predicates::str::contains;

use crate::util::sockbox;

#[test]
fn rfc1071_example_and_real_ipv4_header() {
    // RFC 1071 §3: the sum is ddf2, the checksum its complement.
    sockbox()
        .args(["checksum", "--hex", "0001 f203 f4f5 f6f7"])
        .assert()
        .success()
        .stdout("0x220d\n");
    sockbox()
        .args(["checksum", "--sum", "--hex", "0001f203f4f5f6f7"])
        .assert()
        .success()
        .stdout("0xddf2\n");
    let header = "4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7";
    sockbox()
        .args(["checksum", "--hex", header])
        .assert()
        .success()
        .stdout("0xb861\n");
}

#[test]
fn verify_exits_1_on_a_wrong_checksum() {
    let good = "45000073000040004011b861c0a80001c0a800c7";
    sockbox()
        .args(["checksum", "--verify", "--hex", good])
        .assert()
        .success()
        .stdout("ok\n");
    let bad = "45000073000040004011b862c0a80001c0a800c7";
    sockbox()
        .args(["checksum", "--verify", "--hex", bad])
        .assert()
        .code(1)
        .stdout(contains("sums to 0x0001"));
}

#[test]
fn odd_length_file_and_stdin_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.bin");
    let data: Vec<u8> = (0..=254u8).collect(); // 255 bytes: odd
    std::fs::write(&path, &data).unwrap();
    let from_file = sockbox().arg("checksum").arg(&path).assert().success();
    let file_out = String::from_utf8(from_file.get_output().stdout.clone()).unwrap();
    sockbox()
        .args(["checksum", "-"])
        .write_stdin(data.clone())
        .assert()
        .success()
        .stdout(file_out.clone());
    let hex: String = data.iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    });
    sockbox()
        .args(["checksum", "--hex", &hex])
        .assert()
        .success()
        .stdout(file_out);
}

#[test]
fn bad_input_exits_2() {
    sockbox()
        .args(["checksum", "--hex", "abc"])
        .assert()
        .code(2)
        .stderr(contains("odd number"));
    sockbox()
        .args(["checksum", "/nonexistent/file"])
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/file"));
}
