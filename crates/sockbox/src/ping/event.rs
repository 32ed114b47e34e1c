//! What the engine takes in (received messages) and reports (events),
//! and the observer trait that receives the events.

use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{Family, Message};
use tokio::time::Instant;

use super::stats::TargetStats;

/// Counts of what arrived that was not a fresh reply to one of our probes,
/// and of probes that could not be sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Echo replies that are not ours: another process's, a wrong token, a
    /// sequence we never sent, or from another address than the one probed.
    pub foreign: u64,
    /// Second and later replies to the same probe.
    pub duplicates: u64,
    /// Messages whose ICMP checksum is wrong (only seen on raw IPv4 sockets;
    /// elsewhere the kernel drops them).
    pub bad_checksum: u64,
    /// Our replies whose data came back changed.
    pub corrupt: u64,
    /// Our replies that came after their probe had timed out, or took
    /// longer than the timeout, or came for a target already finished.
    pub late: u64,
    /// ICMP errors (unreachable, time exceeded…) quoting one of our probes.
    pub errors: u64,
    /// Probes the system refused to send (no route, permission…); they
    /// are not counted as sent.
    pub send_errors: u64,
    /// Packets too short or malformed to read.
    pub malformed: u64,
}

/// A target being probed: its place in the target list, its address and
/// the label to show for it (the name as given, or as looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The label, when it is not just the address.
    pub name: Option<Box<str>>,
    /// The address probed.
    pub addr: IpAddr,
}

impl Target {
    /// A target given as an address.
    pub const fn addr(addr: IpAddr) -> Self {
        Self { name: None, addr }
    }

    /// How to show it: the label when there is one, else the address.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => self.addr.to_string(),
        }
    }
}

/// A target as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRef<'a> {
    /// Its place among the targets probed (0, 1, 2… in the order they
    /// were taken from the source).
    pub index: u64,
    /// The address probed.
    pub addr: IpAddr,
    /// Its label, when it is not just the address.
    pub name: Option<&'a str>,
}

impl TargetRef<'_> {
    /// The label, or the address as text.
    pub fn display(&self) -> String {
        self.name
            .map_or_else(|| self.addr.to_string(), str::to_owned)
    }
}

/// A probe to put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The engine's slot of the target (internal handle).
    pub slot: u32,
    /// The target's index.
    pub target: u64,
    /// Its round (0-based probe number for this target).
    pub round: u32,
    /// The sequence number carried in the payload.
    pub seq: u32,
    /// Where it goes.
    pub addr: IpAddr,
}

/// What a received message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingKind {
    /// A packet: an echo reply or an ICMP error read as a packet.
    Packet,
    /// An ICMP error the kernel queued for a datagram socket: the bytes
    /// are our probe as sent.
    QueuedError(QueuedIcmpError),
    /// The kernel's transmit timestamp of one of our probes: the bytes
    /// hold the probe as sent (possibly with link and IP headers before
    /// it), `at` is when it left.
    SendStamp,
}

/// A received ICMP message, as the socket layer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Which socket it came from.
    pub family: Family,
    /// The sender.
    pub from: IpAddr,
    /// The bytes read: an IPv4 packet when `ip_header`, else ICMP only.
    pub bytes: &'a [u8],
    /// True for raw IPv4 sockets, which deliver the IP header too.
    pub ip_header: bool,
    /// TTL / hop limit from a control message, when known.
    pub ttl: Option<u8>,
    /// When it arrived (kernel timestamp where available).
    pub at: Instant,
    /// Whether the ICMP checksum must be checked here (raw IPv4) or was
    /// already checked by the kernel.
    pub verify_checksum: bool,
    /// What it is.
    pub kind: IncomingKind,
}

/// An ICMP error reported through a datagram socket's error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedIcmpError {
    /// The error's kind.
    pub message: Message,
    /// Its code.
    pub code: u8,
    /// Where the probe was going.
    pub dst: IpAddr,
}

/// A reply to one of our probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reply<'a> {
    /// The target.
    pub target: TargetRef<'a>,
    /// Round of the probe answered.
    pub round: u32,
    /// Who answered.
    pub from: IpAddr,
    /// ICMP message length (header + data), as `ping` prints it.
    pub bytes: usize,
    /// TTL or hop limit of the reply, when known.
    pub ttl: Option<u8>,
    /// Round-trip time.
    pub rtt: Duration,
    /// When the reply arrived.
    pub at: Instant,
    /// True when this probe had already been answered.
    pub duplicate: bool,
    /// The target's statistics, this reply included.
    pub stats: &'a TargetStats,
}

/// An ICMP error about one of our probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcmpError<'a> {
    /// The target.
    pub target: TargetRef<'a>,
    /// Round of the probe concerned.
    pub round: u32,
    /// The router or host that sent the error.
    pub from: IpAddr,
    /// Which error.
    pub message: Message,
    /// Its code.
    pub code: u8,
    /// The family (type and code numbers differ).
    pub family: Family,
}

impl IcmpError<'_> {
    /// The error as ping names it ("Host Unreachable", "Time to live
    /// exceeded"…).
    pub fn describe(&self) -> String {
        let v4 = self.family == Family::V4;
        match (self.message, self.code) {
            (Message::DstUnreachable, 0) if v4 => "Net Unreachable".into(),
            (Message::DstUnreachable, 1) if v4 => "Host Unreachable".into(),
            (Message::DstUnreachable, 2) if v4 => "Protocol Unreachable".into(),
            (Message::DstUnreachable, 3) if v4 => "Port Unreachable".into(),
            (Message::DstUnreachable, 4) if v4 => "Frag needed and DF set".into(),
            (Message::DstUnreachable, 9 | 10 | 13) if v4 => {
                "Communication prohibited by filter".into()
            }
            (Message::DstUnreachable, 0) => "No route".into(),
            (Message::DstUnreachable, 1) => "Administratively prohibited".into(),
            (Message::DstUnreachable, 3) => "Address unreachable".into(),
            (Message::DstUnreachable, 4) => "Port unreachable".into(),
            (Message::DstUnreachable, c) => format!("Destination Unreachable (code {c})"),
            (Message::TimeExceeded, 0) => "Time to live exceeded".into(),
            (Message::TimeExceeded, _) => "Frag reassembly time exceeded".into(),
            (Message::PacketTooBig, _) => "Packet too big".into(),
            (Message::ParamProblem, c) => format!("Parameter problem (code {c})"),
            (m, c) => format!("ICMP {m:?} (code {c})"),
        }
    }
}

/// What the engine reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// A reply (also duplicates, flagged).
    Reply(Reply<'a>),
    /// No reply to probe `round` of `target` within the timeout.
    Timeout {
        /// The target.
        target: TargetRef<'a>,
        /// Round.
        round: u32,
        /// The target's statistics, this timeout included.
        stats: &'a TargetStats,
    },
    /// A reply to probe `round` of `target` that came after its timeout:
    /// not counted as received (the probe stays timed out).
    Late {
        /// The target.
        target: TargetRef<'a>,
        /// Round.
        round: u32,
        /// How long after it was sent.
        rtt: Duration,
    },
    /// An ICMP error quoting one of our probes.
    Error(IcmpError<'a>),
    /// Sending a probe failed locally (no route, permission…): it does not
    /// count as sent and gets no timeout.
    SendFailed {
        /// The target.
        target: TargetRef<'a>,
        /// Round.
        round: u32,
        /// What the system said.
        error: crate::sys::ping_io::SendFailure,
    },
    /// A name from the target source that did not resolve; it is not
    /// probed.
    Unresolved {
        /// The name as given.
        name: &'a str,
        /// Why.
        error: &'a str,
    },
    /// The target will get no more probes: `alive` when it ever answered.
    /// Its statistics are final; the engine forgets it after this event.
    Done {
        /// The target.
        target: TargetRef<'a>,
        /// True when at least one reply came.
        alive: bool,
        /// Its final statistics.
        stats: &'a TargetStats,
    },
}

/// Receives the engine's events.
pub trait Observer {
    /// One event.
    fn event(&mut self, ev: &Event<'_>);
    /// A batch of events is complete (flush output here).
    fn flush(&mut self) {}
    /// When the observer wants [`Observer::tick`] called next (periodic
    /// reports, exports), if ever.
    fn wake_at(&self) -> Option<Instant> {
        None
    }
    /// Called on every turn of the loop, at least at [`Observer::wake_at`].
    fn tick(&mut self, _now: Instant) {}
}

impl<F: FnMut(&Event<'_>)> Observer for F {
    fn event(&mut self, ev: &Event<'_>) {
        self(ev);
    }
}
