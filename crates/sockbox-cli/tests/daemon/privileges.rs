//! `--user`, `--group`, `--chroot`: the privilege drop, seen from `/proc`.

use super::*;

#[test]
fn user_nobody_drops_every_id_on_every_thread_and_still_serves() {
    if !require_root("user_nobody_drops_every_id_on_every_thread_and_still_serves") {
        return;
    }
    let env = Env::new();
    let d = env.start_ok(&["--user", "nobody"]);
    let port = env.port();
    let tasks: Vec<PathBuf> = fs::read_dir(format!("/proc/{}/task", d.pid))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(tasks.len() > 1, "the runtime has worker threads");
    let want = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
    for task in tasks {
        let st = fs::read_to_string(task.join("status")).unwrap();
        let field = |k: &str| {
            st.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
                .unwrap()
                .to_owned()
        };
        // real, effective, saved (and filesystem) ids.
        assert_eq!(field("Uid"), want, "{}", task.display());
        assert_eq!(field("Gid"), want, "{}", task.display());
        for cap in ["CapPrm", "CapEff", "CapAmb", "CapBnd"] {
            assert_eq!(
                field(cap),
                "0000000000000000",
                "{cap} of {}",
                task.display()
            );
        }
        assert_eq!(field("NoNewPrivs"), "1");
    }
    assert!(env.log().contains("dropped privileges"));
    assert_eq!(tcp_echo(port, b"as nobody"), b"as nobody");
    assert_eq!(udp_echo(port, b"udp as nobody"), b"udp as nobody");
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
    // nobody may not unlink in this root-only directory: the pid file is
    // emptied instead, and unlocked it counts as stale.
    let left = fs::read_to_string(env.pid_file()).unwrap_or_default();
    assert_eq!(left, "", "pid file removed or emptied");
}

#[test]
fn chroot_with_user_jails_the_daemon() {
    if !require_root("chroot_with_user_jails_the_daemon") {
        return;
    }
    let env = Env::new();
    let jail = tempfile::tempdir().unwrap();
    let jail_path = Env::path_str(jail.path());
    let d = env.start_ok(&["--user", "nobody", "--chroot", &jail_path]);
    let port = env.port();
    assert_eq!(
        fs::read_link(format!("/proc/{}/root", d.pid)).unwrap(),
        fs::canonicalize(jail.path()).unwrap()
    );
    assert_eq!(tcp_echo(port, b"jailed"), b"jailed");
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
}

#[test]
fn user_flag_is_refused_without_root() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        // Already unprivileged: try directly.
        let out = sockbox_std()
            .args(["echo", "0", "--user", "nobody"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        return;
    }
    let out = sockbox_std()
        .args(["echo", "127.0.0.1", "0", "--user", "nobody"])
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            crate::util::skipped(&format!(
                "the sockbox binary is not executable as nobody: {e}"
            ));
            return;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--user needs root") && err.contains("65534"),
        "{err}"
    );
}
