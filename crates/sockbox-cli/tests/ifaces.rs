//! `sockbox ifaces`.

use crate::util::sockbox;

#[test]
fn lists_loopback_human_and_json() {
    let out = sockbox()
        .arg("ifaces")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("inet 127.0.0.1/8"), "{text}");
    assert!(text.contains("LOOPBACK"), "{text}");
    assert!(text.contains("link/loopback 00:00:00:00:00:00"), "{text}");

    let out = sockbox()
        .args(["ifaces", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lo = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["flags"]["loopback"] == true)
        .expect("loopback in JSON");
    assert!(
        lo["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["net"] == "127.0.0.1/8")
    );
}

#[test]
fn unknown_interface_exits_2_naming_it() {
    sockbox()
        .args(["ifaces", "nosuchif0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nosuchif0"));
}

#[test]
fn interface_in_a_namespace_shows_mac_and_broadcast() {
    use crate::util::netns::{Netns, link};
    if !crate::util::require_root("interface_in_a_namespace_shows_mac_and_broadcast") {
        return;
    }
    let a = Netns::new("if");
    let b = Netns::new("if");
    link(&a, "eth0", "10.77.1.1/24", &b, "eth0", "10.77.1.2/24");
    let out = a
        .sockbox()
        .args(["ifaces", "eth0", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "eth0");
    assert_eq!(v["flags"]["broadcast"], true);
    assert!(v["mac"].as_str().unwrap().len() == 17);
    let addr = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["net"] == "10.77.1.1/24")
        .unwrap();
    assert_eq!(addr["broadcast"], "10.77.1.255");
}
