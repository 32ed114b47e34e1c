//! A log file that can be reopened for rotation (`mv log log.1; kill -HUP`),
//! even after `chdir /`, `chroot` and a switch to an unprivileged user.
//!
//! The directory is opened once, up front; every (re)open is an `openat`
//! relative to it, in append mode, refusing symbolic links (a root daemon
//! must not be tricked into appending to `/etc/shadow`). A file created
//! while still root is handed to the user the server switches to, so it
//! can keep writing.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::error::{DaemonError, PathRole, io_err};

/// Where the log goes: a directory handle and a file name in it.
#[derive(Debug)]
pub struct LogFile {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    owner: Option<(Uid, Gid)>,
}

impl LogFile {
    /// Open the directory of `path` now.
    pub fn new(path: &Path) -> Result<Self, DaemonError> {
        let (dir, name) = super::open_dir_of(path, PathRole::LogFile)?;
        Ok(Self {
            dir,
            name,
            path: path.to_owned(),
            owner: None,
        })
    }

    /// Files this creates from now on are given to `uid:gid` (the user
    /// the server will switch to), as long as we are still root.
    pub fn set_owner(&mut self, uid: Uid, gid: Gid) {
        self.owner = Some((uid, gid));
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open (or create, mode 0640) the file for appending.
    pub fn open(&self) -> Result<File, DaemonError> {
        let base = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o640);
        let created = openat(
            self.dir.as_fd(),
            self.name.as_os_str(),
            base | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
        );
        let fd = match created {
            Ok(fd) => {
                if let Some((uid, gid)) = self.owner
                    && Uid::effective().is_root()
                {
                    nix::unistd::fchown(&fd, Some(uid), Some(gid))
                        .map_err(|e| self.err(io_err(e)))?;
                }
                fd
            }
            Err(Errno::EEXIST) => openat(self.dir.as_fd(), self.name.as_os_str(), base, mode)
                .map_err(|e| self.err(io_err(e)))?,
            Err(e) => return Err(self.err(io_err(e))),
        };
        Ok(File::from(fd))
    }

    fn err(&self, source: io::Error) -> DaemonError {
        DaemonError::LogFile {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn appends_and_reopens_after_rename() {
        let d = tempfile::tempdir().unwrap();
        let log = LogFile::new(&d.path().join("s.log")).unwrap();
        let mut f = log.open().unwrap();
        writeln!(f, "one").unwrap();
        std::fs::rename(d.path().join("s.log"), d.path().join("s.log.1")).unwrap();
        writeln!(f, "two").unwrap();
        let mut g = log.open().unwrap();
        writeln!(g, "three").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("s.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("s.log")).unwrap(),
            "three\n"
        );
        let mut again = log.open().unwrap();
        writeln!(again, "four").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("s.log")).unwrap(),
            "three\nfour\n"
        );
    }

    #[test]
    fn a_missing_directory_is_a_usage_error() {
        let e = LogFile::new(Path::new("/nonexistent-sockbox/s.log")).unwrap_err();
        assert!(
            matches!(
                e,
                DaemonError::MissingDirectory {
                    role: PathRole::LogFile,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_usage() && e.to_string().contains("/nonexistent-sockbox/s.log"));
    }

    #[test]
    fn symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("s.log")).unwrap();
        let e = LogFile::new(&d.path().join("s.log"))
            .unwrap()
            .open()
            .unwrap_err();
        assert!(e.to_string().contains("s.log"), "{e}");
    }
}
