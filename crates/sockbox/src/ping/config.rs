//! Engine settings and their validation errors.

use std::time::Duration;

use super::probe;

/// How many probes each target gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Until it answers once (fping's default): a probe, then up to
    /// `retries` more, each waiting `backoff` times longer than the last.
    Alive {
        /// Extra probes after the first one times out (at most 63).
        retries: u32,
        /// Timeout multiplier per retry (fping: 1.5).
        backoff: f64,
    },
    /// Exactly this many probes per target, one per period.
    Count(u32),
    /// One probe per period until stopped.
    Forever,
}

/// Engine settings (already validated by [`Engine::new`](super::engine::Engine::new)).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// How many probes per target.
    pub mode: Mode,
    /// Minimum gap between any two probes (all targets together).
    pub interval: Duration,
    /// Gap between two probes to the same target.
    pub period: Duration,
    /// How long to wait for a reply (the first timeout in [`Mode::Alive`]).
    pub timeout: Duration,
    /// Bytes of echo data (at least [`probe::ID_LEN`]).
    pub payload_len: usize,
    /// The per-process random token carried in every probe.
    pub token: u64,
}

/// Invalid engine settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The payload cannot hold the probe id.
    #[error(
        "payload of {0} bytes is too small: the probe id needs {min} (use -s {min} or more)",
        min = probe::ID_LEN
    )]
    PayloadTooSmall(usize),
    /// Too many retries.
    #[error("{0} retries is too many: at most 63")]
    TooManyRetries(u32),
    /// More targets than sequence numbers.
    #[error("{0} targets is too many for one run")]
    TooManyTargets(usize),
    /// A zero period with a count > 1 or forever.
    #[error("the period between probes to one target must be above zero")]
    ZeroPeriod,
}
