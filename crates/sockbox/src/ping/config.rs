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

/// Engine settings (validated by [`Engine::new`](super::engine::Engine::new)).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// How many probes per target.
    pub mode: Mode,
    /// Minimum gap between any two probes (all targets together).
    pub interval: Duration,
    /// Gap between two probes to the same target.
    pub period: Duration,
    /// How long to wait for a reply (the first timeout in [`Mode::Alive`]).
    /// A reply that took longer is not counted, as in fping.
    pub timeout: Duration,
    /// Bytes of echo data (at least [`probe::ID_LEN`]).
    pub payload_len: usize,
    /// The per-process random token carried in every probe.
    pub token: u64,
    /// Random-looking echo data instead of the position pattern.
    pub random_payload: bool,
    /// Most probes awaiting a reply or a timeout at once: the memory of a
    /// run is bounded by this and by `max_active`, not by the number of
    /// targets. Sending pauses while the window is full.
    pub max_in_flight: usize,
    /// Most targets probed at once in [`Mode::Alive`] and [`Mode::Count`]
    /// (the next target starts when one finishes). [`Mode::Forever`]
    /// probes every target for ever, so it takes them all.
    pub max_active: usize,
}

/// Default of [`EngineConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1 << 20;

/// Default of [`EngineConfig::max_active`].
pub const DEFAULT_MAX_ACTIVE: usize = 1 << 18;

/// Invalid engine settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The payload cannot hold the probe id.
    #[error(
        "a payload of {0} bytes is too small: the probe id needs at least {min}",
        min = probe::ID_LEN
    )]
    PayloadTooSmall(usize),
    /// Too many retries.
    #[error("{0} retries is too many: at most 63")]
    TooManyRetries(u32),
    /// A zero period with a count > 1 or forever.
    #[error("the period between probes to one target must be above zero")]
    ZeroPeriod,
    /// A window of zero.
    #[error("the in-flight window and the active-target limit must be at least 1")]
    ZeroWindow,
}
