//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod netns;
pub mod procs;
pub mod server;
pub mod skip;

use std::process::Command;

/// A `Command` for the sockbox binary under test.
pub fn sockbox() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("sockbox").expect("sockbox binary is built")
}

/// A `std::process::Command` for the sockbox binary (for spawning servers).
pub fn sockbox_std() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("sockbox"))
}

/// True when running under CI (`CI=true`): missing privileges fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when we are root. Under CI, not being root fails the test; outside CI
/// the skip is recorded ([`skipped`]) and this returns false.
#[must_use]
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: needs root under CI=true, but euid is not 0"
    );
    skip::record(test, "needs root (raw sockets / network namespaces)");
    false
}

/// Record that the running test skips (all or part of) itself for `reason`.
/// The caller decides whether that may happen under CI. Every skip is
/// counted in one summary line at the end of the run (see [`skip`]).
pub fn skipped(reason: &str) {
    let thread = std::thread::current();
    skip::record(thread.name().unwrap_or("(unnamed test)"), reason);
}
