//! The CAD platform's `CacheService` on Redis / AWS ElastiCache.
//!
//! * One multiplexed connection per process (standalone via `ConnectionManager`, or the cluster
//!   protocol), TLS and AUTH for ElastiCache in-transit encryption, optional endpoint discovery.
//! * Typed values (MessagePack, LZ4 above a threshold) and raw bytes; pipelined multi-key reads
//!   and writes, grouped by hash slot in cluster mode.
//! * Invalidation by SCAN pattern and by tag (per-tag membership sets, no keyspace scan).
//! * A `SET NX PX` stampede lock with compare-and-delete release.
//! * Every operation is bounded by a timeout, a circuit breaker skips Redis after repeated
//!   failures, and reads never fail: they answer [`Lookup::Hit`], [`Lookup::Miss`] or
//!   [`Lookup::Unavailable`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), cache::CacheError> {
//! use std::time::Duration;
//! let svc = cache::CacheService::from_env().await?;
//! let users = svc.named("userData");
//! users.set("user:123", &"Ada", Duration::from_secs(300)).await?;
//! if let cache::Lookup::Hit(name) = users.get::<String>("user:123").await {
//!     println!("{name}");
//! }
//! # Ok(()) }
//! ```

mod breaker;
mod codec;
mod config;
mod conn;
#[cfg(feature = "discovery")]
pub mod discovery;
mod error;
mod service;
pub mod slot;
mod stats;

pub use breaker::{BreakerConfig, BreakerState};
pub use config::{
    CacheConfig, DEFAULT_COMPRESS_THRESHOLD, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_VALUE_BYTES, DEFAULT_OP_TIMEOUT, DEFAULT_SCAN_COUNT, EndpointSource, RedisEndpoint,
};
pub use error::CacheError;
pub use service::{CacheLock, CacheService, Entry, LockOutcome, Lookup, MAX_KEY_LEN, NamedCache};
pub use stats::CacheStats;

pub use bytes::Bytes;
