//! Unit tests of the queue and its slow-reader rules.
#![allow(clippy::unwrap_used)]

use super::*;

fn drain(o: &Outbox) -> Vec<u8> {
    match o.take() {
        Take::Data(mut b) => {
            let mut v = vec![0; b.remaining()];
            b.copy_to_slice(&mut v);
            o.sent(v.len());
            v
        }
        other => panic!("expected data, got {other:?}"),
    }
}

fn rules(soft: usize, lag_ms: u64, ceiling: usize) -> Limits {
    Limits {
        soft,
        max_lag: Duration::from_millis(lag_ms),
        ceiling,
    }
}

#[test]
fn order_is_kept_across_small_and_large() {
    let o = Outbox::new(Limits::hard(1 << 20));
    let big = Bytes::from(vec![b'x'; 600]);
    o.push(&Bytes::from_static(b"a\n"));
    o.push(&big);
    o.push(&Bytes::from_static(b"b\n"));
    let got = drain(&o);
    assert_eq!(&got[..2], b"a\n");
    assert_eq!(&got[2..602], &big[..]);
    assert_eq!(&got[602..], b"b\n");
    assert!(matches!(o.take(), Take::Empty));
}

#[test]
fn ceiling_refuses_and_kick_drops_queue() {
    let o = Outbox::new(Limits::hard(1000));
    let msg = Bytes::from(vec![b'y'; 400]);
    assert_eq!(o.push(&msg), Push::Queued);
    assert_eq!(o.push(&msg), Push::Queued);
    assert_eq!(o.push(&msg), Push::Full(Slow::Ceiling { max: 1000 }));
    assert_eq!(o.backlog(), 800);
    assert!(o.close(Close::Kick("slow".into())));
    assert_eq!(o.backlog(), 0);
    assert_eq!(o.push(&msg), Push::Closed);
    assert!(matches!(o.take(), Take::Closed(Close::Kick(r)) if r == "slow"));
}

/// What the writer took but has not written still counts: taking the
/// queue does not make room for another ceiling's worth.
#[test]
fn bytes_being_written_count_until_sent() {
    let o = Outbox::new(Limits::hard(1000));
    let msg = Bytes::from(vec![b'y'; 400]);
    o.push(&msg);
    o.push(&msg);
    let Take::Data(batch) = o.take() else {
        panic!("no data")
    };
    assert_eq!(o.backlog(), 800);
    assert_eq!(o.push(&msg), Push::Full(Slow::Ceiling { max: 1000 }));
    o.sent(batch.remaining());
    assert_eq!(o.push(&msg), Push::Queued);
}

#[test]
fn flush_close_drains_first() {
    let o = Outbox::new(Limits::hard(1000));
    o.push(&Bytes::from_static(b"last\n"));
    o.close(Close::Flush);
    assert!(!o.close(Close::Flush));
    assert_eq!(drain(&o), b"last\n");
    assert!(matches!(o.take(), Take::Closed(Close::Flush)));
}

/// Regression (shutdown with backlogged readers): the shutdown notice was
/// refused by a full queue and the reader kicked instead; now the last line
/// goes after everything queued, whatever the limits.
#[test]
fn goodbye_line_goes_after_a_full_queue() {
    let o = Outbox::new(Limits::hard(1000));
    let msg = Bytes::from(vec![b'y'; 900]);
    o.push(&msg);
    assert!(matches!(o.push(&msg), Push::Full(_)));
    o.close_with(Close::Flush, Some(&Bytes::from_static(b"bye\n")));
    let got = drain(&o);
    assert_eq!(got.len(), 904);
    assert!(got.ends_with(b"ybye\n"));
    assert!(matches!(o.take(), Take::Closed(Close::Flush)));
}

/// A burst far above the soft limit is fine while it lasts less than the
/// allowed lag; staying above it longer disconnects, naming that rule.
#[tokio::test(start_paused = true)]
async fn a_burst_is_tolerated_and_sustained_lag_is_not() {
    let o = Outbox::new(rules(1000, 2000, 100_000));
    let msg = Bytes::from(vec![b'z'; 500]);
    for _ in 0..20 {
        assert_eq!(o.push(&msg), Push::Queued);
    }
    assert!(o.lag_deadline().is_some());
    // The reader catches up within the allowance: the clock resets.
    tokio::time::advance(Duration::from_millis(1500)).await;
    drain(&o);
    assert!(o.lag_deadline().is_none());
    for _ in 0..20 {
        assert_eq!(o.push(&msg), Push::Queued);
    }
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(o.check_lag(), None);
    assert_eq!(o.push(&msg), Push::Queued);
    tokio::time::advance(Duration::from_millis(600)).await;
    let lag = Slow::Lag {
        soft: 1000,
        lag: Duration::from_secs(2),
    };
    assert_eq!(o.check_lag(), Some(lag));
    assert_eq!(o.push(&msg), Push::Full(lag));
    // Closed for a flush (the client left, or shutdown): the lag rule no
    // longer applies; the stall rule does, from the close.
    o.close(Close::Flush);
    assert_eq!(o.check_lag(), None);
    assert_eq!(
        o.lag_deadline(),
        Some(Instant::now() + Duration::from_secs(2))
    );
    assert_eq!(
        lag.to_string(),
        "more than 1000 bytes waiting to be sent for over 2s"
    );
    assert_eq!(
        Slow::Ceiling { max: 32 << 20 }.to_string(),
        "32 MiB waiting to be sent, the most one client may have"
    );
}

#[test]
fn batch_advances_over_parts() {
    let mut b = Batch::new(VecDeque::from([
        Bytes::from_static(b"abc"),
        Bytes::from_static(b"de"),
    ]));
    let mut io = [IoSlice::new(&[]); 4];
    assert_eq!(b.chunks_vectored(&mut io), 2);
    b.advance(4);
    assert_eq!(b.remaining(), 1);
    assert_eq!(b.chunk(), b"e");
    b.advance(1);
    assert_eq!(b.remaining(), 0);
}

#[tokio::test]
async fn push_before_wait_is_not_missed() {
    let o = Outbox::new(Limits::hard(1000));
    o.push(&Bytes::from_static(b"x"));
    tokio::time::timeout(std::time::Duration::from_secs(1), o.notified())
        .await
        .unwrap();
}

/// Once closed for flushing, a client that takes nothing for the allowed
/// lag (at least MIN_STALL) is let go; taking something restarts the wait.
#[tokio::test(start_paused = true)]
async fn a_closed_queue_whose_client_takes_nothing_stalls() {
    let o = Outbox::new(rules(1 << 20, 3000, 8 << 20));
    o.push(&Bytes::from(vec![b'x'; 4096]));
    assert!(o.close(Close::Flush));
    let Take::Data(batch) = o.take() else {
        panic!("data expected");
    };
    let t0 = Instant::now();
    assert_eq!(o.lag_deadline(), Some(t0 + Duration::from_secs(3)));
    tokio::time::advance(Duration::from_millis(2500)).await;
    assert_eq!(o.check_lag(), None);
    // Some progress: the wait starts again.
    o.sent(100);
    tokio::time::advance(Duration::from_millis(2500)).await;
    assert_eq!(o.check_lag(), None);
    tokio::time::advance(Duration::from_millis(600)).await;
    assert_eq!(
        o.check_lag(),
        Some(Slow::Stalled {
            after: Duration::from_secs(3)
        })
    );
    assert_eq!(
        Slow::Stalled {
            after: Duration::from_secs(3)
        }
        .to_string(),
        "took none of its last lines for 3s"
    );
    drop(batch);
    // A queue closed with nothing left has no stall rule; a tiny allowed
    // lag is raised to MIN_STALL.
    let empty = Outbox::new(rules(1 << 20, 0, 8 << 20));
    empty.close(Close::Flush);
    assert_eq!(empty.lag_deadline(), None);
    let tiny = Outbox::new(rules(1 << 20, 0, 8 << 20));
    tiny.push(&Bytes::from_static(b"a\n"));
    tiny.close(Close::Flush);
    assert_eq!(tiny.lag_deadline(), Some(Instant::now() + MIN_STALL));
}
