//! When to pause between two reads of a streaming input so that the next
//! read moves a large batch. Pure: no I/O, the clock is passed in.
//!
//! A producer such as `head -c 4G /dev/zero` writes 4 KiB per `write(2)`.
//! A relay that wakes for every write moves 4 KiB per `splice(2)`, and with
//! `TCP_NODELAY` every splice becomes one small TCP segment that wakes the
//! receiver too: the per-call and per-segment costs then dominate. Pausing a
//! few tens of microseconds lets the pipe (or socket) fill, and the next call
//! moves hundreds of KiB in large segments.
//!
//! The pause only happens while the input is *streaming one way*: several
//! small transfers each following the previous one (or the end of our own
//! pause) within [`Pacer::GAP`], with nothing moved in the other direction
//! in between. Request/response traffic never qualifies, however fast the
//! peer answers: between two requests the answer to the first one came
//! back, so the other direction moved, and the streak starts over. (An
//! earlier rule relied on a round trip taking longer than `GAP`; on a host
//! where one takes 11 µs that paused every request by 100 µs.) A transfer
//! that already moved a large batch is not followed by a pause either (the
//! input is ahead of the relay). The added delay is bounded by
//! [`Pacer::PAUSE`] plus the kernel's timer slack.

use std::time::{Duration, Instant};

/// Tracks the rhythm of one direction and says when to pause.
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    /// A transfer at least this large needs no pause before the next one.
    large: usize,
    /// How long to pause; `None` when the buffer is too small to gain.
    pause: Option<Duration>,
    /// When the previous transfer, or the pause after it, finished.
    last: Option<Instant>,
    /// Consecutive transfers within [`Pacer::GAP`] of the previous one.
    streak: u32,
    /// The other direction's byte count at the previous transfer.
    other: u64,
}

impl Pacer {
    /// A transfer finishing this soon after the previous one (or after the
    /// pause) found its data already waiting: the input is streaming.
    pub(crate) const GAP: Duration = Duration::from_micros(20);
    /// This many quick transfers in a row make a stream.
    pub(crate) const STREAK: u32 = 3;
    /// How long to let the input accumulate when it has 1 MiB of room.
    pub(crate) const PAUSE: Duration = Duration::from_micros(100);
    /// Pauses shorter than this are not worth a sleep.
    const MIN_PAUSE: Duration = Duration::from_micros(10);
    /// The buffer size [`Pacer::PAUSE`] is meant for.
    const FULL_ROOM: usize = 1 << 20;

    /// A pacer for a direction whose input buffers `capacity` bytes (the
    /// pipe behind standard input, say). A transfer of a quarter of that is
    /// large; the pause shrinks with the capacity, so that even a producer
    /// writing 7 GB/s does not fill the remaining three quarters meanwhile.
    pub(crate) fn new(capacity: usize) -> Self {
        let room = capacity.min(Self::FULL_ROOM);
        let micros = Self::PAUSE.as_micros() * room as u128 / Self::FULL_ROOM as u128;
        let pause = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
        Self {
            large: (capacity / 4).max(1),
            pause: (pause >= Self::MIN_PAUSE).then_some(pause),
            last: None,
            streak: 0,
            other: 0,
        }
    }

    /// A transfer of `moved` bytes finished at `now`, when the other
    /// direction had moved `other` bytes in all: how long to pause before
    /// the next one, if at all.
    pub(crate) fn after(&mut self, now: Instant, moved: usize, other: u64) -> Option<Duration> {
        let answered = other != self.other;
        self.other = other;
        let quick = !answered
            && self
                .last
                .is_some_and(|t| now.saturating_duration_since(t) <= Self::GAP);
        self.streak = if quick {
            self.streak.saturating_add(1)
        } else {
            0
        };
        self.last = Some(now);
        if self.streak >= Self::STREAK && moved < self.large {
            self.pause
        } else {
            None
        }
    }

    /// The pause that [`Pacer::after`] asked for ended at `now`.
    pub(crate) fn resumed(&mut self, now: Instant) {
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 1 << 20;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_single_transfer_after_silence_is_never_delayed() {
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        assert_eq!(p.after(t0, 10, 0), None);
        // Keystrokes: far apart, each one goes at once.
        for i in 1..20u32 {
            assert_eq!(
                p.after(t0 + Duration::from_millis(u64::from(i) * 80), 1, 0),
                None
            );
        }
    }

    #[test]
    fn small_transfers_in_quick_succession_pause() {
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        let pauses: Vec<_> = (0..6u64)
            .map(|i| p.after(t0 + us(i * 5), 4096, 0))
            .collect();
        // The first STREAK quick transfers go straight on; then pause.
        assert_eq!(pauses[..3], [None, None, None]);
        assert_eq!(pauses[3..], [Some(Pacer::PAUSE); 3]);
    }

    #[test]
    fn a_large_transfer_is_not_followed_by_a_pause() {
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        for i in 0..5u64 {
            p.after(t0 + us(i * 5), 4096, 0);
        }
        assert_eq!(p.after(t0 + us(30), CHUNK / 4, 0), None);
        assert_eq!(p.after(t0 + us(35), CHUNK, 0), None);
        // Still streaming: a small one pauses again.
        assert_eq!(p.after(t0 + us(40), 100, 0), Some(Pacer::PAUSE));
    }

    #[test]
    fn a_quiet_spell_ends_the_stream() {
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        for i in 0..5u64 {
            p.after(t0 + us(i * 5), 4096, 0);
        }
        assert_eq!(p.after(t0 + us(25), 4096, 0), Some(Pacer::PAUSE));
        // A line typed later goes out at once, and so do the next two.
        let later = t0 + Duration::from_millis(50);
        assert_eq!(p.after(later, 12, 0), None);
        assert_eq!(p.after(later + us(5), 12, 0), None);
        assert_eq!(p.after(later + us(10), 12, 0), None);
        assert_eq!(p.after(later + us(15), 12, 0), Some(Pacer::PAUSE));
    }

    #[test]
    fn the_pause_itself_does_not_end_the_stream() {
        // The next transfer is timed from the end of the pause (which can
        // overrun by the timer slack), not from the previous transfer.
        let mut p = Pacer::new(CHUNK);
        let mut t = Instant::now();
        let mut paused = 0;
        for _ in 0..100 {
            if let Some(d) = p.after(t, 4096, 0) {
                paused += 1;
                t += d + us(60);
                p.resumed(t);
            }
            t += us(8);
        }
        assert_eq!(paused, 100 - Pacer::STREAK as usize);
    }

    #[test]
    fn request_and_response_is_never_paused_however_fast_the_peer() {
        // Small messages one round trip apart (2 µs to 10 ms), each answered
        // in the other direction before the next: none may be delayed.
        for rtt in [2, 5, 11, 20, 50, 100, 1000, 10_000] {
            let mut p = Pacer::new(CHUNK);
            let t0 = Instant::now();
            for i in 0..1000u64 {
                let answers = i * 40;
                assert_eq!(p.after(t0 + us(i * rtt), 40, answers), None, "rtt {rtt} µs");
            }
        }
    }

    #[test]
    fn the_same_rhythm_one_way_is_a_stream() {
        // The timing of a fast request/response exchange, but nothing comes
        // back: a producer writing small pieces, which is paced.
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        let paused = (0..100u64)
            .filter(|&i| p.after(t0 + us(i * 11), 40, 7).is_some())
            .count();
        assert_eq!(paused, 100 - Pacer::STREAK as usize);
    }

    #[test]
    fn an_answer_in_the_middle_of_a_stream_restarts_the_streak() {
        let mut p = Pacer::new(CHUNK);
        let t0 = Instant::now();
        for i in 0..5u64 {
            p.after(t0 + us(i * 5), 4096, 0);
        }
        assert_eq!(p.after(t0 + us(25), 4096, 0), Some(Pacer::PAUSE));
        // The peer said something: the next STREAK transfers go at once.
        assert_eq!(p.after(t0 + us(30), 4096, 9), None);
        assert_eq!(p.after(t0 + us(35), 4096, 9), None);
        assert_eq!(p.after(t0 + us(40), 4096, 9), None);
        assert_eq!(p.after(t0 + us(45), 4096, 9), Some(Pacer::PAUSE));
    }

    #[test]
    fn the_pause_shrinks_with_the_room_to_fill() {
        let stream = |capacity: usize| {
            let mut p = Pacer::new(capacity);
            let t0 = Instant::now();
            (0..10u64).filter_map(|i| p.after(t0 + us(i), 1, 0)).max()
        };
        assert_eq!(stream(4 << 20), Some(Pacer::PAUSE));
        assert_eq!(stream(1 << 20), Some(Pacer::PAUSE));
        assert_eq!(stream(256 << 10), Some(Pacer::PAUSE / 4));
        // A default 64 KiB pipe fills in microseconds: never pause.
        assert_eq!(stream(64 << 10), None);
        assert_eq!(stream(1), None);
    }
}
