//! The crate's single error type.

/// What can go wrong. Recording never returns these: a failed metrics write is counted and
/// dropped. They come from configuration and from reading the Redis view.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The configuration (environment or code) is invalid.
    #[error("invalid monitoring configuration: {0}")]
    Config(String),
    /// The real-time view cannot be read: no Redis attached.
    #[error("no Redis attached: the real-time view is unavailable")]
    NoRedis,
    /// Redis could not be read (error, timeout or circuit breaker open).
    #[error("reading the real-time view failed: {0}")]
    Redis(#[from] cache::CacheError),
}
