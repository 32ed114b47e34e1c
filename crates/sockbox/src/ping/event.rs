//! What the engine takes in (received messages) and reports (events),
//! and the observer trait that receives the events.

use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{Family, Message};
use tokio::time::Instant;

/// Counts of what arrived that was not a fresh reply to one of our probes.
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
    /// Our replies that came after their probe had timed out.
    pub late: u64,
    /// ICMP errors (unreachable, time exceeded…) quoting one of our probes.
    pub errors: u64,
    /// Packets too short or malformed to read.
    pub malformed: u64,
}

/// A probe to put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Index of the target.
    pub target: u32,
    /// Its round (0-based probe number for this target).
    pub round: u32,
    /// The sequence number carried in the payload.
    pub seq: u32,
    /// Where it goes.
    pub addr: IpAddr,
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
    /// Set when this is not a packet but an ICMP error the kernel queued
    /// for a datagram socket: `bytes` is then our probe as sent.
    pub error: Option<QueuedIcmpError>,
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
pub struct Reply {
    /// Target index.
    pub target: u32,
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
    /// True when this probe had already been answered.
    pub duplicate: bool,
}

/// An ICMP error about one of our probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcmpError {
    /// Target index.
    pub target: u32,
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

impl IcmpError {
    /// The error as ping and fping name it ("Host Unreachable", "Time to
    /// live exceeded"…).
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
pub enum Event {
    /// A reply (also duplicates, flagged).
    Reply(Reply),
    /// No reply to probe `round` of `target` within the timeout.
    Timeout {
        /// Target index.
        target: u32,
        /// Round.
        round: u32,
    },
    /// An ICMP error quoting one of our probes.
    Error(IcmpError),
    /// Sending a probe failed locally (no route, permission…).
    SendFailed {
        /// Target index.
        target: u32,
        /// Round.
        round: u32,
        /// The OS error kind.
        kind: std::io::ErrorKind,
    },
    /// The target will get no more probes: `alive` when it ever answered.
    Done {
        /// Target index.
        target: u32,
        /// True when at least one reply came.
        alive: bool,
    },
}

/// Receives the engine's events.
pub trait Observer {
    /// One event.
    fn event(&mut self, ev: &Event);
    /// A batch of events is complete (flush output here).
    fn flush(&mut self) {}
}

impl<F: FnMut(&Event)> Observer for F {
    fn event(&mut self, ev: &Event) {
        self(ev);
    }
}
