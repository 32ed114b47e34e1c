//! The probes in flight: a ring indexed by the 32-bit sequence number.
//!
//! Every probe gets the next sequence number of the run (wrapping at
//! 2^32), and its entry lives at `seq mod capacity` until a later probe
//! needs the place. An entry holds what a reply needs (target slot and
//! generation, round, send time, timeout level) and stays after the reply
//! or the timeout, so duplicates and late replies are told apart from
//! foreign ones for as long as the place is not reused. A place can be
//! reused only once its probe is settled (answered, timed out or never
//! sent); the ring doubles, up to a limit, when the next place is still
//! pending, and sending pauses at the limit. So memory follows the number
//! of probes in flight, whatever the number of targets.

/// Where a probe is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Never used, or the send failed.
    #[default]
    Free,
    /// Sent; neither answered nor timed out.
    Pending,
    /// Answered (further replies are duplicates).
    Answered,
    /// Timed out (further replies are late).
    Expired,
    /// Its send failed for a passing reason (no buffer space, a full
    /// queue): it holds its place until its timeout, when its target is
    /// tried again, as if it had gone unanswered but without counting a
    /// timeout.
    Unsent,
}

impl State {
    /// Whether the probe still holds its place in the ring (it waits for a
    /// reply or for its timeout).
    fn holds(self) -> bool {
        matches!(self, State::Pending | State::Unsent)
    }
}

/// One probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flight {
    /// Its full sequence number (the place only holds `seq mod capacity`).
    pub seq: u32,
    /// The target's slot in the engine.
    pub slot: u32,
    /// The slot's generation when sent (a reused slot has another).
    pub generation: u32,
    /// The probe's round for its target.
    pub round: u32,
    /// Send time, ns since the engine's start.
    pub sent_ns: u64,
    /// Index of its timeout (retry level).
    pub level: u8,
    /// Where it is in its life.
    pub state: State,
}

/// The ring. See the module documentation.
#[derive(Debug)]
pub struct Ring {
    entries: Vec<Flight>,
    next_seq: u32,
    max: usize,
}

/// Places a ring starts with.
const START: usize = 1024;

impl Ring {
    /// A ring that grows up to `max` places (rounded up to a power of two,
    /// at most 2^32).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, 1 << 32).next_power_of_two();
        Self {
            entries: vec![Flight::default(); START.min(max)],
            next_seq: 0,
            max,
        }
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    fn place(&self, seq: u32) -> usize {
        seq as usize & self.mask()
    }

    /// Places now allocated.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// True when no probe can be issued until one settles.
    pub fn is_full(&self) -> bool {
        self.entries[self.place(self.next_seq)].state.holds() && self.entries.len() >= self.max
    }

    /// True when the next probe can be issued, growing the ring if its
    /// place is still pending. False at the limit: wait for a reply or a
    /// timeout.
    pub fn make_room(&mut self) -> bool {
        if !self.entries[self.place(self.next_seq)].state.holds() {
            return true;
        }
        if self.entries.len() >= self.max {
            return false;
        }
        self.grow();
        !self.entries[self.place(self.next_seq)].state.holds()
    }

    fn grow(&mut self) {
        let doubled = self.entries.len() * 2;
        let mut entries = vec![Flight::default(); doubled];
        for e in &self.entries {
            if e.state != State::Free {
                entries[e.seq as usize & (doubled - 1)] = *e;
            }
        }
        self.entries = entries;
    }

    /// Issue the next probe (call [`Ring::make_room`] first): its entry
    /// is filled in and it becomes pending. Returns its sequence number.
    pub fn issue(&mut self, mut flight: Flight) -> u32 {
        let seq = self.next_seq;
        flight.seq = seq;
        flight.state = State::Pending;
        let at = self.place(seq);
        self.entries[at] = flight;
        self.next_seq = seq.wrapping_add(1);
        seq
    }

    /// The entry of `seq`, if its place still holds it and it was sent.
    pub fn get(&self, seq: u32) -> Option<&Flight> {
        let e = &self.entries[self.place(seq)];
        (e.seq == seq && e.state != State::Free).then_some(e)
    }

    /// The entry of `seq`, mutable.
    pub fn get_mut(&mut self, seq: u32) -> Option<&mut Flight> {
        let at = self.place(seq);
        let e = &mut self.entries[at];
        (e.seq == seq && e.state != State::Free).then_some(e)
    }

    /// The entry of the pending probe `seq`.
    pub fn pending_mut(&mut self, seq: u32) -> Option<&mut Flight> {
        self.get_mut(seq).filter(|e| e.state == State::Pending)
    }

    /// The entry of `seq` while it holds its place (pending, or unsent
    /// and waiting for its timeout).
    pub fn waiting_mut(&mut self, seq: u32) -> Option<&mut Flight> {
        self.get_mut(seq).filter(|e| e.state.holds())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flight(slot: u32) -> Flight {
        Flight {
            slot,
            ..Flight::default()
        }
    }

    #[test]
    fn entries_are_found_by_sequence_and_settled_places_are_reused() {
        let mut r = Ring::new(START);
        for i in 0..START as u32 {
            assert!(r.make_room());
            assert_eq!(r.issue(flight(i)), i);
        }
        // Full of pending probes, at its limit: no room.
        assert!(r.is_full());
        assert!(!r.make_room());
        assert_eq!(r.get(5).unwrap().slot, 5);
        r.pending_mut(0).unwrap().state = State::Answered;
        assert!(r.make_room());
        let seq = r.issue(flight(77));
        assert_eq!(seq, START as u32);
        // The answered probe 0 is gone; 1 is still there.
        assert!(r.get(0).is_none());
        assert_eq!(r.get(seq).unwrap().slot, 77);
        assert!(r.get(1).is_some());
        assert!(r.get(seq + 1).is_none());
    }

    #[test]
    fn the_ring_grows_while_probes_are_pending_and_keeps_them() {
        let mut r = Ring::new(1 << 16);
        for i in 0..10_000u32 {
            assert!(r.make_room());
            r.issue(flight(i));
        }
        assert!(r.capacity() >= 10_000 && r.capacity() <= 16_384);
        for i in 0..10_000u32 {
            let e = r.get(i).unwrap();
            assert_eq!((e.slot, e.state), (i, State::Pending));
        }
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Ring::new(START);
        r.next_seq = u32::MAX;
        assert_eq!(r.issue(flight(1)), u32::MAX);
        assert_eq!(r.issue(flight(2)), 0);
        assert_eq!(r.get(u32::MAX).unwrap().slot, 1);
        assert_eq!(r.get(0).unwrap().slot, 2);
    }
}
