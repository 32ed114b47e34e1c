//! How one direction of the blocking pump moves its bytes, chosen from
//! what its local end is (a pipe, a file, a terminal…), and how much it
//! moves per call.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::RelayError;
use crate::sys::splice::{self, FdKind, fd_kind};

/// How a direction moves its bytes.
pub(crate) enum Method {
    /// `read`/`write` through a buffer.
    Copy,
    /// `splice` between the local pipe and the socket.
    Direct,
    /// `splice` through an internal pipe (`r`, `w`).
    Via { r: OwnedFd, w: OwnedFd },
}

/// How one direction moves bytes, given its local end (`input`: standard
/// input, read by the worker; otherwise standard output, written by it).
/// A local pipe is grown to `size` whatever the method.
///
/// A pipe on the input side goes through an internal pipe rather than
/// straight into the socket: splicing into a socket holds the source pipe's
/// lock for the whole TCP send (on loopback that includes the receiver's
/// processing), and the producer writing into that pipe would spin on the
/// lock meanwhile. Moving pages pipe to pipe holds it only briefly.
pub(crate) fn choose(
    local: BorrowedFd<'_>,
    zero_copy: bool,
    input: bool,
    size: usize,
) -> Result<Method, RelayError> {
    let kind = fd_kind(local);
    if kind == FdKind::Pipe {
        splice::grow_pipe(local, size);
    }
    if !zero_copy {
        return Ok(Method::Copy);
    }
    let via = || -> Result<Method, RelayError> {
        let (r, w) = splice::pipe().map_err(RelayError::Setup)?;
        splice::grow_pipe(r.as_fd(), size);
        Ok(Method::Via { r, w })
    };
    match kind {
        FdKind::Pipe if input => via(),
        FdKind::Pipe => Ok(Method::Direct),
        // splice(2) refuses files opened for appending (`>> file`).
        FdKind::File if appending(local) => Ok(Method::Copy),
        FdKind::File | FdKind::Socket | FdKind::CharDevice => via(),
        FdKind::Tty | FdKind::Other => Ok(Method::Copy),
    }
}

/// How much a direction can buffer between two transfers: its chunk,
/// or less when the local end is a smaller pipe (for the [`Pacer`]).
pub(crate) fn room(local: BorrowedFd<'_>, chunk: usize) -> usize {
    pipe_size(local).map_or(chunk, |p| p.min(chunk))
}

fn pipe_size(fd: BorrowedFd<'_>) -> Option<usize> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

pub(crate) fn pipe_chunk(method: &Method, local: BorrowedFd<'_>, size: usize) -> usize {
    let fd = match method {
        Method::Copy => return size.clamp(16 * 1024, 1 << 20),
        Method::Direct => local,
        Method::Via { r, .. } => r.as_fd(),
    };
    pipe_size(fd).unwrap_or(64 * 1024)
}

fn appending(fd: BorrowedFd<'_>) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|f| {
        nix::fcntl::OFlag::from_bits_truncate(f).contains(nix::fcntl::OFlag::O_APPEND)
    })
}
