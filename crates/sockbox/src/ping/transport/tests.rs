//! [`IcmpTransport`] on real loopback sockets: several datagram sockets per
//! family, sends split over threads, replies read from every socket. Each
//! test returns early where ICMP datagram sockets are not allowed (CI sets
//! `net.ipv4.ping_group_range` so they run there).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Message, Packet};
use tokio::time::Instant;

use super::*;
use crate::ping::probe;
use crate::ping::socket::{SocketChoice, open};
use crate::sys::ping::SocketOptions;

const TOKEN: u64 = 0x1a2e_5000_0000_0001;

/// A transport with `lanes` IPv4 sockets of `choice`, or `None` when the
/// system does not allow them.
/// Loopback drops packets when several tests burst at once (the per-CPU
/// backlog holds 1000): the tests that send real bursts take turns.
static BURSTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn v4(choice: SocketChoice, lanes: usize) -> Option<IcmpTransport> {
    let opts = SocketOptions {
        recv_buffer: 4 << 20,
        ..SocketOptions::default()
    };
    let opened = open(choice, true, false, &opts, lanes);
    let v4 = opened.v4.ok()?;
    Some(IcmpTransport::new(Some(v4), None, 128).unwrap())
}

fn dgram_v4(lanes: usize) -> Option<IcmpTransport> {
    v4(SocketChoice::Dgram, lanes)
}

/// Echo requests to 127.0.x.y, one per sequence number in `seqs`.
fn requests(seqs: std::ops::Range<u32>) -> (Vec<Vec<u8>>, Vec<IpAddr>) {
    let mut packets = Vec::new();
    let mut dests = Vec::new();
    for seq in seqs {
        let mut b = vec![0u8; 8 + 56];
        b[0] = Message::EchoRequest.to_type(Family::V4).unwrap();
        probe::write(&mut b[8..], TOKEN, seq);
        Packet::new_unchecked(&mut b[..]).fill_checksum(&ChecksumMode::V4);
        packets.push(b);
        let [_, _, hi, lo] = (seq + 1).to_be_bytes();
        dests.push(IpAddr::V4(Ipv4Addr::new(127, 0, hi, lo)));
    }
    (packets, dests)
}

/// Read until `want` distinct replies came or 5 s passed; returns the
/// sequence numbers seen and how many messages were duplicates.
async fn collect(t: &mut IcmpTransport, want: usize) -> (HashSet<u32>, usize) {
    let mut seen = HashSet::new();
    let mut dups = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < want && Instant::now() < deadline {
        loop {
            let mut on = |inc: &Incoming<'_>| {
                let icmp = if inc.ip_header {
                    &inc.bytes[usize::from(inc.bytes[0] & 0x0f) * 4..]
                } else {
                    inc.bytes
                };
                let p = Packet::new_checked(icmp).unwrap();
                assert_eq!(p.message(Family::V4), Message::EchoReply);
                // A raw socket also sees other programs' replies.
                let Some(seq) = probe::read(p.payload(), TOKEN) else {
                    return;
                };
                let [_, _, hi, lo] = (seq + 1).to_be_bytes();
                assert_eq!(inc.from, IpAddr::V4(Ipv4Addr::new(127, 0, hi, lo)));
                if !seen.insert(seq) {
                    dups += 1;
                }
            };
            match t.recv(Family::V4, &mut on) {
                Ok(n) if n >= BATCH => {}
                _ => break,
            }
        }
        if seen.len() < want {
            let _ = tokio::time::timeout(Duration::from_millis(50), t.readable()).await;
        }
    }
    (seen, dups)
}

#[tokio::test]
async fn a_big_send_is_split_over_the_sockets_and_every_reply_comes_back() {
    let _turn = BURSTS.lock().await;
    let Some(mut t) = dgram_v4(2) else { return };
    if t.lanes(Family::V4) < 2 {
        return;
    }
    let n = 1000;
    let mut both_lanes_busy = false;
    // Which thread takes which batch depends on scheduling: a few tries
    // for one where both threads sent (and so read replies).
    for attempt in 0..5 {
        let (packets, dests) = requests(0..n);
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        let mut report = SendReport::default();
        t.send(Family::V4, &refs, &dests, &mut report).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        // On loopback the replies come back during the send, and each
        // sender thread reads its own socket's into its stash.
        let side = t.v4.as_ref().unwrap();
        let stashed: usize = side.lanes.iter().map(|l| l.stash.len()).sum();
        assert!(stashed > 0 && stashed <= n as usize, "attempt {attempt}");
        both_lanes_busy |= side.lanes.iter().all(|l| !l.stash.is_empty());
        // Ready at once: the stashes are waiting.
        tokio::time::timeout(Duration::from_millis(100), t.readable())
            .await
            .expect("readable with stashed replies")
            .unwrap();
        let (seen, dups) = collect(&mut t, n as usize).await;
        assert_eq!(seen.len(), n as usize, "replies lost in attempt {attempt}");
        assert_eq!(dups, 0);
        assert!(
            t.v4.as_ref()
                .unwrap()
                .lanes
                .iter()
                .all(|l| l.stash.is_empty())
        );
        if both_lanes_busy {
            break;
        }
    }
    assert!(both_lanes_busy, "the second socket never sent");
}

#[tokio::test]
async fn a_small_send_uses_one_socket_and_is_read_from_it() {
    let _turn = BURSTS.lock().await;
    let Some(mut t) = dgram_v4(2) else { return };
    let (packets, dests) = requests(0..10);
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    let mut report = SendReport::default();
    t.send(Family::V4, &refs, &dests, &mut report).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let side = t.v4.as_ref().unwrap();
    assert!(side.lanes.iter().all(|l| l.stash.is_empty()));
    tokio::time::timeout(Duration::from_secs(2), t.readable())
        .await
        .expect("readable after replies")
        .unwrap();
    let (seen, dups) = collect(&mut t, 10).await;
    assert_eq!(seen, (0..10).collect());
    assert_eq!(dups, 0);
}

#[tokio::test]
async fn the_send_window_counts_every_socket() {
    let Some(one) = dgram_v4(1) else { return };
    let Some(two) = dgram_v4(2) else { return };
    assert_eq!(one.lanes(Family::V4), 1);
    assert_eq!(one.lanes(Family::V6), 0);
    let lanes = two.lanes(Family::V4);
    assert!(lanes >= 1);
    // Same buffer sizes: the window grows with the sockets.
    assert_eq!(two.send_window(), one.send_window() * lanes);
    assert!(one.send_window() >= BATCH);
}

#[tokio::test]
async fn the_whole_engine_sweeps_loopback_over_two_sockets() {
    let _turn = BURSTS.lock().await;
    let Some(mut t) = dgram_v4(2) else { return };
    let addrs: Vec<IpAddr> = (1..=2000u32)
        .map(|i| {
            let [_, _, hi, lo] = i.to_be_bytes();
            IpAddr::V4(Ipv4Addr::new(127, 0, hi, lo))
        })
        .collect();
    let cfg = crate::ping::PingConfig {
        mode: crate::ping::Mode::Alive {
            retries: 0,
            backoff: 1.0,
        },
        interval: Duration::ZERO,
        timeout: Duration::from_secs(2),
        ..crate::ping::PingConfig::default()
    };
    let mut alive = 0usize;
    let mut obs = |ev: &crate::ping::Event<'_>| {
        if let crate::ping::Event::Done { alive: true, .. } = ev {
            alive += 1;
        }
    };
    let mut src = crate::ping::IterSource(addrs.into_iter().map(crate::ping::Target::addr));
    let out = crate::ping::run(&cfg, &mut src, &mut t, &crate::Shutdown::new(), &mut obs)
        .await
        .unwrap();
    assert_eq!(alive, 2000);
    assert_eq!(out.counters.duplicates, 0);
    assert_eq!(out.counters.foreign, 0);
    assert_eq!((out.totals.sent, out.totals.received), (2000, 2000));
}

#[tokio::test]
async fn extra_raw_sockets_send_but_only_the_first_receives() {
    let _turn = BURSTS.lock().await;
    // Root only (raw sockets).
    let Some(mut t) = v4(SocketChoice::Raw, 2) else {
        return;
    };
    assert_eq!(t.kind(Family::V4), Some(IcmpKind::Raw));
    assert_eq!(t.lanes(Family::V4), 2);
    {
        let side = t.v4.as_ref().unwrap();
        assert!(side.lanes[0].receives && !side.lanes[1].receives);
        // One receiving socket: its window alone.
        assert_eq!(t.send_window(), side.lanes[0].window);
    }
    let n = 1000;
    let (packets, dests) = requests(0..n);
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    let mut report = SendReport::default();
    t.send(Family::V4, &refs, &dests, &mut report).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // Each reply exactly once: the send-only socket got no copies.
    let (seen, dups) = collect(&mut t, n as usize).await;
    assert_eq!(seen.len(), n as usize, "replies lost");
    assert_eq!(dups, 0);
    let side = t.v4.as_mut().unwrap();
    assert!(side.lanes[1].stash.is_empty());
    let fd = side.lanes[1].raw_fd();
    let r = crate::sys::ping_io::recv_batch(fd, &mut side.lanes[1].recv, |_| {
        panic!("the send-only socket received something")
    });
    assert_eq!(
        r.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::WouldBlock)
    );
}

#[tokio::test]
async fn no_datagram_socket_sends_more_than_its_window() {
    let _turn = BURSTS.lock().await;
    let Some(mut t) = dgram_v4(2) else { return };
    if t.lanes(Family::V4) < 2 {
        return;
    }
    // Small windows: 64 replies per socket. A 300-probe send is past both
    // (a caller ignoring send_window): each thread stops at 64, and the
    // calling thread sends the rest at the end.
    for lane in &mut t.v4.as_mut().unwrap().lanes {
        lane.window = 64;
    }
    assert_eq!(t.send_window(), 128);
    let n = 300;
    let (packets, dests) = requests(0..n);
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    let mut report = SendReport::default();
    t.send(Family::V4, &refs, &dests, &mut report).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // The second socket receives only the replies to what it sent.
    let side = t.v4.as_mut().unwrap();
    let lane = &mut side.lanes[1];
    let mut on_second = lane.stash.drain(|_| {});
    let fd = lane.raw_fd();
    std::thread::sleep(Duration::from_millis(50));
    while let Ok(got) = crate::sys::ping_io::recv_batch(fd, &mut lane.recv, |_| {}) {
        on_second += got;
    }
    assert!(on_second <= 64, "{on_second} replies on the second socket");
    let (seen, _) = collect(&mut t, n as usize - on_second).await;
    assert_eq!(seen.len() + on_second, n as usize, "replies lost");
}

#[tokio::test]
async fn a_lane_stops_taking_batches_at_its_cap() {
    let _turn = BURSTS.lock().await;
    let Some(mut t) = dgram_v4(1) else { return };
    let (packets, dests) = requests(0..200);
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    let dests: Vec<_> = dests.iter().map(|&a| Some(dest(a))).collect();
    let chunks = crate::ping::lanes::Chunks::new(200, 64);
    let lane = &mut t.v4.as_mut().unwrap().lanes[0];
    assert!(lane.receives);
    lane.window = 100;
    assert_eq!(lane.cap(), 100);
    let mut out = SendOut::default();
    // 64 sent, under the cap: one more batch; then 128 ≥ 100: stop.
    lane.send_and_read(&refs, &dests, &chunks, lane.cap(), &mut out);
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    // One span per sendmmsg call, covering every packet once.
    let mut covered: Vec<usize> = out.spans.iter().flat_map(|s| s.range.clone()).collect();
    covered.sort_unstable();
    assert_eq!(covered, (0..128).collect::<Vec<_>>());
    assert!(out.spans.iter().all(|s| s.before <= s.after));
    assert_eq!(chunks.next(), Some(128..192));
    let (seen, dups) = collect(&mut t, 128).await;
    assert_eq!(seen, (0..128).collect());
    assert_eq!(dups, 0);
}
