//! Pid files that cannot lie: created atomically, held with an exclusive
//! `flock` for the daemon's whole life, taken over when stale, removed on a
//! clean exit.
//!
//! A pid file is *live* while some process holds its lock, whatever it
//! says; it is *stale* when nobody does (its writer died). Readers never see
//! a half-written file: the content is written to a temporary file in the
//! same directory, locked, then linked (new file) or renamed (takeover) into
//! place. After locking an existing file we check that the path still names
//! the inode we locked, so two instances racing on a stale file cannot both
//! win.
//!
//! The directory is opened when the [`PidFileLocation`] is made, before any
//! `chdir /` or `chroot`, and every later operation is relative to it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, linkat, unlinkat};

use super::error::{DaemonError, PathRole, io_err};

/// How many times to retry when the file changes under us.
const ATTEMPTS: usize = 16;

/// Where a pid file will live: its directory, opened now.
#[derive(Debug)]
pub struct PidFileLocation {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
}

/// A pid file this process owns and holds locked.
#[derive(Debug)]
pub struct PidFile {
    lock: Option<Flock<File>>,
    loc: PidFileLocation,
}

/// What [`PidFile::remove`] managed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The file is gone.
    Removed,
    /// The directory no longer lets us unlink (privileges were dropped): the
    /// file was emptied instead and, unlocked, counts as stale.
    Emptied,
    /// The path no longer names our file (someone removed or replaced it):
    /// left alone.
    NotOurs,
}

impl PidFileLocation {
    /// Open the directory of `path` (which must name a file, not end in `/`).
    pub fn new(path: &Path) -> Result<Self, DaemonError> {
        let (dir, name) = super::open_dir_of(path, PathRole::PidFile)?;
        Ok(Self {
            dir,
            name,
            path: path.to_owned(),
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create (or take over a stale) pid file holding `pid`, locked for as
    /// long as the returned [`PidFile`] lives. The second value is a notice
    /// when a stale file was taken over.
    pub fn acquire(self, pid: u32) -> Result<(PidFile, Option<String>), DaemonError> {
        for _ in 0..ATTEMPTS {
            let existing = openat(
                self.dir.as_fd(),
                self.name.as_os_str(),
                OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
            match existing {
                Err(Errno::ENOENT) => {
                    if let Some(lock) = self.create_new(pid)? {
                        return Ok((
                            PidFile {
                                lock: Some(lock),
                                loc: self,
                            },
                            None,
                        ));
                    }
                }
                Err(Errno::ELOOP) => return Err(DaemonError::PidFileSymlink(self.path.clone())),
                Err(e) => return Err(self.err(io_err(e))),
                Ok(fd) => match Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
                    Err((mut file, Errno::EWOULDBLOCK)) => {
                        let text = read_all(&mut file).unwrap_or_default();
                        return Err(DaemonError::AlreadyRunning {
                            path: self.path.clone(),
                            pid: describe_pid(
                                &text,
                                "unknown: the other instance is still starting",
                            ),
                        });
                    }
                    Err((_, e)) => return Err(self.err(io_err(e))),
                    Ok(mut old) => {
                        if !self.names(&old)? {
                            continue; // replaced between our open and our lock
                        }
                        let text = read_all(&mut old).map_err(|e| self.err(e))?;
                        let lock = self.write_temp(pid)?;
                        let tmp = temp_name(&self.name, pid);
                        if let Err(e) = renameat(
                            self.dir.as_fd(),
                            tmp.as_os_str(),
                            self.dir.as_fd(),
                            self.name.as_os_str(),
                        ) {
                            let _ = unlinkat(
                                self.dir.as_fd(),
                                tmp.as_os_str(),
                                UnlinkatFlags::NoRemoveDir,
                            );
                            return Err(self.err(io_err(e)));
                        }
                        drop(old);
                        let notice = format!(
                            "took over stale pid file {} (it named pid {} and nobody held its lock)",
                            self.path.display(),
                            describe_pid(&text, "nothing")
                        );
                        return Ok((
                            PidFile {
                                lock: Some(lock),
                                loc: self,
                            },
                            Some(notice),
                        ));
                    }
                },
            }
        }
        Err(self.err(io::Error::other(
            "the file kept changing while we tried to lock it; is another instance starting?",
        )))
    }

    /// No file existed: write a locked temporary and link it into place.
    /// `None` when another process created the file first (retry).
    fn create_new(&self, pid: u32) -> Result<Option<Flock<File>>, DaemonError> {
        let lock = self.write_temp(pid)?;
        let tmp = temp_name(&self.name, pid);
        let linked = linkat(
            self.dir.as_fd(),
            tmp.as_os_str(),
            self.dir.as_fd(),
            self.name.as_os_str(),
            AtFlags::empty(),
        );
        let _ = unlinkat(
            self.dir.as_fd(),
            tmp.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        match linked {
            Ok(()) => Ok(Some(lock)),
            Err(Errno::EEXIST) => Ok(None),
            Err(e) => Err(self.err(io_err(e))),
        }
    }

    /// Write `pid\n` into a fresh, locked temporary file next to the pid file.
    fn write_temp(&self, pid: u32) -> Result<Flock<File>, DaemonError> {
        let tmp = temp_name(&self.name, pid);
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        let fd = match openat(self.dir.as_fd(), tmp.as_os_str(), flags, mode) {
            // A leftover from a crashed process that had our pid.
            Err(Errno::EEXIST) => {
                let _ = unlinkat(
                    self.dir.as_fd(),
                    tmp.as_os_str(),
                    UnlinkatFlags::NoRemoveDir,
                );
                openat(self.dir.as_fd(), tmp.as_os_str(), flags, mode)
            }
            other => other,
        }
        .map_err(|e| self.err(io_err(e)))?;
        let mut file = File::from(fd);
        let written = file
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| file.write_all(format!("{pid}\n").as_bytes()));
        if let Err(e) = written {
            let _ = unlinkat(
                self.dir.as_fd(),
                tmp.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(self.err(e));
        }
        Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| self.err(io_err(e)))
    }

    /// True when the path still names the inode `file` has open.
    fn names(&self, file: &File) -> Result<bool, DaemonError> {
        let ours = file.metadata().map_err(|e| self.err(e))?;
        match fstatat(
            self.dir.as_fd(),
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            #[allow(clippy::unnecessary_cast)] // the field types differ between targets
            Ok(st) => Ok(st.st_dev as u64 == ours.dev() && st.st_ino as u64 == ours.ino()),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.err(io_err(e))),
        }
    }

    fn err(&self, source: io::Error) -> DaemonError {
        DaemonError::PidFile {
            path: self.path.clone(),
            source,
        }
    }
}

impl PidFile {
    /// The pid file path as given.
    pub fn path(&self) -> &Path {
        &self.loc.path
    }

    /// Remove the file (while still holding its lock, so no new instance can
    /// have taken it yet), then release the lock.
    pub fn remove(mut self) -> Result<Removal, DaemonError> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<Removal, DaemonError> {
        let Some(lock) = self.lock.take() else {
            return Ok(Removal::NotOurs);
        };
        if !self.loc.names(&lock)? {
            return Ok(Removal::NotOurs);
        }
        match unlinkat(
            self.loc.dir.as_fd(),
            self.loc.name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => Ok(Removal::Removed),
            Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) => {
                lock.set_len(0).map_err(|e| self.loc.err(e))?;
                Ok(Removal::Emptied)
            }
            Err(Errno::ENOENT) => Ok(Removal::NotOurs),
            Err(e) => Err(self.loc.err(io_err(e))),
        }
    }
}

impl PidFile {
    /// Before switching to user `uid` (primary group `gid`, member of
    /// `groups`): make sure that user may delete the file when the server
    /// stops. In a sticky directory (`/tmp`) only a file's owner may delete
    /// it, so the file is given to `uid:gid` there.
    ///
    /// Returns false when the directory does not let that user delete files
    /// at all (a root-owned `/run`, say): the file is then emptied at exit
    /// instead ([`Removal::Emptied`]) and counts as stale. Only the
    /// directory's mode and owners are consulted, not ACLs.
    pub fn prepare_user_switch(
        &self,
        uid: Uid,
        gid: Option<Gid>,
        groups: &[Gid],
    ) -> Result<bool, DaemonError> {
        let Some(lock) = &self.lock else {
            return Ok(false);
        };
        let dir = fstat(self.loc.dir.as_fd()).map_err(|e| self.loc.err(io_err(e)))?;
        let groups: Vec<u32> = groups
            .iter()
            .chain(gid.iter())
            .map(|g| g.as_raw())
            .collect();
        #[allow(clippy::unnecessary_cast)] // the field types differ between targets
        let rule = unlink_rule(
            dir.st_mode as u32,
            dir.st_uid,
            dir.st_gid,
            uid.as_raw(),
            &groups,
        );
        match rule {
            Unlink::Allowed => Ok(true),
            Unlink::Denied => Ok(false),
            Unlink::IfOwner => {
                let owner = lock.metadata().map_err(|e| self.loc.err(e))?.uid();
                if owner != uid.as_raw() {
                    nix::unistd::fchown(&**lock, Some(uid), gid)
                        .map_err(|e| self.loc.err(io_err(e)))?;
                }
                Ok(true)
            }
        }
    }

    /// The directory the pid file is in, as given.
    pub fn dir(&self) -> &Path {
        match self.loc.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

/// Whether a user may delete a file from a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unlink {
    /// Any file.
    Allowed,
    /// Only the files the user owns (a sticky directory).
    IfOwner,
    /// None.
    Denied,
}

/// What a directory of mode `mode`, owned by `dir_uid:dir_gid`, lets user
/// `uid` (member of `groups`) delete: it needs write and search permission,
/// and in a sticky directory it must own the directory or the file.
fn unlink_rule(mode: u32, dir_uid: u32, dir_gid: u32, uid: u32, groups: &[u32]) -> Unlink {
    let bits = if dir_uid == uid {
        mode >> 6
    } else if groups.contains(&dir_gid) {
        mode >> 3
    } else {
        mode
    } & 0o7;
    if bits & 0o3 != 0o3 {
        Unlink::Denied
    } else if mode & 0o1000 != 0 && dir_uid != uid {
        Unlink::IfOwner
    } else {
        Unlink::Allowed
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = self.remove_inner();
    }
}

fn temp_name(name: &OsStr, pid: u32) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{pid}.tmp"));
    tmp
}

fn read_all(file: &mut File) -> io::Result<String> {
    file.rewind()?;
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text)?;
    Ok(text)
}

/// The pid a pid file names, or `fallback` when it names none.
fn describe_pid(text: &str, fallback: &str) -> String {
    let t = text.trim();
    if !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()) {
        t.to_owned()
    } else {
        fallback.to_owned()
    }
}

#[cfg(test)]
mod tests;
