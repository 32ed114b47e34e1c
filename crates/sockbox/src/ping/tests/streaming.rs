//! Send errors, fping's timeout rule, per-probe send times in a burst, and
//! the memory of a long sweep.

use std::net::IpAddr;
use std::time::Duration;

use sockbox_wire::icmp::{ChecksumMode, Family, Packet, Repr};
use tokio::time::Instant;

use super::super::mock::{Host, MockNet};
use super::super::socket::BATCH;
use super::super::*;
use super::{Log, Rec, TOKEN, count_cfg, go, ip, ms, source};
use crate::sys::ping::IcmpKind;

/// A refused send is not sent: no timeout, no "transmitted", the target
/// ends at once, and the per-target and total counters agree.
#[tokio::test(start_paused = true)]
async fn refused_sends_are_send_errors_and_end_the_target_at_once() {
    let refused = Host {
        refuse: Some(std::io::ErrorKind::NetworkUnreachable.into()),
        ..Host::default()
    };
    let mut net = MockNet::new(
        IcmpKind::Dgram,
        [
            (ip("10.0.0.2"), Host::default()),
            (ip("10.255.0.1"), refused),
        ],
    );
    let cfg = PingConfig {
        timeout: ms(500),
        ..count_cfg(3)
    };
    let (out, log) = go(&cfg, vec![ip("10.255.0.1"), ip("10.0.0.2")], &mut net).await;
    let s = log.stats(0);
    assert_eq!(
        (s.sent, s.received, s.timeouts, s.send_errors),
        (0, 0, 0, 3)
    );
    assert_eq!(log.timeouts(), 0);
    let failed: Vec<u64> = log
        .0
        .iter()
        .filter_map(|e| match e {
            Rec::SendFailed { target } => Some(*target),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![0, 0, 0]);
    assert_eq!(out.counters.send_errors, 3);
    assert_eq!(out.totals.sent, 3);
    assert_eq!(log.done(0), Some(false));
    // The failing target never waited for a timeout: the run took the two
    // periods of the other one, plus its last reply.
    assert_eq!(out.elapsed, ms(200));

    // Until-alive: the first refused send ends the target, no retries.
    let cfg = PingConfig {
        mode: Mode::Alive {
            retries: 3,
            backoff: 1.5,
        },
        timeout: ms(500),
        ..count_cfg(1)
    };
    let (out, log) = go(&cfg, vec![ip("10.255.0.1")], &mut net).await;
    assert_eq!(log.stats(0).send_errors, 1);
    assert_eq!(out.elapsed, ms(0));
}

/// Until alive, a send that failed for a passing reason (ENOBUFS)
/// is tried again after its timeout, as an unanswered probe would be, and
/// counts as a send error, not as a timeout; a target whose every try
/// failed that way ends after its last one.
#[tokio::test(start_paused = true)]
async fn passing_send_failures_are_retried_until_alive() {
    let busy = |first| Host {
        refuse: Some(SendFailure::of(&std::io::Error::from_raw_os_error(
            libc::ENOBUFS,
        ))),
        refuse_first: first,
        ..Host::default()
    };
    let mut net = MockNet::new(
        IcmpKind::Dgram,
        [(ip("10.0.0.2"), busy(2)), (ip("10.0.0.3"), busy(0))],
    );
    let cfg = PingConfig {
        mode: Mode::Alive {
            retries: 3,
            backoff: 1.0,
        },
        timeout: ms(500),
        ..count_cfg(1)
    };
    let (out, log) = go(&cfg, vec![ip("10.0.0.2"), ip("10.0.0.3")], &mut net).await;
    // Two refused tries, then the third is answered.
    let s = log.stats(0);
    assert_eq!(
        (s.sent, s.received, s.timeouts, s.send_errors),
        (1, 1, 0, 2),
        "{:?}",
        log.0
    );
    assert_eq!(log.done(0), Some(true));
    // Four tries, all refused: unreachable after the third timeout.
    let s = log.stats(1);
    assert_eq!(
        (s.sent, s.received, s.timeouts, s.send_errors),
        (0, 0, 0, 4),
        "{:?}",
        log.0
    );
    assert_eq!(log.done(1), Some(false));
    assert_eq!(log.timeouts(), 0);
    assert_eq!(out.counters.send_errors, 6);
    assert_eq!(out.elapsed, ms(1500));
}

/// fping's -t 0: a reply that took longer than the timeout is not
/// counted, so nothing is alive.
#[tokio::test(start_paused = true)]
async fn replies_slower_than_the_timeout_do_not_count() {
    let host = Host {
        delay: ms(5),
        ..Host::default()
    };
    let mut net = MockNet::new(IcmpKind::Dgram, [(ip("10.0.0.2"), host)]);
    let cfg = PingConfig {
        mode: Mode::Alive {
            retries: 0,
            backoff: 1.5,
        },
        timeout: ms(0),
        ..count_cfg(1)
    };
    let (out, log) = go(&cfg, vec![ip("10.0.0.2")], &mut net).await;
    assert_eq!(log.done(0), Some(false), "{:?}", log.0);
    assert_eq!(log.stats(0).timeouts, 1, "{:?}", log.0);
    assert_eq!(out.totals.received, 0);
}

/// A transport that says each packet of a burst left at its own time
/// (spans of fake system calls, or kernel stamps), and answers exactly
/// `delay` after that: every RTT must be `delay`, whatever the place in
/// the burst.
struct Stamped {
    kernel: bool,
    delay: Duration,
    queue: Vec<(Instant, IpAddr, Vec<u8>, IncomingKind)>,
    sent: Vec<Instant>,
}

impl Transport for Stamped {
    fn kind(&self, _f: Family) -> Option<IcmpKind> {
        Some(IcmpKind::Dgram)
    }

    fn send_window(&self) -> usize {
        4096
    }

    fn send(
        &mut self,
        _family: Family,
        packets: &[&[u8]],
        dests: &[IpAddr],
        report: &mut SendReport,
    ) -> std::io::Result<()> {
        let base = Instant::now();
        // 64 packets per call, 10 µs a packet.
        for (c, chunk) in (0..packets.len())
            .collect::<Vec<_>>()
            .chunks(64)
            .enumerate()
        {
            let before = base + Duration::from_micros(640 * c as u64);
            let after = before + Duration::from_micros(10 * chunk.len() as u64);
            let range = chunk[0]..chunk[0] + chunk.len();
            if !self.kernel {
                report.spans.push(SendSpan {
                    range: range.clone(),
                    before,
                    after,
                });
            }
            for i in range {
                let left = before + Duration::from_micros(10 * (i - chunk[0]) as u64 + 5);
                self.sent.push(left);
                let p = Packet::new_checked(packets[i]).unwrap();
                let reply = Repr::EchoReply {
                    ident: 0,
                    seq_no: 0,
                    data: p.payload(),
                };
                let mut buf = vec![0u8; reply.buffer_len()];
                reply.emit(
                    &mut Packet::new_unchecked(&mut buf[..]),
                    Family::V4,
                    &ChecksumMode::V4,
                );
                if self.kernel {
                    // The stamp carries the request behind a fake 14+20
                    // byte header, as the error queue does.
                    let mut stamped = vec![0u8; 34];
                    stamped.extend_from_slice(packets[i]);
                    self.queue
                        .push((left, dests[i], stamped, IncomingKind::SendStamp));
                }
                self.queue
                    .push((left + self.delay, dests[i], buf, IncomingKind::Packet));
            }
        }
        Ok(())
    }

    fn recv(&mut self, family: Family, f: &mut dyn FnMut(&Incoming<'_>)) -> std::io::Result<usize> {
        let now = Instant::now();
        let mut n = 0;
        self.queue.sort_by_key(|e| e.0);
        while let Some(e) = self.queue.first() {
            // Stamps are read as soon as they exist (they are queued by
            // the time the call returns); replies when due.
            if e.0 > now && e.3 == IncomingKind::Packet {
                break;
            }
            let (at, from, bytes, kind) = self.queue.remove(0);
            f(&Incoming {
                family,
                from,
                bytes: &bytes,
                ip_header: false,
                ttl: None,
                at,
                verify_checksum: false,
                kind,
            });
            n += 1;
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    async fn readable(&self) -> std::io::Result<()> {
        match self.queue.iter().map(|e| e.0).min() {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_reports_each_probe_s_own_rtt() {
    for kernel in [false, true] {
        let mut t = Stamped {
            kernel,
            delay: ms(20),
            queue: Vec::new(),
            sent: Vec::new(),
        };
        let addrs: Vec<IpAddr> = (1..=1000u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let cfg = PingConfig {
            mode: Mode::Alive {
                retries: 0,
                backoff: 1.5,
            },
            timeout: ms(500),
            ..count_cfg(1)
        };
        let mut log = Log::default();
        let out = run_with_token(
            &cfg,
            &mut source(addrs),
            &mut t,
            &Shutdown::new(),
            &mut log,
            TOKEN,
        )
        .await
        .unwrap();
        assert_eq!(out.totals.received, 1000, "kernel {kernel}");
        // The last packet left 10 ms after the first: a single send time
        // for the burst would show up to 30 ms.
        let spread = *t.sent.last().unwrap() - t.sent[0];
        assert!(spread > ms(9), "{spread:?}");
        let replies = log.replies();
        let targets: std::collections::HashSet<u64> = replies.iter().map(|r| r.target).collect();
        assert_eq!(targets.len(), 1000);
        for r in &replies {
            let err = r.rtt.abs_diff(ms(20));
            // Span times are the middle of each packet's share: exact here.
            assert!(
                err <= Duration::from_micros(1),
                "kernel {kernel}: {:?}",
                r.rtt
            );
        }
    }
}

/// A sweep of many targets holds only what is in flight: the active set
/// and the ring stay small however many targets pass through.
#[tokio::test(start_paused = true)]
async fn a_long_sweep_keeps_only_what_is_in_flight() {
    let n = 200_000u32;
    let mut net = MockNet::answering(IcmpKind::Dgram, ms(1));
    let cfg = PingConfig {
        mode: Mode::Alive {
            retries: 0,
            backoff: 1.5,
        },
        timeout: ms(100),
        max_in_flight: 4096,
        max_active: 4096,
        ..count_cfg(1)
    };
    let addrs =
        (0..n).map(|i| Target::addr(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i))));
    let mut src = IterSource(addrs);
    let mut alive = 0u64;
    let mut obs = |ev: &Event<'_>| {
        if let Event::Done { alive: true, .. } = ev {
            alive += 1;
        }
    };
    let out = run_with_token(&cfg, &mut src, &mut net, &Shutdown::new(), &mut obs, TOKEN)
        .await
        .unwrap();
    assert_eq!(alive, u64::from(n));
    assert_eq!(out.totals.targets, u64::from(n));
    assert!(out.totals.peak_active <= 4096, "{:?}", out.totals);
    assert!(out.ring_capacity <= 4096, "{}", out.ring_capacity);
    assert!(out.totals.peak_active >= BATCH as u64);
}

/// A stop that settles (a prober reloading): nothing is sent after it, but
/// the probes already in flight are answered or time out before the run
/// returns, so every probe sent is counted; without settling the run
/// returns at once and leaves them uncounted.
#[tokio::test(start_paused = true)]
async fn a_settling_stop_counts_every_probe_in_flight() {
    let slow = Host {
        delay: ms(150),
        ..Host::default()
    };
    let hosts = [
        (ip("10.0.0.2"), slow),
        (
            ip("10.0.0.3"),
            Host {
                dead: true,
                ..Host::default()
            },
        ),
    ];
    // (settle for at most, elapsed when the run returns)
    for (settle, ends) in [(Some(10_000), 700), (Some(300), 530), (None, 230)] {
        let mut net = MockNet::new(IcmpKind::Dgram, hosts.clone());
        let cfg = PingConfig {
            mode: Mode::Forever,
            timeout: ms(500),
            settle_on_stop: settle.map(ms),
            ..count_cfg(0)
        };
        let sd = crate::shutdown::Shutdown::new();
        let stopper = sd.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ms(230)).await;
            stopper.trigger();
        });
        let mut log = Log::default();
        let mut src = source(vec![ip("10.0.0.2"), ip("10.0.0.3")]);
        let out = super::super::run_with_token(&cfg, &mut src, &mut net, &sd, &mut log, TOKEN)
            .await
            .unwrap();
        assert_eq!(out.ending, Ending::Interrupted);
        let (a, b) = (log.stats(0), log.stats(1));
        // Rounds at 0, 100 and 200 ms went out to both before the stop.
        assert_eq!((a.sent, b.sent), (3, 3), "{:?}", log.0);
        assert_eq!(out.elapsed, ms(ends));
        match settle {
            // The last probe to the silent host timed out at 700 ms.
            Some(10_000) => {
                assert_eq!((a.received, a.timeouts), (3, 0), "{:?}", log.0);
                assert_eq!((b.received, b.timeouts), (0, 3), "{:?}", log.0);
                assert_eq!(out.totals.sent, out.totals.received + out.totals.timeouts);
            }
            // Cut at 530 ms: the answers (250, 350 ms) are in, the silent
            // host's probes (due to time out from 500 ms) partly.
            Some(_) => {
                assert_eq!((a.received, a.timeouts), (3, 0), "{:?}", log.0);
                assert_eq!((b.received, b.timeouts), (0, 1), "{:?}", log.0);
            }
            None => assert_eq!((a.received, b.timeouts), (1, 0), "{:?}", log.0),
        }
    }
}

/// fping -l with a period shorter than a turn over all targets (-p 5ms,
/// -i 10ms, three targets): the targets take turns; the first one used to
/// take every turn while the others were never probed.
#[tokio::test(start_paused = true)]
async fn rounds_take_turns_when_the_period_is_shorter_than_a_turn() {
    let mut net = MockNet::new(
        IcmpKind::Dgram,
        [
            (ip("10.0.0.1"), Host::default()),
            (ip("10.0.0.2"), Host::default()),
            (ip("10.0.0.3"), Host::default()),
        ],
    );
    let cfg = PingConfig {
        mode: Mode::Forever,
        interval: ms(10),
        period: ms(5),
        deadline: Some(ms(300)),
        ..count_cfg(0)
    };
    let (_, log) = go(
        &cfg,
        vec![ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")],
        &mut net,
    )
    .await;
    let sent: Vec<u32> = (0..3).map(|t| log.stats(t).sent).collect();
    assert!(sent.iter().all(|&n| (9..=11).contains(&n)), "{sent:?}");
}
