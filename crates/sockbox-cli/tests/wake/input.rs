//! What is sent where without sending (dry runs), hosts files, and bad
//! input: every mistake exits 2 naming what is wrong.

use super::*;

#[test]
fn dry_run_prints_routes_and_the_codec_bytes_exactly() {
    if !require_root("dry_run_prints_routes_and_the_codec_bytes_exactly") {
        return;
    }
    let (a, _b) = pair("wd");
    let (code, out, err) = run_in(
        &a,
        &["wake", "-n", "--password", "1.2.3.4", "AA-BB-CC-DD-EE-FF"],
    );
    assert_eq!(code, 0, "{err}");
    let repr = Repr {
        mac: MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        password: Some(Password::Four([1, 2, 3, 4])),
    };
    let mut want = b"would wake aa:bb:cc:dd:ee:ff with 106 bytes (SecureOn), once:\n\
                     \x20 udp 10.77.1.255:9 on wa from 10.77.1.1\n"
        .to_vec();
    want.extend_from_slice(&hexdump::dump(&repr.to_bytes()));
    assert_eq!(out.as_bytes(), want.as_slice(), "{out}");
    // JSON dry run carries the same bytes in hex.
    let (code, out, _) = run_in(&a, &["wake", "-n", "--json", "AA-BB-CC-DD-EE-FF"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let hex = Repr::new(repr.mac)
        .to_bytes()
        .iter()
        .fold(String::new(), |s, b| s + &format!("{b:02x}"));
    assert_eq!(v["packet"], hex);
    assert_eq!(v["route"]["dest"], "10.77.1.255:9");
}

#[test]
fn bad_macs_exit_2_naming_the_argument() {
    for bad in [
        "00:11:22:33:44",
        "00:11:22:33:44:55:66",
        "00:11-22:33:44:55",
        "00:11:22:33:44:5g",
        "00:11:222:33:44:55",
        "0011.2233",
    ] {
        let err = usage_error(&["wake", "-n", bad]);
        assert!(err.contains(&format!("\"{bad}\"")), "{bad}: {err}");
        assert!(err.contains("invalid MAC address"), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let err = usage_error(&["wake", "-n", "001122zz4455"]);
    assert!(
        err.contains("\"001122zz4455\" is not a MAC address"),
        "{err}"
    );
    sockbox().arg("wake").assert().code(2);
}

/// Regression: port 0 was accepted and failed at send time with EINVAL and
/// exit 3; a wrong dotted password blamed "hex digits"; `listen --count 0`
/// never stopped.
#[test]
fn port_zero_bad_password_and_zero_count_are_usage_errors() {
    for args in [
        &["wake", "-n", "-p", "0", MAC][..],
        &["wake", "-n", "--to", "127.0.0.1:0", MAC],
        &["wake", "-n", "--to", "[::1]:0", MAC],
        &["wake", "listen", "--count", "0"],
    ] {
        let err = usage_error(args);
        assert!(err.contains('0'), "{args:?}: {err}");
    }
    let err = usage_error(&["wake", "-n", "--password", "1.2.3", MAC]);
    assert!(err.contains("4 decimal parts (a.b.c.d), not 3"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn missing_or_down_interface_is_a_clear_error() {
    sockbox()
        .args(["wake", "-n", "--iface", "sbxnope0", MAC])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "no network interface named \"sbxnope0\"",
        ));
    sockbox()
        .args(["wake", "-n", "--raw", "sbxnope1", MAC])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sbxnope1"));
    if !require_root("missing_or_down_interface_is_a_clear_error") {
        return;
    }
    let (a, _b) = pair("wi");
    a.ip(&["link", "set", "wa", "down"]);
    let (code, _, err) = run_in(&a, &["wake", "--iface", "wa", MAC]);
    assert_eq!(code, 2);
    assert!(err.contains("interface wa is down"), "{err}");
}

#[test]
fn no_broadcast_interface_suggests_to() {
    if !require_root("no_broadcast_interface_suggests_to") {
        return;
    }
    let lonely = Netns::new("wn");
    let (code, _, err) = run_in(&lonely, &["wake", MAC]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no up, non-loopback interface has an IPv4 broadcast address"),
        "{err}"
    );
    assert!(err.contains("--to"), "{err}");
}

#[test]
fn hosts_file_and_named_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(
        &file,
        "# lab\n00:11:22:33:44:55 10.0.0.255 nas\n00-11-22-33-44-66 10.0.0.7:7 pc\n",
    )
    .unwrap();
    let out = sockbox()
        .args(["wake", "-n", "--to", "127.0.0.1", "-f"])
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("would wake nas (00:11:22:33:44:55)"), "{out}");
    assert!(out.contains("udp 10.0.0.255:9"), "{out}");
    assert!(out.contains("would wake pc (00:11:22:33:44:66)"), "{out}");
    assert!(out.contains("udp 10.0.0.7:7"), "{out}");

    // A file with no good line is an error naming the line.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "# nothing good\n\n00:11:22:33:44 pc\n").unwrap();
    let err = usage_error(&["wake", "-n", "-f", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.txt:3: invalid MAC address \"00:11:22:33:44\""),
        "{err}"
    );

    let toml = dir.path().join("hosts.toml");
    std::fs::write(
        &toml,
        "[hosts.nas]\nmac = \"0011.2233.4488\"\naddr = \"127.0.0.1\"\nport = 7\npassword = \"1.2.3.4\"\n",
    )
    .unwrap();
    let out = sockbox()
        .args(["wake", "-n", "--hosts"])
        .arg(&toml)
        .arg("nas")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("would wake nas (00:11:22:33:44:88) with 106 bytes (SecureOn)"),
        "{out}"
    );
    assert!(out.contains("udp 127.0.0.1:7"), "{out}");
    let err = usage_error(&["wake", "-n", "--hosts", toml.to_str().unwrap(), "desk"]);
    assert!(
        err.contains("\"desk\" is not a MAC address") && err.contains("hosts.toml"),
        "{err}"
    );
}

#[test]
fn listen_rejects_send_options_and_bad_raw_interface() {
    sockbox().args(["wake", "listen", MAC]).assert().code(2);
    sockbox()
        .args(["wake", "listen", "--port", "0", "--raw", "sbxnope2"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sbxnope2"));
}

/// Regression (issue 17 #5): the HP switch spelling `010203-040506` is a
/// MAC address, and `-n -q` prints nothing (it printed the whole plan).
#[test]
fn hp_spelling_parses_and_a_quiet_dry_run_prints_nothing() {
    let out = sockbox()
        .args(["wake", "-n", "--to", "127.0.0.1", "010203-040506"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("would wake 01:02:03:04:05:06 with 102 bytes"),
        "{out}"
    );
    sockbox()
        .args(["wake", "-n", "-q", "--to", "127.0.0.1", "010203-040506"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    // A bad one among good ones: still a dry run of the good one, exit 1.
    let o = sockbox()
        .args([
            "wake",
            "-n",
            "-q",
            "--to",
            "127.0.0.1",
            "zz",
            "010203-040506",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\"zz\"") && err.contains("skipped"), "{err}");
    // Nothing valid: exit 2, each bad one named, then what it means.
    let o = sockbox()
        .args(["wake", "-n", "zz:zz:zz:zz:zz:zz", "00:11"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains("\"zz:zz:zz:zz:zz:zz\""), "{err}");
    assert!(lines[1].contains("\"00:11\""), "{err}");
    assert!(lines[2].contains("none of the 2 targets"), "{err}");
}
