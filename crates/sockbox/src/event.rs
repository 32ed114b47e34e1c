//! One event style for every job: a job reports what happens to an
//! [`Observer`], which the caller supplies.
//!
//! An observer is any `Fn(&E)` closure, or a type implementing the trait.
//! It is called from the job's tasks and must return quickly: queue the
//! event (the `sockbox` command uses a bounded queue with its own writer
//! thread) rather than write it to a pipe that may be full.
//!
//! Servers keep their observer as [`Events<E>`] (shared by every task, so
//! it must be `Send + Sync`); a single-task engine (ping) takes
//! `&impl Observer<E>` and its observer may use `Cell`/`RefCell` inside.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use sockbox::event::{Events, Observer};
//!
//! let seen = Arc::new(AtomicUsize::new(0));
//! let counter = seen.clone();
//! let events: Events<&str> = Arc::new(move |_: &&str| {
//!     counter.fetch_add(1, Ordering::Relaxed);
//! });
//! events.on_event(&"joined");
//! assert_eq!(seen.load(Ordering::Relaxed), 1);
//! ```

use std::sync::Arc;

/// Receives the events of a job.
pub trait Observer<E: ?Sized> {
    /// One event happened. Must not block.
    fn on_event(&self, event: &E);
}

impl<E: ?Sized, F: Fn(&E)> Observer<E> for F {
    fn on_event(&self, event: &E) {
        self(event);
    }
}

/// An observer shared by a server's tasks.
pub type Events<E> = Arc<dyn Observer<E> + Send + Sync>;

/// An observer that drops every event.
pub fn ignore<E: ?Sized + 'static>() -> Events<E> {
    Arc::new(|_: &E| {})
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn closures_and_cells_observe() {
        let n = Cell::new(0);
        let obs = |e: &u32| n.set(n.get() + *e);
        fn feed(o: &impl Observer<u32>) {
            o.on_event(&2);
            o.on_event(&3);
        }
        feed(&obs);
        assert_eq!(n.get(), 5);
        ignore::<u32>().on_event(&1);
    }
}
