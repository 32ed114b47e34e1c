//! Skipped tests, visible in a normal `cargo test` run.
//!
//! libtest has no "skipped" outcome: a test that returns early counts as
//! passed, and what it prints is captured (shown only with `--nocapture` or
//! when it fails). So skips are recorded here, and one line is printed
//! when the test binary exits, after libtest's own `test result:` line:
//!
//! ```text
//! note: 39 tests skipped (outside CI; CI=true makes them fail): 37 needs root (…); 2 …
//! ```
//!
//! It is printed by a C `atexit` handler, which runs however the harness
//! ends (returning from `main` when all passed, `process::exit(101)` when
//! some failed) and after every test, whatever the order and the thread
//! count. It writes to the process's standard error directly, which libtest
//! does not capture (only the `print!` family is captured). The full list,
//! test by test, goes to `skipped-tests.txt` under cargo's
//! `CARGO_TARGET_TMPDIR`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Mutex, Once, PoisonError};

/// (test, reason) of every skip so far.
static SKIPS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static SUMMARY_AT_EXIT: Once = Once::new();

/// Record a skip of `test` for `reason` (also said on the test's own output,
/// for `--nocapture`).
pub fn record(test: &str, reason: &str) {
    eprintln!("skipping {test}: {reason}");
    SKIPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((test.to_owned(), reason.to_owned()));
    SUMMARY_AT_EXIT.call_once(|| {
        // SAFETY: `atexit` only stores the function pointer; `summary` is
        // an `extern "C" fn` that never unwinds (it takes no lock that can
        // block, and ignores every error) and lives for the whole process.
        #[expect(
            unsafe_code,
            reason = "libc::atexit is the one exit hook libtest leaves"
        )]
        let registered = unsafe { libc::atexit(summary) };
        if registered != 0 {
            eprintln!("could not register the skipped-tests summary");
        }
    });
}

/// The summary line (and the file) from the recorded skips; `None` when
/// nothing was skipped.
fn render(skips: &[(String, String)]) -> Option<(String, String)> {
    let mut unique: Vec<&(String, String)> = skips.iter().collect();
    unique.sort();
    unique.dedup();
    let tests = {
        let mut t: Vec<&str> = unique.iter().map(|(t, _)| t.as_str()).collect();
        t.dedup();
        t.len()
    };
    if tests == 0 {
        return None;
    }
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, reason) in &unique {
        *by_reason.entry(reason.as_str()).or_default() += 1;
    }
    let reasons: Vec<String> = by_reason
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt");
    let line = format!(
        "note: {tests} test{} skipped (outside CI; CI=true makes them fail): {}; list in {path}\n",
        if tests == 1 { "" } else { "s" },
        reasons.join("; "),
    );
    let mut list = String::new();
    for (test, reason) in &unique {
        let _ = writeln!(list, "{test}: {reason}");
    }
    Some((line, list))
}

extern "C" fn summary() {
    // Never block at exit: a test thread still running (libtest does not
    // wait for timed-out ones) may hold the lock.
    let skips = match SKIPS.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    let Some((line, list)) = render(&skips) else {
        return;
    };
    let _ = std::fs::write(
        concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt"),
        list,
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[test]
fn summary_counts_tests_once_and_groups_reasons() {
    let skips = [
        ("ping::a", "needs root"),
        ("ping::b", "needs root"),
        ("ping::b", "needs root"),
        ("offline::c", "hexdump is not installed"),
    ]
    .map(|(t, r)| (t.to_owned(), r.to_owned()));
    let (line, list) = render(&skips).unwrap();
    assert!(line.starts_with("note: 3 tests skipped"), "{line}");
    assert!(
        line.contains("1 hexdump is not installed; 2 needs root; list in "),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    assert_eq!(list.lines().count(), 3);
    assert!(render(&[]).is_none());
}
