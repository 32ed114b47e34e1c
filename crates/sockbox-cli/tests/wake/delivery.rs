//! Delivery across namespaces: the default broadcast, unicast, SecureOn,
//! raw 0x0842 frames, IPv6 ff02::1, two interfaces, repeats.

use super::*;

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
    let summary = l.log();
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
    let summary = l.log();
    assert!(
        summary.contains("3 magic packets, 1 other datagram ignored"),
        "{summary}"
    );
}

/// Regression (issue 16 #19): a hosts-file line `MAC ADDR:PORT name` also
/// went to every interface's broadcast on port 9; the line's address
/// replaces the broadcast, as `--to` does.
#[test]
fn a_hosts_file_address_replaces_the_broadcast() {
    if !require_root("a_hosts_file_address_replaces_the_broadcast") {
        return;
    }
    let (a, b) = pair("wf");
    let on_2050 = Listener::start(&b, &["--port", "2050", "--count", "1"]);
    let on_9 = Listener::start(&b, &["--count", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(&file, "00:11:22:33:55:08 10.77.1.2:2050 hostA\n").unwrap();
    let (code, out, err) = run_in(&a, &["wake", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out, "sent hostA (00:11:22:33:55:08) to udp 10.77.1.2:2050\n",
        "{err}"
    );
    assert_eq!(
        on_2050.next(10).expect("unicast arrives")["mac"],
        "00:11:22:33:55:08"
    );
    // Then a broadcast to port 9 for another MAC: it must be the first
    // packet port 9 sees (had the file's host been broadcast too, its
    // packet would have come first).
    let (code, _, err) = run_in(&a, &["wake", "00:11:22:33:55:09"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        on_9.next(10).expect("broadcast arrives")["mac"],
        "00:11:22:33:55:09"
    );
    // -b keeps the broadcast as well.
    let (code, out, _) = run_in(&a, &["wake", "-n", "-b", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("udp 10.77.1.255:9 on wa") && out.contains("udp 10.77.1.2:2050"),
        "{out}"
    );
}

/// Regression (issue 17 #5): one bad MAC address made `wake` send nothing
/// and exit 2; a bad line in a `-f` file too. As wakeonlan does, the bad
/// one is reported and the valid ones are sent; the exit code is 1.
#[test]
fn a_bad_mac_or_hosts_file_line_is_skipped_and_the_others_are_woken() {
    if !require_root("a_bad_mac_or_hosts_file_line_is_skipped_and_the_others_are_woken") {
        return;
    }
    let (a, b) = pair("wz");
    let l = Listener::start(&b, &["--count", "2"]);
    let (code, out, err) = run_in(&a, &["wake", "zz:zz:zz:zz:zz:zz", "01:02:03:04:05:06"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("invalid MAC address \"zz:zz:zz:zz:zz:zz\"") && err.contains("skipped"),
        "{err}"
    );
    assert_eq!(
        out,
        "sent 01:02:03:04:05:06 to udp 10.77.1.255:9 on wa from 10.77.1.1\n"
    );
    assert_eq!(
        l.next(10).expect("the valid one arrives")["mac"],
        "01:02:03:04:05:06"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.txt");
    std::fs::write(&file, "00:11:22:33:44\n010203-040507 hp\n").unwrap();
    let (code, out, err) = run_in(&a, &["wake", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("hosts.txt:1: invalid MAC address"), "{err}");
    assert!(out.contains("sent hp (01:02:03:04:05:07)"), "{out}");
    assert_eq!(
        l.next(10).expect("the file's valid host arrives")["mac"],
        "01:02:03:04:05:07"
    );
}
