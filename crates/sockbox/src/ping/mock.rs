//! An in-memory network for driver tests (trippy style): hosts answer echo
//! requests after a delay, and can drop, duplicate, corrupt, answer from
//! another address, or send ICMP errors. Time is tokio's (paused in tests).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Packet, Repr};
use tokio::time::Instant;

use super::engine::{Incoming, IncomingKind};
use super::socket::{BATCH, SendReport, SendSpan, Transport};
use crate::sys::ping::IcmpKind;

/// How one simulated host behaves.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Reply delay.
    pub delay: Duration,
    /// Drop the replies to these probe numbers (0-based, per host).
    pub drop: Vec<u32>,
    /// Drop every reply.
    pub dead: bool,
    /// Drop pseudo-randomly with this probability (seeded, deterministic).
    pub loss: f64,
    /// Send each reply twice.
    pub duplicate: bool,
    /// Break the checksum of replies.
    pub bad_checksum: bool,
    /// Change a data byte of replies (checksum fixed up).
    pub corrupt: bool,
    /// Answer from this address instead.
    pub reply_from: Option<IpAddr>,
    /// Instead of a reply, a destination-unreachable from this router.
    pub unreachable_from: Option<IpAddr>,
    /// The local system refuses to send to it (no route…).
    pub refuse: Option<crate::sys::ping_io::SendFailure>,
    /// With `refuse`: only the first this many sends are refused (a
    /// passing condition); 0 refuses every send.
    pub refuse_first: u32,
}

#[derive(Debug, Default)]
struct State {
    queue: Vec<(Instant, IpAddr, Vec<u8>)>,
    counts: HashMap<IpAddr, u32>,
    /// Sends asked for, refused or not.
    attempts: HashMap<IpAddr, u32>,
    sent: u64,
    rng: u64,
}

/// The simulated network.
#[derive(Debug)]
pub struct MockNet {
    kind: IcmpKind,
    hosts: HashMap<IpAddr, Host>,
    /// How every host not listed behaves (`None`: silent).
    others: Option<Host>,
    state: Mutex<State>,
}

impl MockNet {
    /// A network seen through sockets of `kind`; unknown hosts never answer.
    pub fn new(kind: IcmpKind, hosts: impl IntoIterator<Item = (IpAddr, Host)>) -> Self {
        Self {
            kind,
            hosts: hosts.into_iter().collect(),
            others: None,
            state: Mutex::new(State {
                rng: 0x9e37_79b9_7f4a_7c15,
                ..State::default()
            }),
        }
    }

    /// A network where every address answers after `delay`.
    pub fn answering(kind: IcmpKind, delay: Duration) -> Self {
        let mut net = Self::new(kind, []);
        net.others = Some(Host {
            delay,
            ..Host::default()
        });
        net
    }

    fn host(&self, dst: &IpAddr) -> Option<&Host> {
        self.hosts.get(dst).or(self.others.as_ref())
    }

    /// Queue raw bytes as if received from `from` at `at`.
    pub fn inject(&self, at: Instant, from: IpAddr, bytes: Vec<u8>) {
        if let Ok(mut s) = self.state.lock() {
            s.queue.push((at, from, bytes));
        }
    }

    /// Echo requests sent so far.
    pub fn sent(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.sent)
    }

    fn wrap_v4(&self, src: IpAddr, icmp: &[u8]) -> Vec<u8> {
        if self.kind != IcmpKind::Raw {
            return icmp.to_vec();
        }
        let IpAddr::V4(src) = src else {
            return icmp.to_vec();
        };
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 61, 1, 0, 0];
        let total = (20 + icmp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&Ipv4Addr::new(10, 0, 0, 1).octets());
        ip.extend_from_slice(icmp);
        ip
    }
}

fn next_rand(s: &mut u64) -> f64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 11) as f64 / (1u64 << 53) as f64
}

fn emit(repr: &Repr<'_>, family: Family) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    let mode = match family {
        Family::V4 => ChecksumMode::V4,
        Family::V6 => ChecksumMode::Kernel,
    };
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]), family, &mode);
    buf
}

impl Transport for MockNet {
    fn kind(&self, _family: Family) -> Option<IcmpKind> {
        Some(self.kind)
    }

    fn send(
        &mut self,
        family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        report: &mut SendReport,
    ) -> io::Result<()> {
        let now = Instant::now();
        report.spans.push(SendSpan {
            range: 0..packets.len(),
            before: now,
            after: now,
        });
        let Ok(mut st) = self.state.lock() else {
            return Err(io::Error::other("poisoned"));
        };
        for (i, (pkt, &dst)) in packets.iter().zip(dests).enumerate() {
            let attempt = {
                let a = st.attempts.entry(dst).or_insert(0);
                *a += 1;
                *a
            };
            if let Some(h) = self.host(&dst)
                && let Some(kind) = h.refuse
                && (h.refuse_first == 0 || attempt <= h.refuse_first)
            {
                report.failed.push((i, kind));
                continue;
            }
            st.sent += 1;
            let n = if self.hosts.contains_key(&dst) {
                let c = st.counts.entry(dst).or_insert(0);
                *c += 1;
                *c - 1
            } else {
                0
            };
            let Some(host) = self.host(&dst) else {
                continue;
            };
            let p = Packet::new_checked(*pkt).map_err(io::Error::other)?;
            let data = p.payload();
            if let Some(router) = host.unreachable_from {
                // Quote an IPv4 header + the whole request, as Linux does.
                let mut quoted = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1];
                if let IpAddr::V4(d) = dst {
                    quoted.extend_from_slice(&d.octets());
                }
                quoted.extend_from_slice(pkt);
                let icmp = emit(
                    &Repr::DstUnreachable {
                        code: 1,
                        quoted: &quoted,
                    },
                    family,
                );
                let bytes = self.wrap_v4(router, &icmp);
                st.queue.push((now + host.delay, router, bytes));
                continue;
            }
            let lost = host.dead || host.drop.contains(&n) || next_rand(&mut st.rng) < host.loss;
            if lost {
                continue;
            }
            let reply = Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            };
            let mut icmp = emit(&reply, family);
            if host.corrupt {
                let last = icmp.len() - 1;
                icmp[last] ^= 0xff;
                let mut q = Packet::new_unchecked(&mut icmp[..]);
                q.fill_checksum(&ChecksumMode::V4);
            }
            if host.bad_checksum {
                icmp[2] ^= 0x55;
            }
            let from = host.reply_from.unwrap_or(dst);
            let bytes = self.wrap_v4(from, &icmp);
            let copies = if host.duplicate { 2 } else { 1 };
            for c in 0..copies {
                let at = now + host.delay + Duration::from_millis(c);
                st.queue.push((at, from, bytes.clone()));
            }
        }
        Ok(())
    }

    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> io::Result<usize> {
        let now = Instant::now();
        let ready: Vec<(Instant, IpAddr, Vec<u8>)> = {
            let Ok(mut st) = self.state.lock() else {
                return Err(io::Error::other("poisoned"));
            };
            st.queue.sort_by_key(|e| e.0);
            let take = st
                .queue
                .iter()
                .take_while(|e| e.0 <= now)
                .filter(|e| (family == Family::V4) == e.1.is_ipv4())
                .take(BATCH)
                .count();
            let mut out = Vec::new();
            let mut i = 0;
            while out.len() < take && i < st.queue.len() {
                if st.queue[i].0 <= now && (family == Family::V4) == st.queue[i].1.is_ipv4() {
                    out.push(st.queue.remove(i));
                } else {
                    i += 1;
                }
            }
            out
        };
        let raw_v4 = self.kind == IcmpKind::Raw && family == Family::V4;
        for (at, from, bytes) in &ready {
            f(&Incoming {
                family,
                from: *from,
                bytes,
                ip_header: raw_v4,
                ttl: if raw_v4 { None } else { Some(61) },
                at: *at,
                verify_checksum: raw_v4,
                kind: IncomingKind::Packet,
            });
        }
        if ready.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(ready.len())
    }

    async fn readable(&self) -> io::Result<()> {
        let next = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.queue.iter().map(|e| e.0).min());
        match next {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
        Ok(())
    }
}
