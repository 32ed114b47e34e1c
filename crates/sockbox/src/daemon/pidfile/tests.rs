//! Unit tests of pid files: creation, locking, takeover, removal, user switch.

use super::*;

fn loc(dir: &Path) -> PidFileLocation {
    PidFileLocation::new(&dir.join("s.pid")).unwrap()
}

#[test]
fn creates_locks_and_removes() {
    let d = tempfile::tempdir().unwrap();
    let (pf, notice) = loc(d.path()).acquire(1234).unwrap();
    assert!(notice.is_none());
    assert_eq!(
        std::fs::read_to_string(d.path().join("s.pid")).unwrap(),
        "1234\n"
    );
    // A second open file description cannot take the lock.
    let f = File::open(d.path().join("s.pid")).unwrap();
    assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
    // No temporary is left behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    assert_eq!(pf.remove().unwrap(), Removal::Removed);
    assert!(!d.path().join("s.pid").exists());
}

#[test]
fn second_acquire_names_the_holder() {
    let d = tempfile::tempdir().unwrap();
    let (_pf, _) = loc(d.path()).acquire(4321).unwrap();
    match loc(d.path()).acquire(99) {
        Err(e @ DaemonError::AlreadyRunning { .. }) => {
            assert!(e.is_usage());
            assert!(e.to_string().contains("pid 4321"), "{e}");
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
}

#[test]
fn stale_file_is_taken_over_with_a_notice() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("s.pid"), "777\n").unwrap();
    let (pf, notice) = loc(d.path()).acquire(888).unwrap();
    let notice = notice.unwrap();
    assert!(
        notice.contains("stale") && notice.contains("777"),
        "{notice}"
    );
    assert_eq!(std::fs::read_to_string(pf.path()).unwrap(), "888\n");
    drop(pf);
    assert!(
        !d.path().join("s.pid").exists(),
        "dropped pid file is removed"
    );
}

#[test]
fn garbage_stale_file_is_taken_over() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("s.pid"), "not a pid").unwrap();
    let (_pf, notice) = loc(d.path()).acquire(5).unwrap();
    assert!(notice.unwrap().contains("named pid nothing"));
}

#[test]
fn symlink_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("s.pid")).unwrap();
    assert!(matches!(
        loc(d.path()).acquire(1),
        Err(DaemonError::PidFileSymlink(_))
    ));
}

#[test]
fn a_replaced_file_is_not_removed() {
    let d = tempfile::tempdir().unwrap();
    let (pf, _) = loc(d.path()).acquire(1).unwrap();
    std::fs::remove_file(d.path().join("s.pid")).unwrap();
    std::fs::write(d.path().join("s.pid"), "2\n").unwrap();
    assert_eq!(pf.remove().unwrap(), Removal::NotOurs);
    assert_eq!(
        std::fs::read_to_string(d.path().join("s.pid")).unwrap(),
        "2\n"
    );
}

#[test]
fn unlink_needs_write_and_search_and_ownership_in_sticky_dirs() {
    const NOBODY: u32 = 65534;
    // /tmp: anyone may write, only owners delete.
    assert_eq!(
        unlink_rule(0o41777, 0, 0, NOBODY, &[NOBODY]),
        Unlink::IfOwner
    );
    // A root-only /run.
    assert_eq!(
        unlink_rule(0o40755, 0, 0, NOBODY, &[NOBODY]),
        Unlink::Denied
    );
    // The user's own directory, sticky or not.
    assert_eq!(
        unlink_rule(0o41700, NOBODY, 0, NOBODY, &[]),
        Unlink::Allowed
    );
    assert_eq!(
        unlink_rule(0o40700, NOBODY, 0, NOBODY, &[]),
        Unlink::Allowed
    );
    // Group-writable for one of the user's groups; the owner's bits do
    // not count for others.
    assert_eq!(unlink_rule(0o40070, 0, 7, NOBODY, &[7]), Unlink::Allowed);
    assert_eq!(unlink_rule(0o40770, 0, 7, NOBODY, &[8]), Unlink::Denied);
    // Write without search is not enough.
    assert_eq!(unlink_rule(0o40772, 0, 0, NOBODY, &[]), Unlink::Denied);
}

#[test]
fn user_switch_in_a_sticky_directory_gives_the_file_to_the_user() {
    if !Uid::effective().is_root() {
        eprintln!("skipping: chown needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (pf, _) = loc(d.path()).acquire(1).unwrap();
    let nobody = (Uid::from_raw(65534), Gid::from_raw(65534));
    assert!(
        pf.prepare_user_switch(nobody.0, Some(nobody.1), &[])
            .unwrap()
    );
    let meta = std::fs::metadata(d.path().join("s.pid")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // A root-only directory: nothing changes, and the caller is told.
    let r = tempfile::tempdir().unwrap();
    std::fs::set_permissions(r.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (pf, _) = loc(r.path()).acquire(1).unwrap();
    assert!(
        !pf.prepare_user_switch(nobody.0, Some(nobody.1), &[])
            .unwrap()
    );
    assert_eq!(std::fs::metadata(r.path().join("s.pid")).unwrap().uid(), 0);
    assert_eq!(pf.dir(), r.path());
}

#[test]
fn missing_directory_is_a_usage_error_naming_the_path() {
    let e = PidFileLocation::new(Path::new("/nonexistent-sockbox/x.pid")).unwrap_err();
    assert!(e.is_usage(), "{e}");
    assert!(e.to_string().contains("/nonexistent-sockbox/x.pid"), "{e}");
    assert!(
        e.to_string().contains("mkdir -p /nonexistent-sockbox"),
        "{e}"
    );
}
