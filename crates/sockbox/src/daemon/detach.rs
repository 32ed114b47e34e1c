//! Detaching from the terminal (double fork, `setsid`, `umask 027`,
//! `chdir /`, stdio to `/dev/null` or the log file) and the readiness pipe
//! through which the daemon tells the waiting original process how its
//! start-up went.
//!
//! ```text
//! original ──fork──▶ intermediate ──setsid, fork──▶ daemon
//!    │                   └─ _exit(0), reaped by the original at once
//!    └─ reads the pipe: notices, then Ready or Failed(code, message) or EOF
//! ```
//!
//! The original process exits 0 only after the daemon has sent `Ready`
//! (sockets bound, privileges dropped); a daemon that fails before that
//! sends its error, which the original prints and exits with.
//!
//! The daemon itself runs in `/` (it must not keep a mount busy), but it
//! remembers the directory it was started from: programs the servers run
//! per connection or datagram (`listen -e ./handler`, `udp listen
//! --reply-exec ./reply.sh`) start there, as they would in the foreground
//! (see [`prepare_child`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, setsid};

use super::error::{DaemonError, io_err};

/// Message tags on the readiness pipe.
mod tag {
    pub const NOTICE: u8 = b'N';
    pub const READY: u8 = b'R';
    pub const FAILED: u8 = b'E';
}

/// Longest message accepted from the pipe (longer ones are cut).
const MAX_MESSAGE: usize = 64 * 1024;

/// Which process `detach` returned in.
#[derive(Debug)]
pub enum Detached {
    /// The original process: wait for the daemon's report, then exit.
    Parent(ReadyWaiter),
    /// The daemon: carry on starting the server, then report readiness.
    Daemon(Readiness),
}

/// How the daemon's start-up ended, as seen by the original process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon is bound and serving as this pid.
    Ready {
        /// The daemon's process id.
        pid: u32,
    },
    /// The daemon failed before it was ready.
    Failed {
        /// The exit code the original process should use.
        code: u8,
        /// What went wrong.
        message: String,
    },
    /// The daemon died without a word (killed, or crashed).
    Vanished,
}

/// Detach into a daemon. Returns twice, in two processes: in the original
/// process as [`Detached::Parent`], in the daemon as [`Detached::Daemon`].
///
/// `stderr` becomes the daemon's standard error (the log file); without it
/// standard error goes to `/dev/null` like standard input and output.
///
/// Fails with [`DaemonError::Threaded`] when the process runs more than one
/// thread: call this before building any async runtime.
pub fn detach(stderr: Option<BorrowedFd<'_>>) -> Result<Detached, DaemonError> {
    let threads = crate::sys::process::thread_count().map_err(|source| DaemonError::Detach {
        op: "count threads",
        source,
    })?;
    if threads > 1 {
        return Err(DaemonError::Threaded(threads));
    }
    // Anything buffered would otherwise be written twice, once per process.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| detach_err("create the readiness pipe", e))?;

    #[expect(unsafe_code)]
    // SAFETY: the process has exactly one thread (checked above), so the child
    // is an ordinary copy of it and may run any code, not only async-signal-safe
    // functions.
    let forked = unsafe { fork() };
    match forked.map_err(|e| detach_err("fork", e))? {
        ForkResult::Parent { child } => {
            drop(tx);
            // The intermediate child exits right after its own fork: reap it so
            // it never lingers as a zombie.
            while let Err(nix::Error::EINTR) = waitpid(child, None) {}
            Ok(Detached::Parent(ReadyWaiter { rx: File::from(rx) }))
        }
        ForkResult::Child => {
            drop(rx);
            let mut readiness = Readiness::pipe(File::from(tx));
            match intermediate(stderr) {
                Ok(()) => Ok(Detached::Daemon(readiness)),
                Err(e) => {
                    readiness.fail(3, &e.to_string());
                    exit_now(3)
                }
            }
        }
    }
}

/// In the intermediate child: new session, second fork (so the daemon is not
/// a session leader and can never reacquire a terminal), then set up the
/// daemon's environment. Returns only in the daemon.
fn intermediate(stderr: Option<BorrowedFd<'_>>) -> Result<(), DaemonError> {
    setsid().map_err(|e| detach_err("setsid", e))?;
    #[expect(unsafe_code)]
    // SAFETY: still single-threaded: the intermediate child is a copy of the
    // single-threaded original.
    let forked = unsafe { fork() };
    match forked.map_err(|e| detach_err("fork a second time", e))? {
        ForkResult::Parent { .. } => exit_now(0),
        ForkResult::Child => {}
    }
    umask(Mode::from_bits_truncate(0o027));
    set_start_dir(std::env::current_dir().ok());
    nix::unistd::chdir("/").map_err(|e| detach_err("chdir /", e))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| DaemonError::Detach {
            op: "open /dev/null",
            source,
        })?;
    nix::unistd::dup2_stdin(&null).map_err(|e| detach_err("redirect stdin", e))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| detach_err("redirect stdout", e))?;
    let err_target: BorrowedFd<'_> = stderr.unwrap_or(null.as_fd());
    nix::unistd::dup2_stderr(err_target).map_err(|e| detach_err("redirect stderr", e))?;
    drop(null);
    close_inherited_fds();
    Ok(())
}

/// The directory the process was in before [`detach`] moved it to `/`;
/// `None` in the foreground and after a chroot.
static START_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

fn set_start_dir(dir: Option<PathBuf>) {
    *START_DIR.lock().unwrap_or_else(PoisonError::into_inner) = dir;
}

/// The directory sockbox was started from, when [`detach`] has since moved
/// the process to `/`; `None` in the foreground (the process is still
/// there) and after `--chroot` (the path means nothing inside the jail).
pub fn start_dir() -> Option<PathBuf> {
    START_DIR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Forget the starting directory (called after a chroot).
pub(crate) fn forget_start_dir() {
    set_start_dir(None);
}

/// Make a program a server runs start in the directory sockbox was started
/// from, so relative paths in its command line and the files it opens mean
/// what they meant in the foreground. Does nothing in the foreground, or
/// when the directory is gone or no longer searchable (after `--user`):
/// the program then starts in `/`.
pub fn prepare_child(cmd: &mut tokio::process::Command) {
    if let Some(dir) = start_dir().filter(|d| searchable(d)) {
        cmd.current_dir(dir);
    }
}

fn searchable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// Close every descriptor above 2 that this process inherited from whoever
/// started it (a shell's job pipe, a CI runner's log pipe), so the daemon
/// does not hold them open for its whole life.
///
/// Inherited means "without close-on-exec": a descriptor can only survive
/// `execve` without that flag, and everything this process opened itself
/// has it (Rust's standard library and our `nix` calls open with
/// `O_CLOEXEC`), so the flag tells the two apart exactly.
fn close_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        #[expect(unsafe_code)]
        // SAFETY: F_GETFD only reads the flags of a descriptor number. Only
        // descriptors without FD_CLOEXEC are closed: this process did not
        // open them (see above), so no Rust object owns them and nothing
        // will use or close them later.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::close(fd);
            }
        }
    }
}

fn detach_err(op: &'static str, e: nix::Error) -> DaemonError {
    DaemonError::Detach {
        op,
        source: io_err(e),
    }
}

/// Leave a forked process at once, without running anything the parent
/// registered (buffers were flushed before the fork).
fn exit_now(code: i32) -> ! {
    #[expect(unsafe_code)]
    // SAFETY: `_exit` ends the process immediately; no Rust state is observed
    // afterwards.
    unsafe {
        libc::_exit(code)
    }
}

/// The original process's end of the readiness pipe.
#[derive(Debug)]
pub struct ReadyWaiter {
    rx: File,
}

impl ReadyWaiter {
    /// Block until the daemon reports. Every notice it sends on the way
    /// (a stale pid file taken over, say) is handed to `on_notice`.
    pub fn wait(mut self, mut on_notice: impl FnMut(&str)) -> Outcome {
        loop {
            let Some((tag, body)) = read_message(&mut self.rx) else {
                return Outcome::Vanished;
            };
            match tag {
                tag::NOTICE => on_notice(&String::from_utf8_lossy(&body)),
                tag::READY => {
                    let pid = String::from_utf8_lossy(&body).trim().parse().unwrap_or(0);
                    return Outcome::Ready { pid };
                }
                tag::FAILED => {
                    let (code, msg) = body.split_first().map_or((3, &[][..]), |(c, m)| (*c, m));
                    return Outcome::Failed {
                        code: if code == 0 { 3 } else { code },
                        message: String::from_utf8_lossy(msg).into_owned(),
                    };
                }
                _ => return Outcome::Vanished,
            }
        }
    }
}

/// Read one `tag, u32 length, body` message; `None` on EOF or garbage.
fn read_message(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_MESSAGE {
        return None;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((head[0], body))
}

fn write_message(w: &mut impl Write, tag: u8, body: &[u8]) -> io::Result<()> {
    let body = &body[..body.len().min(MAX_MESSAGE)];
    let mut msg = Vec::with_capacity(5 + body.len());
    msg.push(tag);
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
    msg.extend_from_slice(body);
    w.write_all(&msg)
}

/// The daemon's end of the readiness pipe (or nothing, for a server running
/// in the foreground). Reports go out at most once: after `ready` or `fail`
/// the pipe is closed.
#[derive(Debug)]
pub struct Readiness {
    tx: Option<File>,
    reported: bool,
}

impl Readiness {
    /// For a server that did not detach: reports are only recorded.
    pub fn foreground() -> Self {
        Self {
            tx: None,
            reported: false,
        }
    }

    fn pipe(tx: File) -> Self {
        Self {
            tx: Some(tx),
            reported: false,
        }
    }

    /// True when a process is waiting on the other end.
    pub fn has_waiter(&self) -> bool {
        self.tx.is_some()
    }

    /// True once `ready` or `fail` was called.
    pub fn reported(&self) -> bool {
        self.reported
    }

    /// Pass a notice to the waiting process, which prints it.
    pub fn notice(&mut self, text: &str) {
        if let Some(tx) = &mut self.tx {
            // The waiter may be gone (killed); nothing to do about it then.
            let _ = write_message(tx, tag::NOTICE, text.as_bytes());
        }
    }

    /// Report that the server is bound and serving; closes the pipe.
    pub fn ready(&mut self) {
        if let Some(mut tx) = self.tx.take() {
            let _ = write_message(
                &mut tx,
                tag::READY,
                std::process::id().to_string().as_bytes(),
            );
        }
        self.reported = true;
    }

    /// Report failure with the exit code the waiter should use; closes the
    /// pipe. Ignored after `ready`.
    pub fn fail(&mut self, code: u8, message: &str) {
        if let Some(mut tx) = self.tx.take() {
            let mut body = vec![code];
            body.extend_from_slice(message.as_bytes());
            let _ = write_message(&mut tx, tag::FAILED, &body);
        }
        self.reported = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter_for(bytes: &[u8]) -> Outcome {
        let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut tx = File::from(tx);
        tx.write_all(bytes).unwrap();
        drop(tx);
        let mut notices = Vec::new();
        let out = ReadyWaiter { rx: File::from(rx) }.wait(|n| notices.push(n.to_owned()));
        if let Outcome::Ready { .. } = out {
            assert_eq!(notices, ["stale pid file taken over"]);
        }
        out
    }

    #[test]
    fn waiter_sees_notice_then_ready() {
        let mut buf = Vec::new();
        write_message(&mut buf, tag::NOTICE, b"stale pid file taken over").unwrap();
        write_message(&mut buf, tag::READY, b"4242").unwrap();
        assert_eq!(waiter_for(&buf), Outcome::Ready { pid: 4242 });
    }

    #[test]
    fn waiter_sees_failure_code_and_message() {
        let mut buf = Vec::new();
        write_message(&mut buf, tag::FAILED, b"\x02already running as pid 7").unwrap();
        assert_eq!(
            waiter_for(&buf),
            Outcome::Failed {
                code: 2,
                message: "already running as pid 7".into()
            }
        );
    }

    #[test]
    fn silent_eof_and_truncated_messages_mean_vanished() {
        assert_eq!(waiter_for(&[]), Outcome::Vanished);
        assert_eq!(waiter_for(&[b'R', 0, 0, 0, 9, b'1']), Outcome::Vanished);
        assert_eq!(
            waiter_for(&[b'R', 0xff, 0xff, 0xff, 0xff]),
            Outcome::Vanished
        );
    }

    #[test]
    fn detach_refuses_a_threaded_process() {
        // The test harness runs tests on threads, so there are several.
        let _keep =
            std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(matches!(detach(None), Err(DaemonError::Threaded(n)) if n > 1));
    }

    #[test]
    fn foreground_readiness_records_reports() {
        let mut r = Readiness::foreground();
        assert!(!r.has_waiter() && !r.reported());
        r.notice("ignored");
        r.ready();
        assert!(r.reported());
    }
}
