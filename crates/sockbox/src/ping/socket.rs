//! The socket layer behind a trait, so the driver runs against real ICMP
//! sockets or against an in-memory network in tests.
//!
//! Opening is split from use: [`open`] runs before the async runtime starts
//! (so capabilities can be dropped while there is a single thread), and
//! [`IcmpTransport::new`] registers the open sockets with tokio.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::ops::Range;

use sockbox_wire::icmp::Family;
use tokio::time::Instant;

use super::engine::Incoming;
pub use super::transport::IcmpTransport;
use crate::sys::ping::{IcmpKind, SetupError, SocketOptions, make_send_only, open_icmp};
use crate::sys::ping_io::SendFailure;

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
    /// are listed in `report.failed` by index, and each system call's span
    /// in `report.spans`; an error means there is no socket for `family`
    /// at all.
    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        report: &mut SendReport,
    ) -> io::Result<()>;

    /// Most probes worth sending in one turn before reading replies again
    /// (bounded by what the receive buffer can hold meanwhile).
    fn send_window(&self) -> usize {
        8 * BATCH
    }

    /// Read without blocking (up to one batch per socket of `family`, plus
    /// anything read meanwhile by sender threads), handing each message to
    /// `f`; `Ok(0)` or `WouldBlock` when nothing is waiting. Returns how many
    /// were read; fewer than [`BATCH`] means every queue is empty.
    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize>;

    /// Resolves when a socket may have something to read. After it
    /// resolves, read until `recv` says the queue is empty.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
}

/// The clock read just before and just after one system call that sent
/// the packets `range` (one `sendmmsg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSpan {
    /// The packets it sent, by index.
    pub range: Range<usize>,
    /// Read just before the call.
    pub before: Instant,
    /// Read just after it returned.
    pub after: Instant,
}

impl SendSpan {
    /// When packet `i` (in `range`) left: the middle of its share of the
    /// call, the packets going out one after another at an even pace.
    pub fn time_of(&self, i: usize) -> Instant {
        let n = self.range.len().max(1) as u32;
        let k = i.saturating_sub(self.range.start).min(n as usize - 1) as u32;
        let took = self.after.saturating_duration_since(self.before);
        self.before + took * (2 * k + 1) / (2 * n)
    }
}

/// What a [`Transport::send`] reports back.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Packets the system refused, by index, with the error.
    pub failed: Vec<(usize, SendFailure)>,
    /// One per system call, in no particular order.
    pub spans: Vec<SendSpan>,
}

impl SendReport {
    /// Empty it for the next send.
    pub fn clear(&mut self) {
        self.failed.clear();
        self.spans.clear();
    }

    /// Sort the spans by first packet, for [`SendReport::time_of`].
    pub fn sort(&mut self) {
        self.spans.sort_unstable_by_key(|s| s.range.start);
        self.failed.sort_unstable_by_key(|f| f.0);
    }

    /// When packet `i` left, from the span that sent it (after
    /// [`SendReport::sort`]).
    pub fn time_of(&self, i: usize) -> Option<Instant> {
        let at = self.spans.partition_point(|s| s.range.end <= i);
        self.spans
            .get(at)
            .filter(|s| s.range.contains(&i))
            .map(|s| s.time_of(i))
    }
}

/// The open sockets of one family, all of one kind.
#[derive(Debug)]
pub struct FamilySockets {
    /// Their family.
    pub family: Family,
    /// Datagram or raw.
    pub kind: IcmpKind,
    /// At least one; several when a sweep sends from several threads.
    /// Each datagram socket gets its own ident from the kernel and so
    /// receives the replies to what was sent on it. Every raw socket would
    /// get a copy of every reply, so only the first raw socket receives: the
    /// others are send-only (their ICMP filter blocks every type).
    pub sockets: Vec<socket2::Socket>,
    /// The sockets queue a transmit timestamp for every probe.
    pub tx_timestamps: bool,
}

/// Most datagram sockets [`open`] opens per family.
pub const MAX_LANES: usize = 8;

/// The open sockets, before they are handed to the runtime.
#[derive(Debug)]
pub struct OpenSockets {
    /// IPv4, or why it could not be opened.
    pub v4: Result<FamilySockets, OpenError>,
    /// IPv6, or why it could not be opened.
    pub v6: Result<FamilySockets, OpenError>,
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
    /// No ICMP socket of this family exists here (not for lack of
    /// privilege: the family is disabled or unsupported).
    #[error("cannot open an ICMP socket for {family}: {tries}")]
    Unavailable {
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// Each kind tried and its error.
        tries: String,
    },
    /// The socket opened but an option, the interface or the source
    /// address was refused.
    #[error("ICMP socket for {family}: {error}")]
    Setup {
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// What failed.
        #[source]
        error: SetupError,
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
    lanes: usize,
) -> Result<FamilySockets, OpenError> {
    let kinds: &[IcmpKind] = match choice {
        SocketChoice::Auto => &[IcmpKind::Dgram, IcmpKind::Raw],
        SocketChoice::Dgram => &[IcmpKind::Dgram],
        SocketChoice::Raw => &[IcmpKind::Raw],
    };
    let mut tries = Vec::new();
    let mut denied = false;
    for &kind in kinds {
        match open_icmp(family, kind, opts) {
            Ok(s) => {
                let mut sockets = vec![s.socket];
                // More lanes if they open; one is enough to run.
                while sockets.len() < lanes.min(MAX_LANES) {
                    let more = open_icmp(family, kind, opts)
                        .map_err(|e| io::Error::new(e.io().kind(), e.to_string()))
                        .and_then(|more| {
                            if kind == IcmpKind::Raw {
                                make_send_only(&more, opts.tx_timestamps)?;
                            }
                            Ok(more)
                        });
                    match more {
                        Ok(more) => sockets.push(more.socket),
                        Err(e) => {
                            tracing::debug!("extra ICMP {} socket: {e}", kind.as_str());
                            break;
                        }
                    }
                }
                return Ok(FamilySockets {
                    family,
                    kind,
                    sockets,
                    tx_timestamps: opts.tx_timestamps,
                });
            }
            Err(e) if e.is_denied() => {
                denied = true;
                let hint = match (kind, e.io().raw_os_error()) {
                    (IcmpKind::Dgram, Some(libc::EACCES)) => {
                        " (the group is not in net.ipv4.ping_group_range)"
                    }
                    (IcmpKind::Raw, Some(libc::EPERM)) => " (needs CAP_NET_RAW)",
                    _ => "",
                };
                tries.push(format!("{} socket: {}{hint}", kind.as_str(), e.io()));
            }
            Err(e @ SetupError::Create(_)) => {
                tries.push(format!("{} socket: {}", kind.as_str(), e.io()));
            }
            Err(error) => {
                return Err(OpenError::Setup {
                    family: family_name(family),
                    error,
                });
            }
        }
    }
    let (family, tries) = (family_name(family), tries.join("; "));
    Err(if denied {
        OpenError::Denied { family, tries }
    } else {
        OpenError::Unavailable { family, tries }
    })
}

/// Open the ICMP sockets of each wanted family: a datagram socket first,
/// then a raw one (as `choice` allows), up to `lanes` of that kind (at most
/// [`MAX_LANES`]) so that many probes can be sent from as many threads
/// ([`IcmpTransport`] splits big sends over them); pass 1 for a few
/// targets. Synchronous: call it before starting threads.
pub fn open(
    choice: SocketChoice,
    want_v4: bool,
    want_v6: bool,
    opts: &SocketOptions,
    lanes: usize,
) -> OpenSockets {
    let one = |want: bool, family: Family| {
        if want {
            open_family(family, choice, opts, lanes)
        } else {
            Err(OpenError::NotWanted)
        }
    };
    OpenSockets {
        v4: one(want_v4, Family::V4),
        v6: one(want_v6, Family::V6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
