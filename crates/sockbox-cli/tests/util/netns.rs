//! Network namespaces for tests: hosts that exist only inside this test run.
//!
//! Every namespace and veth created here is deleted on drop, even when the
//! test panics. Names carry the process id and a counter so parallel tests
//! never collide. Addresses used are from 10.x private ranges inside the
//! namespaces only.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run `ip ARGS…` and panic with its stderr on failure.
pub fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (install iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A short unique suffix for names (interface names max 15 chars).
pub fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{}", std::process::id() % 100_000, n)
}

/// A network namespace, deleted on drop.
pub struct Netns {
    /// Its name, for `ip netns exec`.
    pub name: String,
}

impl Netns {
    /// Create a namespace with loopback up.
    pub fn new(tag: &str) -> Self {
        let name = format!("sbx{tag}{}", unique());
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS…`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// A `Command` that runs `program` inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The sockbox binary inside this namespace.
    pub fn sockbox(&self) -> Command {
        self.command(assert_cmd::cargo::cargo_bin("sockbox"))
    }

    /// Run a shell command inside this namespace, panicking on failure.
    pub fn sh(&self, script: &str) -> Output {
        let out = self
            .command("sh")
            .args(["-c", script])
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "in {}: {script}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veth ends inside it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// Connect `a` and `b` with a veth pair named `<a_if>`/`<b_if>` inside them,
/// give each its address (CIDR form, e.g. `10.77.1.1/24`) and bring both up.
pub fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    let tmp_a = format!("va{}", unique());
    let tmp_b = format!("vb{}", unique());
    ip(&[
        "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
    ]);
    ip(&["link", "set", &tmp_a, "netns", &a.name]);
    ip(&["link", "set", &tmp_b, "netns", &b.name]);
    a.ip(&["link", "set", &tmp_a, "name", a_if]);
    b.ip(&["link", "set", &tmp_b, "name", b_if]);
    a.ip(&["addr", "add", a_addr, "dev", a_if]);
    b.ip(&["addr", "add", b_addr, "dev", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A bridge inside namespace `hub`, with each `(ns, if, addr)` attached by a
/// veth pair: several hosts on one L2 segment.
pub fn bridge(hub: &Netns, hosts: &[(&Netns, &str, &str)]) {
    hub.ip(&["link", "add", "br0", "type", "bridge"]);
    hub.ip(&["link", "set", "br0", "up"]);
    for (i, (ns, ifname, addr)) in hosts.iter().enumerate() {
        let port = format!("p{i}");
        let tmp = format!("vh{}", unique());
        ip(&[
            "link",
            "add",
            &tmp,
            "type",
            "veth",
            "peer",
            "name",
            &format!("vp{}", unique()),
        ]);
        // Find the peer name we just gave: re-read is simpler than tracking.
        let out = ip(&["-o", "link", "show", &tmp]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let peer = text
            .split(':')
            .nth(1)
            .and_then(|s| s.split('@').nth(1))
            .map(str::trim)
            .expect("veth peer name")
            .to_owned();
        ip(&["link", "set", &tmp, "netns", &ns.name]);
        ip(&["link", "set", &peer, "netns", &hub.name]);
        ns.ip(&["link", "set", &tmp, "name", ifname]);
        hub.ip(&["link", "set", &peer, "name", &port]);
        hub.ip(&["link", "set", &port, "master", "br0"]);
        hub.ip(&["link", "set", &port, "up"]);
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// Wait until `cond` is true, polling every 20 ms for at most `secs`.
pub fn wait_until(secs: f64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}
