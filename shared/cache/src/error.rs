//! The crate's single error type.

use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// Reads never surface these (they report [`crate::Lookup::Unavailable`] instead); writes,
/// deletes and invalidations return them so the caller can log and carry on.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The configuration (environment or code) is invalid.
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// ElastiCache endpoint discovery failed.
    #[error("ElastiCache discovery failed: {0}")]
    Discovery(String),
    /// A key, TTL or value was rejected before reaching Redis.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A value could not be serialised.
    #[error("could not encode value: {0}")]
    Encode(String),
    /// The circuit breaker is open: Redis was skipped.
    #[error("cache bypassed: circuit breaker open")]
    BreakerOpen,
    /// The operation did not finish within the configured timeout.
    #[error("cache operation timed out after {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error or the connection failed.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered with something this crate did not expect.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
}

impl CacheError {
    /// True when the error means "Redis could not be used right now" (as opposed to bad input).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CacheError::BreakerOpen | CacheError::Timeout(_) | CacheError::Redis(_)
        )
    }
}
