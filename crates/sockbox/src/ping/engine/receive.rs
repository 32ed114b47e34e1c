//! Matching what comes back: echo replies, ICMP errors (as packets or
//! from a datagram socket's error queue) and the kernel's transmit
//! timestamps, each to the probe it concerns.

use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Ipv4Packet, Message, Packet, Quote, Repr};

use super::{Engine, Event, IcmpError, Incoming, IncomingKind, Mode, Observer, Reply, State};
use crate::ping::probe;

/// A transmit timestamp this much before the clock read at the send is
/// not about that send.
const STAMP_SLACK_NS: u64 = 1_000_000_000;

impl Engine {
    /// Handle one received message.
    pub fn on_packet(&mut self, pkt: &Incoming<'_>, obs: &mut impl Observer) {
        match pkt.kind {
            IncomingKind::Packet => {}
            IncomingKind::QueuedError(e) => {
                self.on_queued_error(pkt, e.dst, e.message, e.code, obs);
                return;
            }
            IncomingKind::SendStamp => {
                self.on_send_stamp(pkt);
                return;
            }
        }
        let (icmp, ttl) = if pkt.ip_header {
            let Ok(ip) = Ipv4Packet::new_checked(pkt.bytes) else {
                self.counters.malformed += 1;
                return;
            };
            (&pkt.bytes[ip.header_len()..], Some(ip.ttl()))
        } else {
            (pkt.bytes, pkt.ttl)
        };
        let Ok(p) = Packet::new_checked(icmp) else {
            self.counters.malformed += 1;
            return;
        };
        let mode = if pkt.verify_checksum && pkt.family == Family::V4 {
            ChecksumMode::V4
        } else {
            ChecksumMode::Kernel
        };
        let repr = match Repr::parse(&p, pkt.family, &mode) {
            Ok(r) => r,
            Err(sockbox_wire::icmp::Error::Checksum) => {
                self.counters.bad_checksum += 1;
                return;
            }
            // Types we do not track (router adverts, our own requests seen
            // on a raw socket…) are not replies: ignore them.
            Err(_) => return,
        };
        match repr {
            Repr::EchoReply { data, .. } => self.on_reply(pkt, data, icmp.len(), ttl, obs),
            Repr::DstUnreachable { code, quoted }
            | Repr::TimeExceeded { code, quoted }
            | Repr::ParamProblem { code, quoted, .. } => {
                self.on_error(pkt, repr.message(), code, quoted, obs);
            }
            Repr::PacketTooBig { quoted, .. } => {
                self.on_error(pkt, Message::PacketTooBig, 0, quoted, obs);
            }
            Repr::EchoRequest { .. } => {}
        }
    }

    /// The kernel's transmit timestamp of a probe: the probe id is found
    /// in the returned bytes wherever the headers before it end.
    fn on_send_stamp(&mut self, pkt: &Incoming<'_>) {
        let token = self.cfg.token.to_be_bytes();
        let Some(at) = memchr::memmem::find(pkt.bytes, &token) else {
            return;
        };
        let Some(seq) = probe::read(&pkt.bytes[at..], self.cfg.token) else {
            return;
        };
        let stamp = self.now_ns(pkt.at);
        if let Some(f) = self.ring.pending_mut(seq)
            && stamp.saturating_add(STAMP_SLACK_NS) >= f.sent_ns
        {
            f.sent_ns = stamp;
        }
    }

    fn on_reply(
        &mut self,
        pkt: &Incoming<'_>,
        data: &[u8],
        bytes: usize,
        ttl: Option<u8>,
        obs: &mut impl Observer,
    ) {
        let Some(f) = probe::read(data, self.cfg.token).and_then(|s| self.ring.get(s).copied())
        else {
            self.counters.foreign += 1;
            return;
        };
        let slot = &self.slots[f.slot as usize];
        let current = slot.live && slot.generation == f.generation;
        if current && slot.target.addr != pkt.from {
            self.counters.foreign += 1;
            return;
        }
        let seed = self.cfg.random_payload.then_some(self.cfg.token);
        if !probe::pattern_ok_seeded(data, seed) {
            self.counters.corrupt += 1;
            return;
        }
        let rtt_ns = self.now_ns(pkt.at).saturating_sub(f.sent_ns);
        let duplicate = match f.state {
            State::Pending if current => {
                let limit = self.timeout_ns[usize::from(f.level)];
                // A zero timeout takes no reply, however the send time was
                // estimated.
                if rtt_ns > limit || limit == 0 {
                    // Longer than its timeout: not counted (fping), and the
                    // timeout will be reported when it comes.
                    self.on_late(f.slot, f.round, rtt_ns, current, obs);
                    return;
                }
                false
            }
            State::Answered if current => true,
            // Never sent: whatever this is, it is not its answer.
            State::Unsent => {
                self.counters.foreign += 1;
                return;
            }
            _ => {
                self.on_late(f.slot, f.round, rtt_ns, current, obs);
                return;
            }
        };
        let rtt = Duration::from_nanos(rtt_ns);
        let s = &mut self.slots[f.slot as usize];
        if duplicate {
            s.stats.duplicates = s.stats.duplicates.saturating_add(1);
            self.counters.duplicates += 1;
        } else {
            if let Some(e) = self.ring.pending_mut(f.seq) {
                e.state = State::Answered;
            }
            s.pending = s.pending.saturating_sub(1);
            s.stats.received += 1;
            s.stats.rtt.add(rtt);
            self.totals.received += 1;
            self.totals.rtt.add(rtt);
        }
        obs.event(&Event::Reply(Reply {
            target: self.target_ref(f.slot),
            round: f.round,
            from: pkt.from,
            bytes,
            ttl,
            rtt,
            at: pkt.at,
            duplicate,
            stats: &self.slots[f.slot as usize].stats,
        }));
        let alive_mode = matches!(self.cfg.mode, Mode::Alive { .. });
        if !duplicate && (alive_mode || self.settled(f.slot)) {
            self.finish(f.slot, obs);
        }
    }

    /// A reply after its probe's timeout: counted apart; reported for its
    /// target while the engine still probes it (a finished target's slot
    /// may already hold another).
    fn on_late(
        &mut self,
        slot: u32,
        round: u32,
        rtt_ns: u64,
        current: bool,
        obs: &mut impl Observer,
    ) {
        self.counters.late += 1;
        if !current {
            return;
        }
        let s = &mut self.slots[slot as usize];
        s.stats.late = s.stats.late.saturating_add(1);
        obs.event(&Event::Late {
            target: self.target_ref(slot),
            round,
            rtt: Duration::from_nanos(rtt_ns),
        });
    }

    fn on_queued_error(
        &mut self,
        pkt: &Incoming<'_>,
        dst: IpAddr,
        message: Message,
        code: u8,
        obs: &mut impl Observer,
    ) {
        let Ok(p) = Packet::new_checked(pkt.bytes) else {
            return;
        };
        if p.message(pkt.family) != Message::EchoRequest {
            return;
        }
        let Some(seq) = probe::read(p.payload(), self.cfg.token) else {
            return;
        };
        self.report_error(pkt, seq, dst, message, code, obs);
    }

    fn report_error(
        &mut self,
        pkt: &Incoming<'_>,
        seq: u32,
        dst: IpAddr,
        message: Message,
        code: u8,
        obs: &mut impl Observer,
    ) {
        let Some(f) = self.ring.get(seq).copied() else {
            return;
        };
        let s = &mut self.slots[f.slot as usize];
        let never_sent = f.state == State::Unsent;
        if never_sent || !s.live || s.generation != f.generation || s.target.addr != dst {
            return;
        }
        self.counters.errors += 1;
        s.stats.errors = s.stats.errors.saturating_add(1);
        obs.event(&Event::Error(IcmpError {
            target: self.target_ref(f.slot),
            round: f.round,
            from: pkt.from,
            message,
            code,
            family: pkt.family,
        }));
    }

    fn on_error(
        &mut self,
        pkt: &Incoming<'_>,
        message: Message,
        code: u8,
        quoted: &[u8],
        obs: &mut impl Observer,
    ) {
        let Ok(q) = Quote::parse(pkt.family, quoted) else {
            return;
        };
        // Prefer the id in the quoted data; routers that quote only the
        // ICMP header leave the sequence in the ident/seq fields.
        let seq = probe::read(q.data, self.cfg.token).or_else(|| {
            (q.data.len() < probe::ID_LEN).then(|| probe::from_header_fields(q.ident, q.seq_no))
        });
        if let Some(seq) = seq {
            self.report_error(pkt, seq, q.dst, message, code, obs);
        }
    }
}
