//! The async loop that connects an [`Engine`] to a [`Transport`]: read
//! everything waiting, expire overdue probes, send what is due in batches,
//! then sleep until a socket is readable, a timer is due, or shutdown.

use std::io;
use std::net::IpAddr;

use sockbox_wire::icmp::{ChecksumMode, Family, Message, Packet};
use tokio::time::Instant;

use super::engine::{Engine, Observer, Probe};
use super::probe;
use super::socket::{BATCH, Transport};
use crate::Shutdown;

/// Most batches read per socket in one turn before sending again.
const RECV_TURN: usize = 64;

/// Prepared packet buffers for one family: the pattern is written once and
/// only the header and id change per probe.
struct Buffers {
    family: Family,
    bufs: Vec<Vec<u8>>,
    payload_len: usize,
}

impl Buffers {
    fn new(family: Family, payload_len: usize) -> Self {
        Self {
            family,
            bufs: Vec::new(),
            payload_len,
        }
    }

    /// Make sure `n` buffers exist.
    fn reserve(&mut self, n: usize) {
        let ty = Message::EchoRequest.to_type(self.family).unwrap_or(8);
        while self.bufs.len() < n {
            let mut b = vec![0u8; 8 + self.payload_len];
            b[0] = ty;
            probe::write_pattern(&mut b[8..]);
            self.bufs.push(b);
        }
    }

    fn fill(&mut self, i: usize, p: &Probe, token: u64) {
        let buf = &mut self.bufs[i];
        let mut pkt = Packet::new_unchecked(&mut buf[..]);
        let (ident, seq_no) = probe::header_fields(p.seq);
        pkt.set_echo_ident(ident);
        pkt.set_echo_seq_no(seq_no);
        probe::write_id(pkt.payload_mut(), token, p.seq);
        // ICMPv6 checksums are always computed by the kernel; ICMPv4 ones
        // by us (raw sockets need it; datagram sockets redo it anyway).
        let mode = match self.family {
            Family::V4 => ChecksumMode::V4,
            Family::V6 => ChecksumMode::Kernel,
        };
        pkt.fill_checksum(&mode);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every target finished.
    Complete,
    /// The deadline (`-w`) passed.
    Deadline,
    /// Shutdown was triggered (Ctrl-C).
    Interrupted,
}

fn family_of(a: &IpAddr) -> Family {
    if a.is_ipv4() { Family::V4 } else { Family::V6 }
}

/// Send `probes` (all of `family`); failures are reported to the engine.
fn send_family<T: Transport>(
    engine: &mut Engine,
    transport: &mut T,
    bufs: &mut Buffers,
    probes: &[Probe],
    obs: &mut impl Observer,
) {
    let token = engine.config().token;
    bufs.reserve(probes.len());
    for (i, p) in probes.iter().enumerate() {
        bufs.fill(i, p, token);
    }
    let packets: Vec<&[u8]> = bufs.bufs[..probes.len()]
        .iter()
        .map(Vec::as_slice)
        .collect();
    let dests: Vec<IpAddr> = probes.iter().map(|p| p.addr).collect();
    let mut failed = Vec::new();
    if let Err(e) = transport.send(bufs.family, &packets, &dests, &mut failed) {
        failed = (0..probes.len()).map(|i| (i, e.kind())).collect();
    }
    for (i, kind) in failed {
        if let Some(p) = probes.get(i) {
            engine.on_send_error(p, kind, obs);
        }
    }
}

/// Run `engine` over `transport` until it is done, `deadline` passes or
/// `shutdown` fires. Events go to `obs`.
pub async fn drive<T: Transport>(
    engine: &mut Engine,
    transport: &mut T,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
    obs: &mut impl Observer,
) -> io::Result<Ending> {
    let payload_len = engine.config().payload_len;
    let mut v4 = Buffers::new(Family::V4, payload_len);
    let mut v6 = Buffers::new(Family::V6, payload_len);
    let mut due: Vec<Probe> = Vec::new();
    loop {
        // 1. Read everything waiting (bounded per turn).
        let mut more_to_read = false;
        for fam in [Family::V4, Family::V6] {
            if transport.kind(fam).is_none() {
                continue;
            }
            for turn in 0..RECV_TURN {
                let got = transport.recv(fam, &mut |inc| engine.on_packet(inc, obs));
                match got {
                    Ok(n) if n >= BATCH => more_to_read |= turn + 1 == RECV_TURN,
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // A pending socket error (e.g. an ICMP error reported
                        // on a datagram socket) is not fatal to the run.
                        tracing::debug!("recv on the {fam:?} ICMP socket: {e}");
                        break;
                    }
                }
            }
        }
        // 2. Expire overdue probes; stop when done.
        let now = Instant::now();
        engine.poll_timeouts(now, obs);
        if engine.is_done() {
            obs.flush();
            return Ok(Ending::Complete);
        }
        if deadline.is_some_and(|d| now >= d) {
            engine.stop(obs);
            obs.flush();
            return Ok(Ending::Deadline);
        }
        if shutdown.is_triggered() {
            engine.stop(obs);
            obs.flush();
            return Ok(Ending::Interrupted);
        }
        // 3. Send what is due: up to one window per turn, per family.
        let window = transport.send_window();
        let now = Instant::now();
        due.clear();
        while due.len() < window {
            match engine.poll_send(now) {
                Some(p) => due.push(p),
                None => break,
            }
        }
        if !due.is_empty() {
            let (p4, p6): (Vec<Probe>, Vec<Probe>) = due
                .drain(..)
                .partition(|p| family_of(&p.addr) == Family::V4);
            for (probes, bufs) in [(p4, &mut v4), (p6, &mut v6)] {
                if !probes.is_empty() {
                    send_family(engine, transport, bufs, &probes, obs);
                }
            }
        }
        obs.flush();
        // 4. Wait for a reply, a timer, or shutdown.
        if more_to_read {
            tokio::task::yield_now().await;
            continue;
        }
        let mut wake = engine.next_wakeup();
        if let Some(d) = deadline {
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        if wake.is_some_and(|w| w <= Instant::now()) {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = async {
            match wake {
                Some(w) => tokio::time::sleep_until(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = transport.readable() => r?,
            () = sleep => {}
            () = shutdown.wait() => {}
        }
    }
}
