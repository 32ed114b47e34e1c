//! The prober on the daemon layer: detached, pid file, privileges dropped
//! after the ICMP sockets are open, SIGHUP reload as the unprivileged
//! user, SIGTERM exit.

use std::time::{Duration, Instant};

use super::{for_host, scrape_until};
use crate::util::{require_root, sockbox};

fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// True once `pid` has exited: reaped here when it is our child (the daemon
/// tests make this process a subreaper, so a detached daemon may be), else
/// gone from /proc or a zombie of someone else.
fn exited(pid: nix::unistd::Pid) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        Err(_) => std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        }),
    }
}

#[test]
fn detached_prober_drops_privileges_reloads_and_stops_on_sigterm() {
    if !require_root("detached_prober_drops_privileges_reloads_and_stops_on_sigterm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("prober.pid");
    let log = dir.path().join("prober.log");
    sockbox()
        .args([
            "ping",
            "--serve",
            "127.0.0.1:0",
            "-i",
            "100ms",
            "127.0.0.1",
            "--daemon",
        ])
        .args(["--user", "nobody", "--pid-file"])
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log)
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let addr: std::net::SocketAddr = text
        .split("listen=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listen= in the log: {text}"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    // Probing goes on as nobody, and a reload works there too.
    scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.1").unwrap_or(0.0) >= 5.0
    });
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(wait_for(10, || std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("configuration loaded")
        .count()
        >= 2));
    let before = for_host(
        &scrape_until(addr, 5, |_| true),
        "smokeping_requests_total",
        "127.0.0.1",
    )
    .unwrap();
    scrape_until(addr, 10, |t| {
        for_host(t, "smokeping_requests_total", "127.0.0.1").unwrap_or(0.0) > before
    });
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(wait_for(15, || exited(pid)), "still running after SIGTERM");
    // Removed, or emptied where nobody may not delete it (this directory).
    assert!(
        wait_for(5, || std::fs::read_to_string(&pid_file)
            .map_or(true, |t| t.is_empty())),
        "pid file left behind"
    );
}
