//! `sockbox wake` and `sockbox wake listen`: host A sends, host B listens,
//! each in its own network namespace joined by veth pairs ([`delivery`]);
//! dry runs, hosts files and bad input ([`input`]); the listener on
//! loopback and `--wait` ([`listen_wait`]). This file holds what they share.

mod delivery;
mod input;
mod listen_wait;

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::Value;
use sockbox_wire::hexdump;
use sockbox_wire::mac::MacAddr;
use sockbox_wire::magic::{Password, Repr};

use crate::util::netns::{Netns, link, wait_until};
use crate::util::server::Spawned;
use crate::util::{require_root, sockbox};

const MAC: &str = "00:11:22:33:44:55";

/// A `sockbox wake listen --json` running in a namespace; killed on drop.
struct Listener(Spawned);

impl Listener {
    fn start(ns: &Netns, args: &[&str]) -> Self {
        let mut cmd = ns.sockbox();
        cmd.args(["wake", "listen", "--json"]).args(args);
        let l = Self(Spawned::start(cmd));
        l.0.wait_for_stderr("listening for magic packets", Duration::from_secs(20));
        l
    }

    /// The next JSON event, within `secs`.
    fn next(&self, secs: u64) -> Option<Value> {
        let line = self.0.line(Duration::from_secs(secs))?;
        Some(serde_json::from_str(&line).expect("JSON line"))
    }

    fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        self.0.wait_exit(Duration::from_secs(secs))
    }

    /// Its log (standard error) so far: complete after [`Self::wait_exit`].
    fn log(&self) -> String {
        self.0.log()
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

/// Run `sockbox ARGS` on this host, insist it exits 2 (usage or input
/// error), and return its standard error: one line of ours (`sockbox: …`),
/// or clap's message.
fn usage_error(args: &[&str]) -> String {
    let out = sockbox().args(args).assert().code(2).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if err.starts_with("sockbox:") {
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    err
}

fn mac_of(ns: &Netns, ifname: &str) -> String {
    let out = ns.sh(&format!("cat /sys/class/net/{ifname}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
