//! Driver and engine tests against the in-memory network, in paused tokio
//! time: exact timings, no sockets, no root.
#![allow(clippy::unwrap_used, clippy::float_cmp)]

use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Message, Packet, Repr};
use tokio::time::Instant;

use super::mock::{Host, MockNet};
use super::*;
use crate::sys::ping::IcmpKind;

const TOKEN: u64 = 0x5eed_5eed_5eed_5eed;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[derive(Debug, Clone, Copy)]
struct OwnedReply {
    target: u64,
    round: u32,
    bytes: usize,
    rtt: Duration,
    duplicate: bool,
}

#[derive(Debug, Clone)]
enum Rec {
    Reply(OwnedReply),
    Timeout {
        target: u64,
    },
    Error {
        round: u32,
        message: Message,
        from: IpAddr,
    },
    SendFailed {
        target: u64,
    },
    Late {
        target: u64,
        round: u32,
        rtt: Duration,
    },
    Done {
        target: u64,
        alive: bool,
        stats: TargetStats,
    },
    Unresolved,
}

#[derive(Default)]
struct Log(Vec<Rec>);

impl Observer for Log {
    fn event(&mut self, ev: &Event<'_>) {
        let rec = match ev {
            Event::Reply(r) => Rec::Reply(OwnedReply {
                target: r.target.index,
                round: r.round,
                bytes: r.bytes,
                rtt: r.rtt,
                duplicate: r.duplicate,
            }),
            Event::Timeout { target, .. } => Rec::Timeout {
                target: target.index,
            },
            Event::Error(e) => Rec::Error {
                round: e.round,
                message: e.message,
                from: e.from,
            },
            Event::SendFailed { target, .. } => Rec::SendFailed {
                target: target.index,
            },
            Event::Late { target, round, rtt } => Rec::Late {
                target: target.index,
                round: *round,
                rtt: *rtt,
            },
            Event::Done {
                target,
                alive,
                stats,
            } => Rec::Done {
                target: target.index,
                alive: *alive,
                stats: **stats,
            },
            Event::Unresolved { .. } => Rec::Unresolved,
        };
        self.0.push(rec);
    }
}

impl Log {
    fn replies(&self) -> Vec<OwnedReply> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Rec::Reply(r) => Some(*r),
                _ => None,
            })
            .collect()
    }
    fn timeouts(&self) -> usize {
        self.0
            .iter()
            .filter(|e| matches!(e, Rec::Timeout { .. }))
            .count()
    }
    fn done(&self, target: u64) -> Option<bool> {
        self.0.iter().find_map(|e| match e {
            Rec::Done {
                target: t, alive, ..
            } if *t == target => Some(*alive),
            _ => None,
        })
    }
    /// The final statistics of `target` (from its Done event).
    fn stats(&self, target: u64) -> TargetStats {
        self.0
            .iter()
            .find_map(|e| match e {
                Rec::Done {
                    target: t, stats, ..
                } if *t == target => Some(*stats),
                _ => None,
            })
            .unwrap_or_else(|| panic!("target {target} never finished"))
    }
    /// Every finished target's statistics, by index.
    fn all_stats(&self) -> Vec<TargetStats> {
        let mut done: Vec<(u64, TargetStats)> = self
            .0
            .iter()
            .filter_map(|e| match e {
                Rec::Done { target, stats, .. } => Some((*target, *stats)),
                _ => None,
            })
            .collect();
        done.sort_by_key(|d| d.0);
        done.into_iter().map(|d| d.1).collect()
    }
}

fn count_cfg(n: u32) -> PingConfig {
    PingConfig {
        mode: Mode::Count(n),
        interval: ms(0),
        period: ms(100),
        timeout: ms(50),
        payload_len: 56,
        ..PingConfig::default()
    }
}

fn source(addrs: Vec<IpAddr>) -> IterSource<impl Iterator<Item = Target>> {
    IterSource(addrs.into_iter().map(Target::addr))
}

async fn go(cfg: &PingConfig, addrs: Vec<IpAddr>, net: &mut MockNet) -> (Outcome, Log) {
    let mut log = Log::default();
    let out = run_with_token(
        cfg,
        &mut source(addrs),
        net,
        &Shutdown::new(),
        &mut log,
        TOKEN,
    )
    .await
    .unwrap();
    (out, log)
}

#[tokio::test(start_paused = true)]
async fn counts_and_exact_rtts() {
    for kind in [IcmpKind::Raw, IcmpKind::Dgram] {
        let hosts = [
            (
                ip("10.0.0.2"),
                Host {
                    delay: ms(10),
                    ..Host::default()
                },
            ),
            (
                ip("2001:db8::2"),
                Host {
                    delay: ms(20),
                    ..Host::default()
                },
            ),
        ];
        let mut net = MockNet::new(kind, hosts);
        let (out, log) = go(
            &count_cfg(3),
            vec![ip("10.0.0.2"), ip("2001:db8::2")],
            &mut net,
        )
        .await;
        assert_eq!(out.ending, Ending::Complete);
        for (i, want) in [(0usize, 10u64), (1, 20)] {
            let s = log.stats(i as u64);
            assert_eq!((s.sent, s.received, s.duplicates), (3, 3, 0), "{kind:?}");
            assert_eq!(s.rtt.min().unwrap(), ms(want));
            assert_eq!(s.rtt.max().unwrap(), ms(want));
        }
        assert_eq!(out.counters, Counters::default());
        assert_eq!(log.replies().len(), 6);
        assert_eq!(log.done(0), Some(true));
        // 3 rounds, 100 ms apart, the last answered after 20 ms.
        assert_eq!(out.elapsed, ms(220));
        assert_eq!(log.replies()[0].bytes, 64);
    }
}

#[tokio::test(start_paused = true)]
async fn loss_gives_timeouts_and_loss_percent() {
    let host = Host {
        delay: ms(5),
        drop: vec![1, 3],
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), host)]);
    let (_, log) = go(&count_cfg(4), vec![ip("10.0.0.2")], &mut net).await;
    let s = log.stats(0);
    assert_eq!((s.sent, s.received), (4, 2));
    assert_eq!(s.loss_percent(), 50.0);
    assert_eq!(log.timeouts(), 2);
    let rounds: Vec<u32> = log.replies().iter().map(|r| r.round).collect();
    assert_eq!(rounds, vec![0, 2]);
}

#[tokio::test(start_paused = true)]
async fn duplicates_are_flagged_not_counted() {
    let host = Host {
        delay: ms(5),
        duplicate: true,
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Raw, [(ip("10.0.0.2"), host)]);
    // The last reply's copy arrives after the run is over: 2 of 3 seen.
    let (out, log) = go(&count_cfg(3), vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(log.stats(0).received, 3);
    assert_eq!(log.stats(0).duplicates, 2);
    assert_eq!(out.counters.duplicates, 2);
    assert_eq!(log.replies().iter().filter(|r| r.duplicate).count(), 2);
}

#[tokio::test(start_paused = true)]
async fn bad_checksums_are_counted_and_never_replies() {
    let host = Host {
        delay: ms(5),
        bad_checksum: true,
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Raw, [(ip("10.0.0.2"), host)]);
    let (out, log) = go(&count_cfg(3), vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(log.stats(0).received, 0);
    assert_eq!(out.counters.bad_checksum, 3);
    assert!(log.replies().is_empty());
    assert_eq!(log.done(0), Some(false));
}

#[tokio::test(start_paused = true)]
async fn corrupt_data_and_wrong_source_are_not_replies() {
    let corrupt = Host {
        delay: ms(5),
        corrupt: true,
        ..Host::default()
    };
    let other = Host {
        delay: ms(5),
        reply_from: Some(ip("10.0.0.99")),
        ..Host::default()
    };
    let mut net = MockNet::new(
        IcmpKind::Raw,
        [(ip("10.0.0.2"), corrupt), (ip("10.0.0.3"), other)],
    );
    let (out, log) = go(
        &count_cfg(1),
        vec![ip("10.0.0.2"), ip("10.0.0.3")],
        &mut net,
    )
    .await;
    assert_eq!(out.counters.corrupt, 1);
    assert_eq!(out.counters.foreign, 1);
    assert_eq!(log.stats(0).received + log.stats(1).received, 0);
}

fn reply_bytes(token: u64, seq: u32) -> Vec<u8> {
    let mut data = vec![0u8; 56];
    probe::write(&mut data, token, seq);
    let r = Repr::EchoReply {
        ident: 1,
        seq_no: 1,
        data: &data,
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(
        &mut Packet::new_unchecked(&mut buf[..]),
        Family::V4,
        &ChecksumMode::V4,
    );
    buf
}

#[tokio::test(start_paused = true)]
async fn foreign_replies_are_counted_apart() {
    let host = Host {
        delay: ms(30),
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), host)]);
    let t = Instant::now() + ms(10);
    // Another process's reply, a sequence we never sent, a short packet.
    net.inject(t, ip("10.0.0.2"), reply_bytes(TOKEN ^ 1, 0));
    net.inject(t, ip("10.0.0.2"), reply_bytes(TOKEN, 5));
    net.inject(t, ip("10.0.0.2"), vec![0, 0, 0]);
    let (out, log) = go(&count_cfg(1), vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(out.counters.foreign, 2);
    assert_eq!(out.counters.malformed, 1);
    assert_eq!(log.stats(0).received, 1);
    assert_eq!(log.replies()[0].rtt, ms(30));
}

#[tokio::test(start_paused = true)]
async fn late_replies_after_the_timeout() {
    let host = Host {
        delay: ms(70),
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), host)]);
    let cfg = PingConfig {
        timeout: ms(50),
        ..count_cfg(3)
    };
    let (out, log) = go(&cfg, vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(log.stats(0).received, 0);
    assert_eq!(log.timeouts(), 3);
    // The last probe's reply arrives after the run ended; two are seen late.
    assert_eq!(out.counters.late, 2);
    // Each late reply is reported for its target (what a prober counts
    // per target), and counted in the target's statistics.
    let late: Vec<(u64, u32, Duration)> = log
        .0
        .iter()
        .filter_map(|e| match e {
            Rec::Late { target, round, rtt } => Some((*target, *round, *rtt)),
            _ => None,
        })
        .collect();
    assert_eq!(late, vec![(0, 0, ms(70)), (0, 1, ms(70))]);
    assert_eq!(log.stats(0).late, 2);
}

#[tokio::test(start_paused = true)]
async fn alive_mode_retries_with_backoff() {
    let slow = Host {
        delay: ms(10),
        drop: vec![0, 1],
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Raw, [(ip("10.0.0.2"), slow)]);
    let cfg = PingConfig {
        mode: Mode::Alive {
            retries: 3,
            backoff: 1.5,
        },
        interval: ms(0),
        timeout: ms(100),
        ..PingConfig::default()
    };
    let (out, log) = go(&cfg, vec![ip("10.0.0.2"), ip("10.0.0.9")], &mut net).await;
    assert_eq!(log.stats(0).sent, 3);
    assert_eq!(log.done(0), Some(true));
    // The dead one: 4 probes, timeouts 100, 150, 225, 337.5 ms.
    assert_eq!(log.stats(1).sent, 4);
    assert_eq!(log.done(1), Some(false));
    // (tokio timers have millisecond resolution)
    let us = out.elapsed.as_micros();
    assert!((812_500..=813_500).contains(&us), "{us}");
    assert_eq!(net.sent(), 7);
}

#[tokio::test(start_paused = true)]
async fn interval_paces_all_targets() {
    let hosts: Vec<(IpAddr, Host)> = (1..=10)
        .map(|i| (ip(&format!("10.0.1.{i}")), Host::default()))
        .collect();
    let addrs: Vec<IpAddr> = hosts.iter().map(|h| h.0).collect();
    let mut net = MockNet::new(IcmpKind::Dgram, hosts);
    let cfg = PingConfig {
        interval: ms(10),
        ..count_cfg(1)
    };
    let (out, log) = go(&cfg, addrs, &mut net).await;
    assert!(log.all_stats().iter().all(|s| s.received == 1));
    // Ten probes 10 ms apart: the last goes out at 90 ms.
    assert_eq!(out.elapsed, ms(90));
}

#[tokio::test(start_paused = true)]
async fn icmp_errors_are_matched_to_the_probe() {
    let host = Host {
        delay: ms(3),
        unreachable_from: Some(ip("10.0.0.1")),
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Raw, [(ip("10.0.7.7"), host)]);
    let (out, log) = go(&count_cfg(2), vec![ip("10.0.7.7")], &mut net).await;
    assert_eq!(out.counters.errors, 2);
    assert_eq!(log.stats(0).errors, 2);
    let err = log
        .0
        .iter()
        .find_map(|e| match e {
            Rec::Error {
                round,
                message,
                from,
            } => Some((*round, *message, *from)),
            _ => None,
        })
        .unwrap();
    assert_eq!(err, (0, Message::DstUnreachable, ip("10.0.0.1")));
}

#[tokio::test(start_paused = true)]
async fn many_targets_never_collide() {
    let n = 20_000u32;
    let hosts: Vec<(IpAddr, Host)> = (0..n)
        .map(|i| {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            (
                a,
                Host {
                    delay: ms(u64::from(i % 7)),
                    ..Host::default()
                },
            )
        })
        .collect();
    let addrs: Vec<IpAddr> = hosts.iter().map(|h| h.0).collect();
    let mut net = MockNet::new(IcmpKind::Dgram, hosts);
    let (out, log) = go(&count_cfg(2), addrs, &mut net).await;
    assert!(
        log.all_stats()
            .iter()
            .all(|s| s.received == 2 && s.duplicates == 0)
    );
    assert_eq!(out.counters, Counters::default());
    assert_eq!(log.replies().len(), 2 * n as usize);
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_deadline_stop_with_stats_so_far() {
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), Host::default())]);
    let cfg = PingConfig {
        mode: Mode::Forever,
        deadline: Some(ms(450)),
        ..count_cfg(0)
    };
    let (out, log) = go(&cfg, vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(out.ending, Ending::Deadline);
    assert_eq!(log.stats(0).sent, 5);
    assert_eq!(log.stats(0).received, 5);

    let sd = Shutdown::new();
    let sd2 = sd.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(250)).await;
        sd2.trigger();
    });
    let cfg = PingConfig {
        mode: Mode::Forever,
        ..count_cfg(0)
    };
    let mut log = Log::default();
    let mut src = source(vec![ip("10.0.0.2")]);
    let out = run_with_token(&cfg, &mut src, &mut net, &sd, &mut log, TOKEN)
        .await
        .unwrap();
    assert_eq!(out.ending, Ending::Interrupted);
    assert_eq!(log.stats(0).sent, 3);
}

#[tokio::test(start_paused = true)]
async fn seeded_loss_is_reported_close_to_the_rate() {
    let host = Host {
        delay: ms(20),
        loss: 0.3,
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), host)]);
    let cfg = PingConfig {
        period: ms(10),
        timeout: ms(100),
        ..count_cfg(1000)
    };
    let (_, log) = go(&cfg, vec![ip("10.0.0.2")], &mut net).await;
    let loss = log.stats(0).loss_percent();
    assert!((25.0..35.0).contains(&loss), "{loss}");
    assert_eq!(log.stats(0).rtt.avg().unwrap(), ms(20));
}

#[tokio::test(start_paused = true)]
async fn wait_until_up_returns_the_first_rtt_or_none() {
    let late_riser = Host {
        delay: ms(4),
        drop: vec![0, 1, 2],
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), late_riser)]);
    let cfg = WaitConfig {
        interval: ms(1000),
        timeout: ms(10_000),
        ..WaitConfig::default()
    };
    let t0 = Instant::now();
    let rtt = wait_on(ip("10.0.0.2"), &cfg, &mut net, &Shutdown::new())
        .await
        .unwrap();
    assert_eq!(rtt, Some(ms(4)));
    assert_eq!(t0.elapsed(), ms(3004));

    let t0 = Instant::now();
    let none = wait_on(ip("10.0.0.3"), &cfg, &mut net, &Shutdown::new())
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(t0.elapsed(), ms(10_000));
}

/// Regression: `wake --wait=500000000y` overflowed `Instant + timeout` and
/// the probe count inside `wait_on`.
#[tokio::test(start_paused = true)]
async fn wait_with_an_enormous_timeout_does_not_panic() {
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), Host::default())]);
    let cfg = WaitConfig {
        interval: ms(1),
        timeout: Duration::from_secs(u64::MAX / 4),
        ..WaitConfig::default()
    };
    let rtt = wait_on(ip("10.0.0.2"), &cfg, &mut net, &Shutdown::new())
        .await
        .unwrap();
    assert!(rtt.is_some());
}

#[test]
fn config_errors() {
    let start = Instant::now();
    let cfg = |mode, payload_len| EngineConfig {
        mode,
        interval: ms(0),
        period: ms(0),
        timeout: ms(10),
        payload_len,
        token: 1,
        max_in_flight: 16,
        max_active: 16,
        random_payload: false,
    };
    assert!(matches!(
        engine::Engine::new(cfg(Mode::Count(1), 8), start),
        Err(ConfigError::PayloadTooSmall(8))
    ));
    assert!(matches!(
        engine::Engine::new(cfg(Mode::Count(2), 56), start),
        Err(ConfigError::ZeroPeriod)
    ));
    let alive = Mode::Alive {
        retries: 64,
        backoff: 1.5,
    };
    assert!(engine::Engine::new(cfg(alive, 56), start).is_err());
    assert!(engine::Engine::new(cfg(Mode::Count(1), 12), start).is_ok());
}

/// A round sent late does not push the later ones back: the next is due a
/// period after this one was due; rounds missed by more than a period are
/// skipped, not sent in a burst. (A prober probing every second on a busy
/// machine sent up to 9% fewer probes when each round was due a period
/// after the last one went out.)
#[test]
fn late_rounds_do_not_stretch_the_period() {
    let start = Instant::now();
    let cfg = EngineConfig {
        mode: Mode::Forever,
        interval: ms(0),
        period: ms(1000),
        timeout: ms(500),
        payload_len: 56,
        token: 1,
        max_in_flight: 16,
        max_active: 16,
        random_payload: false,
    };
    let mut e = engine::Engine::new(cfg, start).unwrap();
    e.admit(Target::addr(ip("127.0.0.1")));
    let mut quiet = |_: &Event<'_>| {};
    assert!(e.poll_send(start).is_some());
    // Round 2 goes out 50 ms late; round 3 is still due at 2 s.
    let late = start + ms(1050);
    e.poll_timeouts(late, &mut quiet);
    assert!(e.poll_send(late).is_some());
    assert_eq!(e.next_wakeup(), Some(start + ms(1550)), "the timeout first");
    e.poll_timeouts(start + ms(1600), &mut quiet);
    assert_eq!(e.next_wakeup(), Some(start + ms(2000)));
    // Woken 3.5 s late: one probe, then the next whole second.
    let very_late = start + ms(5500);
    assert!(e.poll_send(very_late).is_some());
    assert!(
        e.poll_send(very_late).is_none(),
        "no burst of missed rounds"
    );
    e.poll_timeouts(start + ms(6000) - ms(1), &mut quiet);
    assert_eq!(e.next_wakeup(), Some(start + ms(6000)));
}

/// Whatever the network does (loss, duplicates, replies before and after
/// the timeout), every probe ends exactly once: answered or timed out.
#[tokio::test(start_paused = true)]
async fn every_probe_is_answered_or_timed_out_exactly_once() {
    for seed in 0..12u64 {
        let hosts: Vec<(IpAddr, Host)> = (0..4u64)
            .map(|i| {
                let h = Host {
                    delay: ms((seed * 7 + i * 13) % 90),
                    loss: 0.05 * (i as f64 + 1.0),
                    duplicate: (seed + i) % 3 == 0,
                    ..Host::default()
                };
                (ip(&format!("10.9.{seed}.{i}")), h)
            })
            .collect();
        let addrs: Vec<IpAddr> = hosts.iter().map(|h| h.0).collect();
        let mut net = MockNet::new(IcmpKind::Raw, hosts);
        let cfg = PingConfig {
            period: ms(20),
            timeout: ms(60),
            ..count_cfg(40)
        };
        let (_, log) = go(&cfg, addrs, &mut net).await;
        for (i, s) in log.all_stats().iter().enumerate() {
            let timeouts = log
                .0
                .iter()
                .filter(|e| matches!(e, Rec::Timeout { target } if *target as usize == i))
                .count() as u32;
            assert_eq!(timeouts, s.timeouts, "seed {seed} target {i}");
            assert_eq!(s.sent, 40, "seed {seed} target {i}");
            assert_eq!(
                s.received + timeouts,
                s.sent,
                "seed {seed} target {i}: {s:?}"
            );
            assert!(s.rtt.max().is_none_or(|m| m <= ms(60)), "seed {seed}");
        }
    }
}

mod streaming;
