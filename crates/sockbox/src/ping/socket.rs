//! The socket layer behind a trait, so the driver runs against real ICMP
//! sockets or against an in-memory network in tests.
//!
//! Opening is split from use: [`open`] runs before the async runtime starts
//! (so capabilities can be dropped while there is a single thread), and
//! [`IcmpTransport::new`] registers the open sockets with tokio.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::SockaddrStorage;
use sockbox_wire::icmp::Family;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::engine::{Incoming, QueuedIcmpError};
use crate::sys::ping::{IcmpKind, IcmpSocket, SocketOptions, open_icmp};
use crate::sys::ping_io::{RecvBuffers, dest, recv_batch, recv_errqueue, send_all_parallel};
use sockbox_wire::icmp::Message;

/// The error kinds worth reporting, from an error-queue type number.
fn icmp_message(family: Family, ty: u8) -> Option<Message> {
    match Message::from_type(family, ty) {
        m @ (Message::DstUnreachable
        | Message::TimeExceeded
        | Message::PacketTooBig
        | Message::ParamProblem) => Some(m),
        _ => None,
    }
}

/// Messages per `sendmmsg` / `recvmmsg` call.
pub const BATCH: usize = 64;

/// Which sockets to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketChoice {
    /// Datagram first, then raw.
    #[default]
    Auto,
    /// Only the unprivileged datagram socket.
    Dgram,
    /// Only the raw socket.
    Raw,
}

/// What sockets a driver can use. Implemented by [`IcmpTransport`] and by
/// the tests' in-memory network.
pub trait Transport {
    /// The kind of socket open for `family`, if any.
    fn kind(&self, family: Family) -> Option<IcmpKind>;

    /// Send every `packets[i]` to `dests[i]`. Packets the system refused
    /// are listed in `failed` by index; an error means there is no socket
    /// for `family` at all.
    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        failed: &mut Vec<(usize, io::ErrorKind)>,
    ) -> io::Result<()>;

    /// Most probes worth sending in one turn before reading replies again
    /// (bounded by what the receive buffer can hold meanwhile).
    fn send_window(&self) -> usize {
        8 * BATCH
    }

    /// Read one batch without blocking, handing each message to `f`;
    /// `Ok(0)` or `WouldBlock` when nothing is waiting. Returns how many
    /// were read; fewer than [`BATCH`] means the queue is empty.
    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize>;

    /// Resolves when a socket may have something to read. After it
    /// resolves, read until `recv` says the queue is empty.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
}

/// The open sockets, before they are handed to the runtime.
#[derive(Debug)]
pub struct OpenSockets {
    /// IPv4, or why it could not be opened.
    pub v4: Result<IcmpSocket, OpenError>,
    /// IPv6, or why it could not be opened.
    pub v6: Result<IcmpSocket, OpenError>,
}

/// Why no ICMP socket of one family could be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Both attempts failed (or the one asked for).
    #[error(
        "cannot open an ICMP socket for {family}: {tries}. Fix one of: run as root; \
         `sudo setcap cap_net_raw+ep \"$(command -v sockbox)\"`; or allow unprivileged ICMP \
         datagram sockets with `sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`"
    )]
    Denied {
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// Each kind tried and its error.
        tries: String,
    },
    /// Not asked for.
    #[error("not opened")]
    NotWanted,
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn open_family(
    family: Family,
    choice: SocketChoice,
    opts: &SocketOptions,
) -> Result<IcmpSocket, OpenError> {
    let kinds: &[IcmpKind] = match choice {
        SocketChoice::Auto => &[IcmpKind::Dgram, IcmpKind::Raw],
        SocketChoice::Dgram => &[IcmpKind::Dgram],
        SocketChoice::Raw => &[IcmpKind::Raw],
    };
    let mut tries = Vec::new();
    for &kind in kinds {
        match open_icmp(family, kind, opts) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let hint = match (kind, e.raw_os_error()) {
                    (IcmpKind::Dgram, Some(libc::EACCES)) => {
                        " (the group is not in net.ipv4.ping_group_range)"
                    }
                    (IcmpKind::Raw, Some(libc::EPERM)) => " (needs CAP_NET_RAW)",
                    _ => "",
                };
                tries.push(format!("{} socket: {e}{hint}", kind.as_str()));
            }
        }
    }
    Err(OpenError::Denied {
        family: family_name(family),
        tries: tries.join("; "),
    })
}

/// Open one ICMP socket per wanted family: the datagram socket first, then
/// raw (as `choice` allows). Synchronous: call it before starting threads.
pub fn open(
    choice: SocketChoice,
    want_v4: bool,
    want_v6: bool,
    opts: &SocketOptions,
) -> OpenSockets {
    OpenSockets {
        v4: if want_v4 {
            open_family(Family::V4, choice, opts)
        } else {
            Err(OpenError::NotWanted)
        },
        v6: if want_v6 {
            open_family(Family::V6, choice, opts)
        } else {
            Err(OpenError::NotWanted)
        },
    }
}

#[derive(Debug)]
struct Side {
    fd: AsyncFd<socket2::Socket>,
    kind: IcmpKind,
    family: Family,
    recv: RecvBuffers,
    errbuf: Vec<u8>,
    dests: Vec<Option<SockaddrStorage>>,
    /// Replies the receive buffer holds (a send turn must not overrun it).
    window: usize,
}

/// Real ICMP sockets registered with tokio.
#[derive(Debug)]
pub struct IcmpTransport {
    v4: Option<Side>,
    v6: Option<Side>,
    threads: usize,
}

impl IcmpTransport {
    /// Register the open sockets (must run inside a tokio runtime).
    /// `max_packet` is the largest message expected (sizes the buffers).
    pub fn new(
        v4: Option<IcmpSocket>,
        v6: Option<IcmpSocket>,
        max_packet: usize,
    ) -> io::Result<Self> {
        let side = |s: Option<IcmpSocket>| -> io::Result<Option<Side>> {
            let Some(s) = s else { return Ok(None) };
            // SAFETY: socket2::Socket owns its descriptor, keeps it open
            // until dropped and always returns the same one from as_raw_fd.
            // Each reply costs about 1 KiB of receive buffer on loopback.
            let rcvbuf = s.socket.recv_buffer_size().unwrap_or(200 << 10);
            let window = (rcvbuf / 2048).clamp(BATCH, 64 * BATCH);
            #[allow(unsafe_code)]
            // Read interest only: with WRITABLE too every send completion
            // is another edge for the reactor to wake up for.
            let fd = unsafe {
                AsyncFd::register_with_interest(s.socket, Interest::READABLE | Interest::ERROR)
            }
            .map_err(io::Error::from)?;
            Ok(Some(Side {
                kind: s.kind,
                family: s.family,
                fd,
                // Room for an IP header and a quoted packet in errors.
                recv: RecvBuffers::new(BATCH, max_packet.max(1024) + 128),
                errbuf: vec![0u8; max_packet.max(1024) + 128],
                dests: Vec::with_capacity(BATCH),
                window,
            }))
        };
        Ok(Self {
            v4: side(v4)?,
            v6: side(v6)?,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        })
    }

    fn side(&mut self, family: Family) -> Option<&mut Side> {
        match family {
            Family::V4 => self.v4.as_mut(),
            Family::V6 => self.v6.as_mut(),
        }
    }
}

/// Convert a kernel CLOCK_REALTIME stamp to the monotonic clock, given one
/// reading of both clocks taken just after the receive.
fn stamp_to_instant(stamp: Option<Duration>, mono: Instant, real: Duration) -> Instant {
    match stamp {
        Some(s) => match real.checked_sub(s) {
            Some(ago) if ago < Duration::from_secs(10) => mono.checked_sub(ago).unwrap_or(mono),
            _ => mono,
        },
        None => mono,
    }
}

impl Transport for IcmpTransport {
    fn kind(&self, family: Family) -> Option<IcmpKind> {
        match family {
            Family::V4 => self.v4.as_ref().map(|s| s.kind),
            Family::V6 => self.v6.as_ref().map(|s| s.kind),
        }
    }

    fn send_window(&self) -> usize {
        [self.v4.as_ref(), self.v6.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.window)
            .min()
            .unwrap_or(BATCH)
    }

    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        failed: &mut Vec<(usize, io::ErrorKind)>,
    ) -> io::Result<()> {
        let threads = self.threads;
        let Some(side) = self.side(family) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no ICMP socket for this address family",
            ));
        };
        side.dests.clear();
        side.dests.extend(dests.iter().map(|&a| Some(dest(a))));
        let fd = std::os::fd::AsRawFd::as_raw_fd(side.fd.get_ref());
        send_all_parallel(fd, packets, &side.dests, threads, failed);
        Ok(())
    }

    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize> {
        let Some(side) = self.side(family) else {
            return Ok(0);
        };
        let raw_v4 = side.kind == IcmpKind::Raw && side.family == Family::V4;
        let fam = side.family;
        let fd = std::os::fd::AsRawFd::as_raw_fd(side.fd.get_ref());
        let mono = Instant::now();
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let got = recv_batch(fd, &mut side.recv, |r| {
            let Some(from) = r.from else { return };
            f(&Incoming {
                family: fam,
                from,
                bytes: r.data,
                ip_header: raw_v4,
                ttl: r.ttl,
                at: stamp_to_instant(r.stamp, mono, real),
                verify_checksum: raw_v4,
                error: None,
            });
        });
        if side.kind == IcmpKind::Dgram {
            // ICMP errors about our probes (IP_RECVERR); cheap when empty.
            let buf = &mut side.errbuf;
            recv_errqueue(fd, buf, |e| {
                let (Some(dst), Some(msg)) = (e.dst, icmp_message(fam, e.icmp_type)) else {
                    return;
                };
                f(&Incoming {
                    family: fam,
                    from: e.offender.unwrap_or(dst),
                    bytes: e.data,
                    ip_header: false,
                    ttl: None,
                    at: mono,
                    verify_checksum: false,
                    error: Some(QueuedIcmpError {
                        message: msg,
                        code: e.icmp_code,
                        dst,
                    }),
                });
            });
        }
        got
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        // Borrow only the descriptors: the batch headers hold raw pointers
        // and are not Sync.
        let v4 = self.v4.as_ref().map(|s| &s.fd);
        let v6 = self.v6.as_ref().map(|s| &s.fd);
        async fn one(fd: Option<&AsyncFd<socket2::Socket>>) -> io::Result<()> {
            match fd {
                Some(fd) => {
                    // ERROR too: a datagram socket's queued ICMP errors
                    // raise EPOLLERR, not EPOLLIN.
                    let mut guard = fd.ready(Interest::READABLE | Interest::ERROR).await?;
                    // The driver reads until the queue is empty next.
                    guard.clear_ready();
                    Ok(())
                }
                None => std::future::pending().await,
            }
        }
        async move {
            tokio::select! {
                r = one(v4) => r,
                r = one(v6) => r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_convert_and_bad_ones_fall_back() {
        let mono = Instant::now();
        let real = Duration::from_secs(1_000_000);
        let at = stamp_to_instant(real.checked_sub(Duration::from_millis(5)), mono, real);
        assert_eq!(mono - at, Duration::from_millis(5));
        assert_eq!(stamp_to_instant(None, mono, real), mono);
        assert_eq!(
            stamp_to_instant(Some(real + Duration::from_secs(1)), mono, real),
            mono
        );
    }

    #[test]
    fn denied_message_names_all_three_fixes() {
        let e = OpenError::Denied {
            family: "IPv4",
            tries: "dgram socket: Permission denied".into(),
        }
        .to_string();
        for fix in ["root", "setcap cap_net_raw+ep", "ping_group_range"] {
            assert!(e.contains(fix), "{e}");
        }
    }
}
