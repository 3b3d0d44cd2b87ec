//! The guide's `PerformanceMonitoringService` for the CAD platform's Lambda functions.
//!
//! * **CloudWatch metrics as EMF** ([`emf`]): each request or invocation is buffered in a
//!   [`Scope`] and flushed as a few JSON lines on stdout, which CloudWatch Logs turns into metrics
//!   (namespace `CadPlatform` by default). HTTP latency and status classes per route template,
//!   response sizes, database time and slow queries, cache hits/misses/errors/bypasses (read from
//!   the [`cache::CacheService`] counters), job durations and outcomes per queue, cold starts and
//!   memory use.
//! * **A real-time view in Redis** ([`store`]): one pipelined `HINCRBY` write per flush into
//!   per-minute (and per-hour) hashes that expire after a day, over the cache's own connection.
//!   [`Monitor::report`] merges the last 5, 15, 60 minutes and 24 hours into p50/p95/p99
//!   latencies (log-scale histograms, error ≤ [`histogram::RELATIVE_ERROR`]), throughput, error
//!   rates, cache hit ratios and job failure rates, and evaluates the guide's alerts.
//! * Recording never fails or blocks a request: Redis errors, timeouts and an open circuit
//!   breaker are counted ([`Monitor::stats`]) and the data dropped.
//!
//! ```no_run
//! # async fn demo(cache: cache::CacheService) -> Result<(), monitoring::MonitorError> {
//! use axum::{Router, routing::get};
//! let monitor = monitoring::Monitor::from_env(Some(cache))?;
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "ok" }))
//!     .layer(monitor.layer());
//! # let _ = app; Ok(()) }
//! ```

mod clock;
mod config;
pub mod emf;
mod error;
pub mod histogram;
mod layer;
pub mod memory;
mod monitor;
pub mod names;
pub mod report;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    DEFAULT_NAMESPACE, DEFAULT_SERVICE, DEFAULT_SLOW_QUERY, MonitorConfig, RedisWriteMode,
    StorageResolution,
};
pub use error::MonitorError;
pub use layer::{MetricsFuture, MetricsLayer, MetricsService};
pub use monitor::{
    CacheOutcome, FlushOutcome, JobOutcome, MAX_CACHE_NAMES, MAX_IN_FLIGHT, MAX_QUEUES, MAX_ROUTES,
    MAX_SAMPLES, MONITORING_CACHE_NAME, Monitor, MonitorBuilder, MonitorStats, RedisWrite, Scope,
};
pub use report::{
    Alert, AlertKind, AlertThresholds, CacheSummary, HttpSummary, LatencySummary,
    PerformanceReport, QueueSummary, RouteSummary, ServiceSummary, StatusCounts, WindowReport,
    evaluate_alerts,
};

/// Recording into the current task's [`Scope`] from anywhere (database layer, response
/// pipeline, job handlers) without passing it around. Each function returns false, and records
/// nothing, outside a scope.
pub mod record {
    use std::time::Duration;

    use crate::{CacheOutcome, JobOutcome, Scope};

    /// One database query and its duration (counts as slow at `METRICS_SLOW_QUERY_MS`).
    pub fn db_query(elapsed: Duration) -> bool {
        Scope::current().map(|s| s.db_query(elapsed)).is_some()
    }

    /// The response body size before and after compression.
    pub fn response_bytes(raw: u64, compressed: u64) -> bool {
        Scope::current()
            .map(|s| s.response_bytes(Some(raw), Some(compressed)))
            .is_some()
    }

    /// A lookup in a cache that is not the attached CacheService (whose traffic is collected
    /// automatically).
    pub fn cache(name: &str, outcome: CacheOutcome) -> bool {
        Scope::current().map(|s| s.cache(name, outcome)).is_some()
    }

    /// One job attempt on `queue`.
    pub fn job(queue: &str, outcome: JobOutcome, duration: Duration) -> bool {
        Scope::current()
            .map(|s| s.job(queue, outcome, duration))
            .is_some()
    }
}
