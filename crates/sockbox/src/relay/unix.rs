//! The UNIX-domain side of a relay server (a socket file instead of an
//! address and port), stream or datagram.
//!
//! The socket file:
//! - Before binding, a file already at the path is removed only when it
//!   is a socket that nobody serves (connecting to it is refused: a server
//!   that died left it behind). A socket someone serves is "in use"; any
//!   other file is never touched.
//! - When the server ends, the file is removed if it is still the one this
//!   server created (same device and inode): a newer server's socket at
//!   the same path is left alone.
//!
//! A stream server serves one client (the listening socket closes when it
//! arrives) or, keeping open, clients concurrently up to `max_conns` (more
//! are accepted and closed at once), each to a program or to the shared
//! standard input/output; allow/deny lists do not apply (a UNIX socket has
//! no address to check: its file permissions decide who may connect). A
//! datagram server serves the first sender only: its socket is connected
//! to that sender's address, so answers reach it (a sender without an
//! address can only be received from).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixDatagram as StdDatagram, UnixStream as StdStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{UnixDatagram, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::conn::{Remote, Shared};
use super::ends::{RemoteIn, RemoteOut};
use super::event::RelayEvent;
use super::{Peer, RelayError, Report};
use crate::Shutdown;
use crate::net::ServerOptions;

/// After the grace period, how long stopped connections still get.
const HARD_WAIT: Duration = Duration::from_secs(2);

/// The socket file a server created; removed on drop if it is still ours.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl SocketFile {
    fn created(path: &Path) -> Self {
        let id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Self {
            path: path.to_path_buf(),
            id,
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let now = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now.is_some() && now == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn bind_error(path: &Path, why: impl Into<String>) -> RelayError {
    RelayError::UnixBind {
        path: path.to_path_buf(),
        why: why.into(),
        in_use: false,
    }
}

/// Remove a stale socket at `path`; refuse a live one or any other file.
fn clear_stale(path: &Path, datagram: bool) -> Result<(), RelayError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(bind_error(path, e.to_string())),
    };
    if !meta.file_type().is_socket() {
        return Err(bind_error(
            path,
            "the path exists and is not a socket (never removed): choose another path",
        ));
    }
    // A stream server that lists itself as listening here is live: asking
    // it by connecting would count as one of its clients (a one-shot
    // server would serve that probe and end). Only when it is not listed
    // (another network namespace, a relative name) is it asked.
    let probe = if datagram {
        StdDatagram::unbound().and_then(|s| s.connect(path))
    } else if listening_here(path) {
        Ok(())
    } else {
        StdStream::connect(path).map(drop)
    };
    match probe {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!("removing the stale socket {}", path.display());
            std::fs::remove_file(path).map_err(|e| bind_error(path, e.to_string()))
        }
        _ => Err(RelayError::UnixBind {
            path: path.to_path_buf(),
            why: "another server is using it (Address already in use): stop it or choose another path"
                .to_owned(),
            in_use: true,
        }),
    }
}

/// True when this network namespace's socket table (`/proc/net/unix`)
/// has a listening stream socket bound to `path` (as given, or made
/// absolute).
fn listening_here(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let absolute = std::path::absolute(path).ok();
    table.lines().skip(1).any(|line| {
        let Some((flags, bound)) = unix_table_entry(line) else {
            return false;
        };
        // __SO_ACCEPTCON: listening.
        flags & 0x0001_0000 != 0
            && (Path::new(bound) == path || absolute.as_deref() == Some(Path::new(bound)))
    })
}

/// The flags and the path of one line of `/proc/net/unix` (`Num RefCount
/// Protocol Flags Type St Inode Path`), for a socket bound to a path.
fn unix_table_entry(line: &str) -> Option<(u32, &str)> {
    let mut rest = line;
    let mut fields = [""; 7];
    for f in &mut fields {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let flags = u32::from_str_radix(fields[3], 16).ok()?;
    let bound = rest.trim();
    (!bound.is_empty()).then_some((flags, bound))
}

fn bind_failed(path: &Path, e: &io::Error) -> RelayError {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => " (the directory does not exist)",
        io::ErrorKind::PermissionDenied => " (the directory is not writable by this user)",
        _ => "",
    };
    bind_error(path, format!("{e}{hint}"))
}

/// A listening stream socket at `path`, and its file. Must run inside a
/// tokio runtime.
pub(crate) fn bind_stream(path: &Path) -> Result<(UnixListener, SocketFile), RelayError> {
    clear_stale(path, false)?;
    let l = UnixListener::bind(path).map_err(|e| bind_failed(path, &e))?;
    Ok((l, SocketFile::created(path)))
}

/// A datagram socket bound at `path`, and its file. Must run inside a
/// tokio runtime.
pub(crate) fn bind_datagram(path: &Path) -> Result<(UnixDatagram, SocketFile), RelayError> {
    clear_stale(path, true)?;
    let s = UnixDatagram::bind(path).map_err(|e| bind_failed(path, &e))?;
    Ok((s, SocketFile::created(path)))
}

/// Serve a stream socket until the single client is done or `shutdown`
/// fires, then drain; returns (refused, cut at grace).
pub(crate) async fn serve_stream(
    shared: &Arc<Shared>,
    listener: UnixListener,
    opts: &ServerOptions,
    shutdown: &Shutdown,
) -> (u64, usize) {
    let cap = Arc::new(Semaphore::new(
        opts.max_conns
            .min(Semaphore::MAX_PERMITS)
            .max(usize::from(shared.once())),
    ));
    let (tracker, hard) = (TaskTracker::new(), Shutdown::new());
    let mut refused = 0;
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            r = listener.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept: {e}; backing off 100ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = Peer::from_unix(&addr.into());
        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
            refused += 1;
            opts.stats.refused();
            shared.count_refused();
            let max = opts.max_conns;
            tracing::warn!(%peer, "refused: {max} connections already open");
            continue;
        };
        let (shared2, stats, stop) = (Arc::clone(shared), opts.stats.clone(), hard.clone());
        tracker.spawn(async move {
            let _active = stats.connection();
            let _permit = permit;
            shared2.count_served();
            let result = relay_stream(&shared2, stream, peer.clone(), &stop).await;
            shared2.finished(peer, result);
        });
        if shared.once() {
            break;
        }
    }
    drop(listener);
    tracker.close();
    let cut = drain(&tracker, &hard, opts.grace, shutdown).await;
    (refused, cut)
}

/// Wait for the connections: until they end if no shutdown came (a single
/// client), else for the grace period, then stop them.
async fn drain(
    tracker: &TaskTracker,
    hard: &Shutdown,
    grace: Duration,
    shutdown: &Shutdown,
) -> usize {
    tokio::select! {
        () = tracker.wait() => return 0,
        () = shutdown.wait() => {}
    }
    if tokio::time::timeout(grace, tracker.wait()).await.is_ok() {
        return 0;
    }
    let open = tracker.len();
    hard.trigger();
    let _ = tokio::time::timeout(HARD_WAIT, tracker.wait()).await;
    open
}

async fn relay_stream(
    shared: &Shared,
    stream: UnixStream,
    peer: Peer,
    stop: &Shutdown,
) -> Result<Report, RelayError> {
    if shared.once() && !shared.runs_programs() {
        let std = stream.into_std().map_err(RelayError::Setup)?;
        return shared
            .pump(OwnedFd::from(std), (peer, false), Vec::new(), stop)
            .await;
    }
    let (r, w) = tokio::io::split(stream);
    let remote = Remote {
        peer,
        read: RemoteIn::Stream(Box::new(r)),
        write: RemoteOut::Stream(Box::new(w)),
        proto: "unix",
        first: None,
        local: None,
    };
    shared.relay(remote, stop).await
}

/// Serve the first sender of a datagram socket, until the relay ends or
/// `shutdown` fires.
pub(crate) async fn serve_datagram(
    shared: &Shared,
    socket: UnixDatagram,
    opts: &ServerOptions,
    shutdown: &Shutdown,
) -> Result<(), RelayError> {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::select! {
        r = socket.recv_from(&mut buf) => r.map_err(RelayError::Setup)?,
        () = shutdown.wait() => return Ok(()),
    };
    buf.truncate(n);
    let from: std::os::unix::net::SocketAddr = from.into();
    let peer = Peer::from_unix(&from);
    let std = socket.into_std().map_err(RelayError::Setup)?;
    let answerable = !from.is_unnamed();
    if answerable {
        std.connect_addr(&from).map_err(RelayError::Setup)?;
    } else {
        tracing::warn!(
            "the first datagram came from a socket without an address: it can be received \
             from, nothing can be sent back"
        );
    }
    shared.count_served();
    let _active = opts.stats.connection();
    let new = RelayEvent::NewPeer { peer: peer.clone() };
    shared.extras.events.on_event(&new);
    let result = if shared.runs_programs() {
        std.set_nonblocking(true).map_err(RelayError::Setup)?;
        let s = Arc::new(UnixDatagram::from_std(std).map_err(RelayError::Setup)?);
        let remote = Remote {
            peer: peer.clone(),
            read: RemoteIn::UnixDgram(Arc::clone(&s)),
            write: RemoteOut::UnixDgram(s),
            proto: "unixgram",
            first: Some(Bytes::from(buf)),
            local: None,
        };
        shared.relay(remote, shutdown).await
    } else {
        let fd = OwnedFd::from(std);
        shared
            .pump_with(fd, (peer.clone(), true), buf, shutdown, !answerable)
            .await
    };
    shared.finished(peer, result);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_the_unix_socket_table_are_read() {
        let line = "0000000000000000: 00000002 00000000 00010000 0001 01 123456 /run/a b.sock";
        assert_eq!(unix_table_entry(line), Some((0x10000, "/run/a b.sock")));
        let unbound = "0000000000000000: 00000003 00000000 00000000 0001 03    42";
        assert_eq!(unix_table_entry(unbound), None);
    }

    /// A live one-shot server is not disturbed by a second listener on its
    /// path: the second is refused without connecting to it.
    #[test]
    fn a_live_listener_is_seen_without_connecting_to_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("live.sock");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        live.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        assert!(listening_here(&path));
        assert!(matches!(
            clear_stale(&path, false),
            Err(RelayError::UnixBind { in_use: true, .. })
        ));
        assert!(
            live.accept().is_err(),
            "the check connected to the live server"
        );
        drop(live);
        assert!(!listening_here(&path));
        assert!(clear_stale(&path, false).is_ok());
        assert!(!path.exists());
    }
}
