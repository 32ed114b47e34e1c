//! Where targets come from: anything that hands them out one at a time,
//! without blocking, so a range, a file or a pipe of any length is read
//! as the run goes and never held whole.
//!
//! [`IterSource`] wraps an iterator (ranges, lists); [`ChannelSource`]
//! takes targets that another task produces (reading a file or stdin,
//! resolving names) through a bounded channel, so that task runs only as
//! far ahead as the channel holds.

use std::future::Future;

use tokio::sync::mpsc;

use super::event::Target;

/// What a source has for the engine now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A target to probe.
    Target(Target),
    /// A name that did not resolve (reported, not probed).
    Unresolved {
        /// The name as given.
        name: String,
        /// Why.
        error: String,
    },
    /// Nothing yet: wait for [`TargetSource::ready`].
    Pending,
    /// No more targets, ever.
    End,
}

/// A source of targets. See the module documentation.
pub trait TargetSource {
    /// The next target, without blocking.
    fn next(&mut self) -> Next;
    /// Resolves when [`TargetSource::next`] may have something other than
    /// [`Next::Pending`]; only awaited after it returned `Pending`.
    fn ready(&mut self) -> impl Future<Output = ()>;
}

/// A source over an iterator of targets (never pending).
#[derive(Debug, Clone)]
pub struct IterSource<I>(pub I);

impl<I: Iterator<Item = Target>> TargetSource for IterSource<I> {
    fn next(&mut self) -> Next {
        self.0.next().map_or(Next::End, Next::Target)
    }

    async fn ready(&mut self) {}
}

/// What a producer task sends to a [`ChannelSource`].
pub type Item = Result<Target, (String, String)>;

/// Targets from another task through a bounded channel: `Ok(target)` or
/// `Err((name, why))` for a name that did not resolve. The source ends
/// when every sender is dropped.
#[derive(Debug)]
pub struct ChannelSource {
    rx: mpsc::Receiver<Item>,
    held: Option<Item>,
    closed: bool,
}

impl ChannelSource {
    /// A channel holding up to `bound` targets, and its source.
    pub fn new(bound: usize) -> (mpsc::Sender<Item>, Self) {
        let (tx, rx) = mpsc::channel(bound.max(1));
        (
            tx,
            Self {
                rx,
                held: None,
                closed: false,
            },
        )
    }

    fn convert(item: Item) -> Next {
        match item {
            Ok(t) => Next::Target(t),
            Err((name, error)) => Next::Unresolved { name, error },
        }
    }
}

impl TargetSource for ChannelSource {
    fn next(&mut self) -> Next {
        if let Some(item) = self.held.take() {
            return Self::convert(item);
        }
        if self.closed {
            return Next::End;
        }
        match self.rx.try_recv() {
            Ok(item) => Self::convert(item),
            Err(mpsc::error::TryRecvError::Empty) => Next::Pending,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.closed = true;
                Next::End
            }
        }
    }

    async fn ready(&mut self) {
        if self.held.is_some() || self.closed {
            return;
        }
        match self.rx.recv().await {
            Some(item) => self.held = Some(item),
            None => self.closed = true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_source_hands_out_in_order_then_ends() {
        let (tx, mut src) = ChannelSource::new(4);
        assert_eq!(src.next(), Next::Pending);
        let one = Target::addr([127, 0, 0, 1].into());
        tx.send(Ok(one.clone())).await.unwrap();
        tx.send(Err(("nosuch".into(), "not found".into())))
            .await
            .unwrap();
        assert_eq!(src.next(), Next::Target(one));
        assert!(matches!(src.next(), Next::Unresolved { .. }));
        assert_eq!(src.next(), Next::Pending);
        drop(tx);
        src.ready().await;
        assert_eq!(src.next(), Next::End);
        assert_eq!(src.next(), Next::End);
    }

    #[tokio::test]
    async fn ready_holds_what_it_received() {
        let (tx, mut src) = ChannelSource::new(1);
        let t = Target::addr([127, 0, 0, 2].into());
        let sent = t.clone();
        tokio::spawn(async move { tx.send(Ok(sent)).await });
        src.ready().await;
        assert_eq!(src.next(), Next::Target(t));
    }
}
