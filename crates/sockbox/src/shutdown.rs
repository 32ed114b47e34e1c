//! One shutdown signal shared by every job: the CLI triggers it on Ctrl-C or
//! SIGTERM, tests trigger it directly.

use tokio_util::sync::CancellationToken;

/// A cloneable "please stop" signal.
///
/// Cloning gives another handle on the same signal; [`Shutdown::child`] gives
/// a signal that fires when its parent fires but can also be fired on its own
/// (one connection, say, without stopping the server).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A new signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire the signal: every clone and child sees it.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// True once the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Wait until the signal fires. Cancel-safe.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// A signal that fires with this one, and can also fire alone.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
        }
    }

    /// The underlying token, for APIs that want one.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn child_fires_with_parent_but_not_the_reverse() {
        let parent = Shutdown::new();
        let child = parent.child();
        child.trigger();
        assert!(child.is_triggered());
        assert!(!parent.is_triggered());
        let other = parent.child();
        parent.trigger();
        other.wait().await;
        assert!(other.is_triggered());
    }
}
