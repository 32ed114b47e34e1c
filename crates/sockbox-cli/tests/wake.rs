//! `sockbox wake` and `sockbox wake listen`: host A sends, host B listens,
//! each in its own network namespace joined by veth pairs.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sockbox_wire::hexdump;
use sockbox_wire::mac::MacAddr;
use sockbox_wire::magic::{Password, Repr};

use crate::util::netns::{Netns, link, wait_until};
use crate::util::{require_root, sockbox};

const MAC: &str = "00:11:22:33:44:55";

/// A `sockbox wake listen` running in a namespace; killed on drop.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Listener {
    fn start(ns: &Netns, args: &[&str]) -> Self {
        let mut child = ns
            .sockbox()
            .args(["wake", "listen", "--json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listener");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let (etx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(l);
            }
        });
        let l = Self {
            child,
            lines,
            stderr,
        };
        let ready = l
            .stderr
            .recv_timeout(Duration::from_secs(20))
            .expect("listener prints its readiness line");
        assert!(ready.starts_with("listening for magic packets"), "{ready}");
        l
    }

    /// The next JSON event, within `secs`.
    fn next(&self, secs: u64) -> Option<Value> {
        let line = self.lines.recv_timeout(Duration::from_secs(secs)).ok()?;
        Some(serde_json::from_str(&line).expect("JSON line"))
    }

    fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two namespaces joined by one veth pair: A `wa` 10.77.1.1/24, B `wb` 10.77.1.2/24.
fn pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    link(&a, "wa", "10.77.1.1/24", &b, "wb", "10.77.1.2/24");
    (a, b)
}

fn run_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    let out = ns.sockbox().args(args).output().expect("run sockbox");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mac_of(ns: &Netns, ifname: &str) -> String {
    let out = ns.sh(&format!("cat /sys/class/net/{ifname}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn default_send_reaches_listener_on_the_broadcast_and_decodes() {
    if !require_root("default_send_reaches_listener_on_the_broadcast_and_decodes") {
        return;
    }
    let (a, b) = pair("wk");
    let mut l = Listener::start(&b, &["--count", "1"]);
    // A has no default route: the broadcast must still leave by wa.
    let (code, out, err) = run_in(&a, &["wake", MAC]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!("sent {MAC} to udp 10.77.1.255:9 on wa from 10.77.1.1\n")
    );
    let ev = l.next(10).expect("magic packet arrives");
    assert_eq!(ev["mac"], MAC);
    assert_eq!(ev["transport"], "udp");
    assert_eq!(
        ev["from"].as_str().unwrap().split(':').next(),
        Some("10.77.1.1")
    );
    assert_eq!(ev["password"], Value::Null);
    assert!(l.wait_exit(10).is_some_and(|s| s.success()));
    let summary = l.stderr_lines().join("\n");
    assert!(
        summary.contains("1 magic packet, 0 other datagrams"),
        "{summary}"
    );
}

#[test]
fn unicast_with_to_and_a_non_default_port() {
    if !require_root("unicast_with_to_and_a_non_default_port") {
        return;
    }
    let (a, b) = pair("wu");
    let l = Listener::start(&b, &["--port", "2050", "--count", "2"]);
    let (code, out, err) = run_in(&a, &["wake", "--to", "10.77.1.2:2050", "00-11-22-33-44-66"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "sent 00:11:22:33:44:66 to udp 10.77.1.2:2050\n");
    assert_eq!(
        l.next(10).expect("unicast arrives")["mac"],
        "00:11:22:33:44:66"
    );
    // -p applies to broadcasts too.
    let (code, out, err) = run_in(&a, &["wake", "-p", "2050", "0011.2233.4477"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("udp 10.77.1.255:2050 on wa"), "{out}");
    assert_eq!(
        l.next(10).expect("broadcast arrives")["mac"],
        "00:11:22:33:44:77"
    );
}

#[test]
fn secureon_passwords_four_and_six_bytes() {
    if !require_root("secureon_passwords_four_and_six_bytes") {
        return;
    }
    let (a, b) = pair("wp");
    let l = Listener::start(&b, &["--count", "2"]);
    let (code, _, err) = run_in(&a, &["wake", "--password", "192.168.1.1", MAC]);
    assert_eq!(code, 0, "{err}");
    let ev = l.next(10).expect("4-byte SecureOn arrives");
    assert_eq!(
        (ev["password"].as_str(), ev["len"].as_u64()),
        (Some("192.168.1.1"), Some(106))
    );
    let (code, _, err) = run_in(&a, &["wake", "--password", "DE-AD-BE-EF-00-01", MAC]);
    assert_eq!(code, 0, "{err}");
    let ev = l.next(10).expect("6-byte SecureOn arrives");
    assert_eq!(
        (ev["password"].as_str(), ev["len"].as_u64()),
        (Some("de:ad:be:ef:00:01"), Some(108))
    );
    let (code, _, err) = run_in(&a, &["wake", "--password", "1.2.3.999", MAC]);
    assert_eq!(code, 2);
    assert!(err.contains("\"1.2.3.999\""), "{err}");
}

#[test]
fn raw_0842_frames_broadcast_and_unicast() {
    if !require_root("raw_0842_frames_broadcast_and_unicast") {
        return;
    }
    let (a, b) = pair("wr");
    let l = Listener::start(&b, &["--raw", "wb", "--no-udp", "--count", "2"]);
    let a_mac = mac_of(&a, "wa");
    let (code, out, err) = run_in(&a, &["wake", "--raw", "wa", MAC]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("sent {MAC} to ethernet 0x0842 to ff:ff:ff:ff:ff:ff on wa\n")
    );
    let ev = l.next(10).expect("raw frame arrives");
    assert_eq!(ev["transport"], "raw");
    assert_eq!(ev["iface"], "wb");
    assert_eq!(ev["from"], a_mac);
    assert_eq!(ev["mac"], MAC);
    // To the target's MAC: B's own MAC, so B's NIC accepts the unicast frame.
    let b_mac = mac_of(&b, "wb");
    let (code, out, err) = run_in(&a, &["wake", "--raw", "wa", "--raw-unicast", &b_mac]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("ethernet 0x0842 to {b_mac} on wa")),
        "{out}"
    );
    assert_eq!(l.next(10).expect("unicast raw frame arrives")["mac"], b_mac);
}

fn wait_ipv6_ready(ns: &Netns, ifname: &str) {
    let ok = wait_until(10.0, || {
        let out = ns.ip(&["-6", "addr", "show", "dev", ifname]);
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.contains("fe80::") && !s.contains("tentative")
    });
    assert!(
        ok,
        "IPv6 link-local on {ifname} in {} never became ready",
        ns.name
    );
}

#[test]
fn ipv6_all_nodes_on_each_interface() {
    if !require_root("ipv6_all_nodes_on_each_interface") {
        return;
    }
    let (a, b) = pair("w6");
    wait_ipv6_ready(&a, "wa");
    wait_ipv6_ready(&b, "wb");
    let l = Listener::start(&b, &["--count", "1"]);
    let (code, out, err) = run_in(&a, &["wake", "--ipv6", MAC]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("sent {MAC} to udp [ff02::1]:9 on wa from fe80::")),
        "{out}"
    );
    let ev = l.next(10).expect("ff02::1 packet arrives");
    assert_eq!(ev["mac"], MAC);
    assert!(ev["from"].as_str().unwrap().starts_with("[fe80::"), "{ev}");
}

#[test]
fn two_interfaces_each_get_their_own_broadcast() {
    if !require_root("two_interfaces_each_get_their_own_broadcast") {
        return;
    }
    // A has two NICs on two subnets, and no default route; B is on both.
    let a = Netns::new("w2a");
    let b = Netns::new("w2b");
    link(&a, "wa1", "10.77.1.1/24", &b, "wb1", "10.77.1.2/24");
    link(&a, "wa2", "10.77.2.1/24", &b, "wb2", "10.77.2.2/24");
    let l = Listener::start(&b, &["--count", "2"]);
    let (code, out, err) = run_in(&a, &["wake", MAC]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("udp 10.77.1.255:9 on wa1 from 10.77.1.1"),
        "{out}"
    );
    assert!(
        out.contains("udp 10.77.2.255:9 on wa2 from 10.77.2.1"),
        "{out}"
    );
    let mut from: Vec<String> = (0..2)
        .map(|_| {
            let ev = l.next(10).expect("both broadcasts arrive");
            assert_eq!(ev["mac"], MAC);
            ev["from"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    from.sort();
    assert_eq!(from, ["10.77.1.1", "10.77.2.1"]);
    // --iface restricts to one of them.
    let (code, out, _) = run_in(&a, &["wake", "--iface", "wa2", "-n", MAC]);
    assert_eq!(code, 0);
    assert!(out.contains("on wa2") && !out.contains("on wa1"), "{out}");
}

#[test]
fn count_and_delay_repeat_and_junk_is_counted_not_shown() {
    if !require_root("count_and_delay_repeat_and_junk_is_counted_not_shown") {
        return;
    }
    let (a, b) = pair("wc");
    let mut l = Listener::start(&b, &["--count", "3"]);
    // One junk datagram first, from bash's /dev/udp.
    let st = a
        .command("bash")
        .args([
            "-c",
            "exec 3<>/dev/udp/10.77.1.2/9 && printf 'not a magic packet' >&3",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, out, err) = run_in(&a, &["wake", "--count", "3", "--delay", "20ms", MAC]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.starts_with("[1/3] sent"), "{out}");
    for _ in 0..3 {
        assert_eq!(l.next(10).expect("three packets")["mac"], MAC);
    }
    assert!(l.wait_exit(10).is_some_and(|s| s.success()));
    let summary = l.stderr_lines().join("\n");
    assert!(
        summary.contains("3 magic packets, 1 other datagram ignored"),
        "{summary}"
    );
}

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
        let out = sockbox()
            .args(["wake", "-n", bad])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("\"{bad}\"")), "{bad}: {err}");
        assert!(err.contains("invalid MAC address"), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = sockbox()
        .args(["wake", "-n", "001122zz4455"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"001122zz4455\" is not a MAC address"),
        "{err}"
    );
    sockbox().arg("wake").assert().code(2);
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

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "00:11:22:33:44:55 nas\n\n00:11:22:33:44 pc\n").unwrap();
    let out = sockbox()
        .args(["wake", "-n", "-f"])
        .arg(&bad)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
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
    let out = sockbox()
        .args(["wake", "-n", "--hosts"])
        .arg(&toml)
        .arg("desk")
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
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

#[test]
fn listener_on_loopback_decodes_magic_after_junk() {
    // No root needed: a high port on loopback.
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut child = crate::util::sockbox_std()
        .args([
            "wake",
            "listen",
            "--json",
            "--bind",
            "127.0.0.1",
            "--count",
            "1",
        ])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let stdout = child.stdout.take().unwrap();
    let mut guard = Kill(child);
    let mut ready = String::new();
    err.read_line(&mut ready).unwrap();
    assert!(ready.contains("udp 127.0.0.1:"), "{ready}");
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut payload = b"\xff\xffjunk".to_vec();
    payload.extend_from_slice(&Repr::new(MacAddr([2, 0, 0, 0, 0, 7])).to_bytes());
    payload.extend_from_slice(b"tail");
    tx.send_to(&payload, ("127.0.0.1", port)).unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["mac"].as_str(), v["offset"].as_u64()),
        (Some("02:00:00:00:00:07"), Some(6))
    );
    assert!(wait_until(10.0, || guard.0.try_wait().unwrap().is_some()));
}

#[test]
fn wait_needs_a_host_address_not_a_broadcast() {
    let out = sockbox()
        .args(["wake", "-n", "--wait", MAC])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--wait needs") && err.contains("--wait-addr"),
        "{err}"
    );
    let out = sockbox()
        .args([
            "wake",
            "-n",
            "--wait=3s",
            "--wait-addr",
            "255.255.255.255",
            MAC,
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broadcast"), "{err}");
    // A bad timeout is clap's usage error.
    sockbox().args(["wake", "--wait=5x", MAC]).assert().code(2);
}

#[test]
fn wait_pings_until_up_and_times_out_with_exit_1() {
    if !require_root("wait_pings_until_up_and_times_out_with_exit_1") {
        return;
    }
    let (a, _b) = pair("ww");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(
        &file,
        format!("{MAC} 10.77.1.2 b\n00:11:22:33:44:99 10.77.1.99 ghost\n"),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // B answers ping: exit 0, one "is up" line after the sent lines.
    let (code, out, err) = run_in(&a, &["wake", "-f", f, "--wait=10s", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("sent b ({MAC}) to udp 10.77.1.255:9 on wa")),
        "{out}"
    );
    assert!(out.contains("udp 10.77.1.2:9"), "{out}");
    assert!(
        out.contains(&format!("b ({MAC}) is up: 10.77.1.2 answered after")),
        "{out}"
    );
    assert!(err.contains("waiting up to 10s for b"), "{err}");
    // Nobody at 10.77.1.99: exit 1 after the timeout.
    let t = Instant::now();
    let (code, out, err) = run_in(&a, &["wake", "-f", f, "--wait=2s", "ghost"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("ghost (00:11:22:33:44:99): 10.77.1.99 did not answer within 2s"),
        "{out}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}
