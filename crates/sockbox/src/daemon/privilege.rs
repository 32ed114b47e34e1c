//! Dropping root after the sockets are bound: chroot, group, user.
//!
//! Three steps, at three moments:
//! 1. [`DropPlan::resolve`] before anything else: names become ids (the user
//!    database may not exist inside the chroot), root is required.
//! 2. [`DropPlan::harden`] while the process still has one thread: the
//!    capability bounding set is emptied and `no_new_privs` set, so nothing
//!    the server executes later (a program run per connection) can gain a privilege back, not
//!    even through a set-user-ID binary. Both are per-thread attributes that
//!    threads created afterwards inherit, hence the timing. The capabilities
//!    held now are kept, so binding port 80 still works.
//! 3. [`DropPlan::apply`] once bound: `chroot` + `chdir /`, `setgroups`,
//!    `setresgid`, `setresuid`, then [`DropPlan::verify`] proves the drop is
//!    permanent: real, effective and saved ids are the target on every thread,
//!    `setuid(0)` and `seteuid(0)` fail, and no capability is left. glibc
//!    and musl apply `set*id` and `setgroups` to every thread of the process,
//!    so calling this inside a multi-threaded runtime is correct; the
//!    verification reads `/proc/self/task/*/status` to be sure.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User, getgrouplist, setgroups, setresgid, setresuid};

use super::error::{DaemonError, DropStep, PathRole, io_err};
use crate::sys::process::{cap_mask, status_field};

/// The identity to switch to, resolved to numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropPlan {
    /// The user to become (`None`: stay root, only change group or root dir).
    pub user: Option<(String, Uid)>,
    /// The group to become (default: the user's primary group).
    pub gid: Option<Gid>,
    /// Supplementary groups (the user's, or just `gid`).
    pub groups: Vec<Gid>,
    /// Directory to chroot into.
    pub chroot: Option<PathBuf>,
}

impl DropPlan {
    /// Resolve the user, group and chroot directory to switch to.
    /// `Ok(None)` when none is given. Needs root whenever one is.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
        chroot: Option<&Path>,
    ) -> Result<Option<Self>, DaemonError> {
        if user.is_none() && group.is_none() && chroot.is_none() {
            return Ok(None);
        }
        let euid = Uid::effective();
        if !euid.is_root() {
            let step = if user.is_some() {
                DropStep::User
            } else if group.is_some() {
                DropStep::Group
            } else {
                DropStep::Chroot
            };
            return Err(DaemonError::NotRoot {
                step,
                uid: euid.as_raw(),
            });
        }
        let user = user.map(lookup_user).transpose()?;
        if let Some(u) = &user
            && u.uid.is_root()
        {
            return Err(DaemonError::UserIsRoot(u.name.clone()));
        }
        let gid = match group {
            Some(g) => Some(lookup_group(g)?),
            None => user.as_ref().map(|u| u.gid),
        };
        let groups = match (&user, gid) {
            // The user's own supplementary groups, plus the chosen group.
            (Some(u), Some(g)) => {
                let cname = CString::new(u.name.as_str())
                    .map_err(|_| DaemonError::UnknownUser(u.name.clone()))?;
                let mut list = getgrouplist(&cname, g).unwrap_or_else(|_| vec![g]);
                if !list.contains(&g) {
                    list.push(g);
                }
                list
            }
            (None, Some(g)) => vec![g],
            (_, None) => Vec::new(),
        };
        let chroot = chroot
            .map(|dir| {
                let canon = std::fs::canonicalize(dir).map_err(|source| {
                    if source.kind() == io::ErrorKind::NotFound {
                        DaemonError::MissingDirectory {
                            role: PathRole::Chroot,
                            path: dir.to_owned(),
                            dir: dir.to_owned(),
                        }
                    } else {
                        DaemonError::Chroot {
                            path: dir.to_owned(),
                            source,
                        }
                    }
                })?;
                if canon.is_dir() {
                    Ok(canon)
                } else {
                    Err(DaemonError::Chroot {
                        path: dir.to_owned(),
                        source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                    })
                }
            })
            .transpose()?;
        Ok(Some(Self {
            user: user.map(|u| (u.name, u.uid)),
            gid,
            groups,
            chroot,
        }))
    }

    /// The user id to switch to, if any.
    pub fn uid(&self) -> Option<Uid> {
        self.user.as_ref().map(|(_, u)| *u)
    }

    /// Before any thread exists: empty the capability bounding set and set
    /// `no_new_privs` (only when switching user: a root server keeps root's
    /// powers by design).
    pub fn harden(&self) -> Result<(), DaemonError> {
        if self.user.is_none() {
            return Ok(());
        }
        crate::sys::process::drop_capability_bounding_set().map_err(|source| {
            DaemonError::Privilege {
                op: "empty the capability bounding set".into(),
                source,
            }
        })?;
        nix::sys::prctl::set_no_new_privs().map_err(|e| DaemonError::Privilege {
            op: "set no_new_privs".into(),
            source: io_err(e),
        })
    }

    /// Chroot, then switch groups and user, then [`verify`](Self::verify).
    pub fn apply(&self) -> Result<(), DaemonError> {
        if let Some(dir) = &self.chroot {
            nix::unistd::chroot(dir).map_err(|e| DaemonError::Chroot {
                path: dir.clone(),
                source: io_err(e),
            })?;
            nix::unistd::chdir("/").map_err(|e| DaemonError::Chroot {
                path: dir.clone(),
                source: io_err(e),
            })?;
            super::detach::forget_start_dir();
        }
        if let Some(gid) = self.gid {
            setgroups(&self.groups).map_err(|e| priv_err("setgroups", e))?;
            setresgid(gid, gid, gid).map_err(|e| priv_err(&format!("setresgid {gid}"), e))?;
        }
        if let Some((_, uid)) = &self.user {
            setresuid(*uid, *uid, *uid).map_err(|e| priv_err(&format!("setresuid {uid}"), e))?;
        }
        self.verify()
    }

    /// Prove the drop is permanent; see the module documentation.
    pub fn verify(&self) -> Result<(), DaemonError> {
        let fail = |what: String| Err(DaemonError::DropNotPermanent(what));
        if let Some((name, uid)) = &self.user {
            let r = nix::unistd::getresuid().map_err(|e| priv_err("getresuid", e))?;
            if (r.real, r.effective, r.saved) != (*uid, *uid, *uid) {
                return fail(format!(
                    "uids are {}/{}/{} instead of {uid} ({name})",
                    r.real, r.effective, r.saved
                ));
            }
            if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                return fail("setuid(0) succeeded after the drop".into());
            }
            if nix::unistd::seteuid(Uid::from_raw(0)).is_ok() {
                return fail("seteuid(0) succeeded after the drop".into());
            }
            if nix::unistd::setgid(Gid::from_raw(0)).is_ok() && self.gid != Some(Gid::from_raw(0)) {
                return fail("setgid(0) succeeded after the drop".into());
            }
        }
        if let Some(gid) = self.gid {
            let r = nix::unistd::getresgid().map_err(|e| priv_err("getresgid", e))?;
            if (r.real, r.effective, r.saved) != (gid, gid, gid) {
                return fail(format!(
                    "gids are {}/{}/{} instead of {gid}",
                    r.real, r.effective, r.saved
                ));
            }
        }
        self.verify_threads()
    }

    /// Every thread's `/proc/self/task/*/status` shows the target ids and, for
    /// a user switch, no capability at all.
    fn verify_threads(&self) -> Result<(), DaemonError> {
        // No /proc (inside a chroot, say): the per-call checks above stand.
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Ok(());
        };
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue; // the thread ended meanwhile
            };
            let tid = task.file_name();
            let tid = tid.to_string_lossy();
            if let Some(uid) = self.uid() {
                let want = uid.to_string();
                if !ids_all(&status, "Uid", &want) {
                    return Err(DaemonError::DropNotPermanent(format!(
                        "thread {tid} still has Uid: {}",
                        status_field(&status, "Uid").unwrap_or("?")
                    )));
                }
                for key in ["CapPrm", "CapEff", "CapAmb", "CapBnd"] {
                    if cap_mask(&status, key).is_some_and(|m| m != 0) {
                        return Err(DaemonError::DropNotPermanent(format!(
                            "thread {tid} still has capabilities ({key}: {})",
                            status_field(&status, key).unwrap_or("?")
                        )));
                    }
                }
            }
            if let Some(gid) = self.gid
                && !ids_all(&status, "Gid", &gid.to_string())
            {
                return Err(DaemonError::DropNotPermanent(format!(
                    "thread {tid} still has Gid: {}",
                    status_field(&status, "Gid").unwrap_or("?")
                )));
            }
        }
        Ok(())
    }
}

/// True when every id on the `key:` line (real, effective, saved, fs) is `want`.
fn ids_all(status: &str, key: &str, want: &str) -> bool {
    status_field(status, key).is_some_and(|v| v.split_whitespace().all(|id| id == want))
}

fn priv_err(op: &str, e: nix::Error) -> DaemonError {
    DaemonError::Privilege {
        op: op.to_owned(),
        source: io_err(e),
    }
}

struct Resolved {
    name: String,
    uid: Uid,
    gid: Gid,
}

/// A user by name, or by number when no such name exists.
fn lookup_user(spec: &str) -> Result<Resolved, DaemonError> {
    let by_name = User::from_name(spec).ok().flatten();
    let user = match by_name {
        Some(u) => Some(u),
        None => spec
            .parse::<u32>()
            .ok()
            .and_then(|n| User::from_uid(Uid::from_raw(n)).ok().flatten()),
    };
    user.map(|u| Resolved {
        name: u.name,
        uid: u.uid,
        gid: u.gid,
    })
    .ok_or_else(|| DaemonError::UnknownUser(spec.to_owned()))
}

/// A group by name, or by number (a bare number need not exist in the database).
fn lookup_group(spec: &str) -> Result<Gid, DaemonError> {
    if let Some(g) = Group::from_name(spec).ok().flatten() {
        return Ok(g.gid);
    }
    spec.parse::<u32>()
        .map(Gid::from_raw)
        .map_err(|_| DaemonError::UnknownGroup(spec.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_do_resolves_to_none() {
        assert_eq!(DropPlan::resolve(None, None, None).unwrap(), None);
    }

    #[test]
    fn names_resolve_or_fail_naming_the_input() {
        if !Uid::effective().is_root() {
            let e = DropPlan::resolve(Some("nobody"), None, None).unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains("switching user needs root"),
                "{e}"
            );
            return;
        }
        let plan = DropPlan::resolve(Some("nobody"), None, None)
            .unwrap()
            .unwrap();
        let nobody = User::from_name("nobody").unwrap().unwrap();
        assert_eq!(plan.uid(), Some(nobody.uid));
        assert_eq!(plan.gid, Some(nobody.gid));
        assert!(plan.groups.contains(&nobody.gid));
        let by_number = DropPlan::resolve(Some(&nobody.uid.to_string()), Some("0"), None)
            .unwrap()
            .unwrap();
        assert_eq!(by_number.uid(), Some(nobody.uid));
        assert_eq!(by_number.gid, Some(Gid::from_raw(0)));

        let e = DropPlan::resolve(Some("no-such-user-sockbox"), None, None).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("no-such-user-sockbox"));
        let e = DropPlan::resolve(None, Some("no-such-group-sockbox"), None).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("no-such-group-sockbox"));
        let e = DropPlan::resolve(Some("root"), None, None).unwrap_err();
        assert!(matches!(e, DaemonError::UserIsRoot(_)));
        let e = DropPlan::resolve(None, None, Some(Path::new("/etc/passwd"))).unwrap_err();
        assert!(
            e.is_usage() && e.to_string().contains("not a directory"),
            "{e}"
        );
        let e = DropPlan::resolve(None, None, Some(Path::new("/nonexistent-sockbox/jail")))
            .unwrap_err();
        assert!(
            matches!(e, DaemonError::MissingDirectory { .. }) && e.is_usage(),
            "{e}"
        );
    }

    #[test]
    fn id_lines_must_match_in_every_column() {
        assert!(ids_all("Uid:\t7\t7\t7\t7\n", "Uid", "7"));
        assert!(!ids_all("Uid:\t7\t0\t7\t7\n", "Uid", "7"));
        assert!(!ids_all("Gid:\t7\t7\t7\t7\n", "Uid", "7"));
    }
}
