//! The report served by the admin performance route.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::QueryMonitor;
use super::monitor::{AcquireStats, SlowQuery, StatementStats};
use super::pg_stat::{PgStatStatements, pg_stat_statements_top};
use crate::replica::{Db, PoolsStats};

/// Everything the monitor knows, ready to serialise.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// Since when statistics were collected (process start, typically).
    pub collecting_since: DateTime<Utc>,
    /// The slow threshold in milliseconds.
    pub slow_threshold_ms: f64,
    /// Statements observed in all.
    pub statements_observed: u64,
    /// Distinct fingerprints tracked, and the cap.
    pub fingerprints_tracked: usize,
    /// The cap on tracked fingerprints.
    pub fingerprint_capacity: usize,
    /// Statements counted in the overflow row because the cap was reached.
    pub statements_in_overflow: u64,
    /// The statements with the most total time, busiest first.
    pub top_statements: Vec<StatementStats>,
    /// Recent slow statements, newest first, with plans and recommendations.
    pub slow_queries: Vec<SlowQuery>,
    /// Pool sizes and connection-acquire waits.
    pub pools: PoolsReport,
    /// The server's own statement statistics, when pg_stat_statements is available.
    pub pg_stat_statements: PgStatStatements,
}

/// Pool section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PoolsReport {
    /// Writer and (when separate) reader pool counters.
    #[serde(flatten)]
    pub pools: PoolsStats,
    /// Acquire waits over every pool built by `lazy_pool` in this process (sqlx's own timing
    /// from `acquire()` to a usable connection, including connecting or the idle health check).
    pub acquire: AcquireStats,
}

impl QueryMonitor {
    /// The report: `top` statements by total time, the slow log, pool statistics and
    /// pg_stat_statements' `top` statements (read through the writer, at most 5 s).
    pub async fn report(&self, db: &Db, top: usize) -> QueryReport {
        let pg_stat_statements = pg_stat_statements_top(db.writer(), top).await;
        let (statements_observed, fingerprints_tracked, statements_in_overflow) = self.counts();
        QueryReport {
            generated_at: Utc::now(),
            collecting_since: self.started_at(),
            slow_threshold_ms: self.config().slow_threshold.as_secs_f64() * 1000.0,
            statements_observed,
            fingerprints_tracked,
            fingerprint_capacity: self.config().max_fingerprints,
            statements_in_overflow,
            top_statements: self.statement_stats(top),
            slow_queries: self.slow_queries(),
            pools: PoolsReport {
                pools: db.pool_stats(),
                acquire: self.acquire_stats(),
            },
            pg_stat_statements,
        }
    }
}
