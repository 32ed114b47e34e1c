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
    env.wait_log("dropped privileges");
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

/// `sockbox echo --daemon --user nobody` with its pid file at `pid` (and
/// the log in the test directory): the parent's output and the daemon.
fn start_as_nobody(env: &Env, pid: &Path) -> (Output, Option<Daemon>) {
    let out = sockbox()
        .args(["echo", "127.0.0.1", "0", "--daemon", "--user", "nobody"])
        .arg("--pid-file")
        .arg(pid)
        .arg("--log-file")
        .arg(env.log_file())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let d = out.status.success().then(|| Daemon { pid: read_pid(pid) });
    (out, d)
}

fn owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid()
}

/// Regression: a `--user nobody` daemon left an empty root-owned pid file
/// behind in a sticky directory such as /tmp, where only a file's owner may
/// delete it. The pid file is now given to the user before the switch, and
/// removed at exit.
#[test]
fn user_nobody_removes_its_pid_file_from_a_sticky_directory() {
    use std::os::unix::fs::PermissionsExt;
    if !require_root("user_nobody_removes_its_pid_file_from_a_sticky_directory") {
        return;
    }
    let env = Env::new();
    let sticky = env.dir.path().join("tmp");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let pid = sticky.join("echo.pid");
    let (out, d) = start_as_nobody(&env, &pid);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}\nlog: {}", env.log());
    assert!(
        !err.contains("warning"),
        "no warning for a sticky directory: {err}"
    );
    let d = d.unwrap();
    env.port();
    assert_eq!(owner(&pid), NOBODY, "the pid file belongs to the user");
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0)),
        "log: {}",
        env.log()
    );
    assert!(!pid.exists(), "pid file removed: {}", env.log());
}

/// Where the user may not delete files at all (a root-owned 0755 directory,
/// like /run), the pid file cannot be removed at exit: the command says so
/// at start, naming the directory and the fix, and the file is emptied at
/// exit (stale, and left to root).
#[test]
fn user_nobody_with_a_pid_file_it_cannot_delete_is_warned_at_start() {
    use std::os::unix::fs::PermissionsExt;
    if !require_root("user_nobody_with_a_pid_file_it_cannot_delete_is_warned_at_start") {
        return;
    }
    let env = Env::new();
    let run = env.dir.path().join("run");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let pid = run.join("echo.pid");
    let (out, d) = start_as_nobody(&env, &pid);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}\nlog: {}", env.log());
    let d = d.unwrap();
    let dir = run.display().to_string();
    assert!(
        err.contains("warning")
            && err.contains(&format!("may not delete files in {dir}"))
            && err.contains(&format!("install -d -o nobody {dir}/echo")),
        "the warning names the directory and the fix: {err}"
    );
    env.wait_log("will be left behind");
    env.port();
    d.signal(Signal::SIGTERM);
    assert_eq!(
        d.wait_exit(15),
        Some(WaitStatus::Exited(Pid::from_raw(d.pid), 0))
    );
    assert_eq!(fs::read_to_string(&pid).unwrap(), "", "emptied");
    assert_eq!(owner(&pid), 0, "not handed to the user");
}
