//! Query optimisation: statement statistics per fingerprint, a slow-query log with plans and
//! recommendations, pool statistics and pg_stat_statements, gathered into one report.
//!
//! Statements are observed through sqlx's own tracing events by [`QueryLayer`], so every query
//! run through any pool is counted without touching call sites; see the crate README.

mod explain;
pub mod fingerprint;
mod histogram;
mod layer;
mod monitor;
mod pg_stat;
pub mod plan;
mod report;

pub use explain::PlanMethod;
pub use fingerprint::{Fingerprint, fingerprint};
pub use layer::{MonitorLayer, QueryLayer, SqlxEvents, set_statement_observer};
pub use monitor::{
    AcquireStats, MAX_PENDING_EXPLAINS, MAX_STORED_PLAN_BYTES, MonitorConfig, QueryMonitor,
    SlowQuery, StatementStats,
};
pub use pg_stat::{PgStatStatements, TopStatement, pg_stat_statements_top};
pub use plan::{Recommendation, RecommendationKind};
pub use report::{PoolsReport, QueryReport};
