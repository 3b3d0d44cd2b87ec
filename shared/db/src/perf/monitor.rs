//! The query monitor: per-fingerprint statistics, connection-acquire timings and the slow-query
//! log with plans and recommendations. Fed by [`super::QueryLayer`] (sqlx's tracing events) or by
//! [`QueryMonitor::observe`] directly.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::explain::{Explainer, PlanInfo, PlanMethod};
use super::fingerprint::{self, Fingerprint};
use super::histogram::Histogram;
use super::plan::{self, PlanContext, Recommendation};

/// Plans larger than this (serialised) are logged but not kept in memory.
pub const MAX_STORED_PLAN_BYTES: usize = 16 * 1024;
/// EXPLAINs waiting or running at once; more slow statements meanwhile are logged without a plan.
pub const MAX_PENDING_EXPLAINS: usize = 4;
/// Statement kinds that can be explained.
const EXPLAINABLE: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table", "merge",
];

/// Monitor settings; [`MonitorConfig::from_env`] reads them from the environment.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// DB_SLOW_QUERY_MS (default 100, the guide's target for database queries).
    pub slow_threshold: Duration,
    /// DB_STATS_MAX_FINGERPRINTS (default 500): distinct statements tracked; later new ones are
    /// counted together in one overflow row.
    pub max_fingerprints: usize,
    /// DB_SLOW_LOG_SIZE (default 50): slow statements kept for the report (newest first).
    pub slow_log_capacity: usize,
    /// DB_EXPLAIN_SLOW (default true): fetch plans for slow statements.
    pub explain: bool,
    /// DB_EXPLAIN_TIMEOUT_MS (default 2000): statement and lock timeout of one EXPLAIN.
    pub explain_timeout: Duration,
    /// DB_EXPLAIN_INTERVAL_SECS (default 60): at most one EXPLAIN per fingerprint this often.
    pub explain_interval: Duration,
    /// DB_SEQ_SCAN_MIN_ROWS (default 10000): sequential scans over bigger tables are flagged.
    pub seq_scan_min_rows: f64,
    /// DB_MISESTIMATE_FACTOR (default 10): row estimates off by this factor are flagged.
    pub misestimate_factor: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            slow_threshold: Duration::from_millis(100),
            max_fingerprints: 500,
            slow_log_capacity: 50,
            explain: true,
            explain_timeout: Duration::from_millis(2000),
            explain_interval: Duration::from_secs(60),
            seq_scan_min_rows: 10_000.0,
            misestimate_factor: 10.0,
        }
    }
}

impl MonitorConfig {
    /// Reads the settings from the environment; unset or unparsable values keep the default.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let u64_of = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        let f64_of = |name: &str| {
            get(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        Self {
            slow_threshold: u64_of("DB_SLOW_QUERY_MS")
                .map(Duration::from_millis)
                .unwrap_or(d.slow_threshold),
            max_fingerprints: u64_of("DB_STATS_MAX_FINGERPRINTS")
                .map(|v| v.clamp(1, 100_000) as usize)
                .unwrap_or(d.max_fingerprints),
            slow_log_capacity: u64_of("DB_SLOW_LOG_SIZE")
                .map(|v| v.min(10_000) as usize)
                .unwrap_or(d.slow_log_capacity),
            explain: get("DB_EXPLAIN_SLOW")
                .map(|v| !matches!(v.trim(), "false" | "0" | "off" | "no"))
                .unwrap_or(d.explain),
            explain_timeout: u64_of("DB_EXPLAIN_TIMEOUT_MS")
                .map(|v| Duration::from_millis(v.clamp(1, 60_000)))
                .unwrap_or(d.explain_timeout),
            explain_interval: u64_of("DB_EXPLAIN_INTERVAL_SECS")
                .map(Duration::from_secs)
                .unwrap_or(d.explain_interval),
            seq_scan_min_rows: f64_of("DB_SEQ_SCAN_MIN_ROWS").unwrap_or(d.seq_scan_min_rows),
            misestimate_factor: f64_of("DB_MISESTIMATE_FACTOR")
                .filter(|v| *v >= 1.0)
                .unwrap_or(d.misestimate_factor),
        }
    }
}

/// Statistics of one statement fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct StatementStats {
    /// Stable id of the fingerprint (16 hex digits); `overflow` for the overflow row.
    pub fingerprint_id: String,
    /// The normalised statement.
    pub fingerprint: String,
    /// Executions.
    pub calls: u64,
    /// Sum of execution times.
    pub total_ms: f64,
    /// Mean execution time.
    pub mean_ms: f64,
    /// 95th percentile (log-scale histogram: within 12.5 %, never above `max_ms`).
    pub p95_ms: f64,
    /// Longest execution.
    pub max_ms: f64,
    /// Rows per call (the larger of rows returned and rows affected), summed over all calls.
    pub rows: u64,
    /// Mean rows per call.
    pub mean_rows: f64,
    /// Executions at or above the slow threshold.
    pub slow_calls: u64,
}

/// A statement that took at least the slow threshold, with its plan when one could be had.
#[derive(Debug, Clone, Serialize)]
pub struct SlowQuery {
    /// When it finished.
    pub at: DateTime<Utc>,
    /// Fingerprint id.
    pub fingerprint_id: String,
    /// The normalised statement (values are never kept).
    pub fingerprint: String,
    /// How long it took.
    pub duration_ms: f64,
    /// Rows it returned.
    pub rows_returned: u64,
    /// Rows it inserted, updated or deleted.
    pub rows_affected: u64,
    /// `EXPLAIN (FORMAT JSON)` output, when available and small enough to keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// How the plan was obtained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_method: Option<PlanMethod>,
    /// When the plan was made (earlier than `at` when an earlier plan of the fingerprint is reused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_explained_at: Option<DateTime<Utc>>,
    /// `explained`, `reused: …`, `skipped: …` or `failed: …`.
    pub plan_status: String,
    /// What the plan suggests.
    pub recommendations: Vec<Recommendation>,
}

/// Time to get a connection from the pool, as sqlx measures it.
#[derive(Debug, Clone, Serialize)]
pub struct AcquireStats {
    /// Acquires observed.
    pub count: u64,
    /// Mean wait.
    pub mean_ms: f64,
    /// 95th percentile wait.
    pub p95_ms: f64,
    /// Longest wait.
    pub max_ms: f64,
}

struct Entry {
    text: String,
    hist: Histogram,
    rows: u64,
    slow: u64,
    last_explain: Option<Instant>,
    last_plan: Option<Arc<PlanInfo>>,
}

impl Entry {
    fn new(text: String) -> Self {
        Self {
            text,
            hist: Histogram::default(),
            rows: 0,
            slow: 0,
            last_explain: None,
            last_plan: None,
        }
    }

    fn stats(&self, id: &str) -> StatementStats {
        let calls = self.hist.count();
        StatementStats {
            fingerprint_id: id.to_string(),
            fingerprint: self.text.clone(),
            calls,
            total_ms: self.hist.total_ms(),
            mean_ms: self.hist.mean_ms(),
            p95_ms: self.hist.quantile_ms(0.95),
            max_ms: self.hist.max_ms(),
            rows: self.rows,
            mean_rows: if calls == 0 {
                0.0
            } else {
                self.rows as f64 / calls as f64
            },
            slow_calls: self.slow,
        }
    }
}

const OVERFLOW_ID: &str = "overflow";

struct State {
    entries: HashMap<String, Entry>,
    overflow: Entry,
    statements: u64,
    slow_log: VecDeque<SlowQuery>,
    acquire: Histogram,
}

struct Inner {
    config: MonitorConfig,
    state: Mutex<State>,
    explainer: Mutex<Option<Arc<Explainer>>>,
    pending: AtomicUsize,
    settled: tokio::sync::Notify,
    started_at: DateTime<Utc>,
}

/// Collects statement statistics and slow queries; cheap to clone (shared state).
#[derive(Clone)]
pub struct QueryMonitor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QueryMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryMonitor")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn statistics into a second panic on every query.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum Decision {
    Explain(Arc<Explainer>, tokio::runtime::Handle),
    Reuse(Arc<PlanInfo>, String),
    Skip(String),
}

/// Decrements the pending-EXPLAIN count however the task ends.
struct PendingGuard(Arc<Inner>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl QueryMonitor {
    /// A monitor with its own, empty statistics.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    overflow: Entry::new(
                        "<other statements: fingerprint capacity reached>".to_string(),
                    ),
                    statements: 0,
                    slow_log: VecDeque::new(),
                    acquire: Histogram::default(),
                }),
                explainer: Mutex::new(None),
                pending: AtomicUsize::new(0),
                settled: tokio::sync::Notify::new(),
                started_at: Utc::now(),
            }),
        }
    }

    /// The process-wide monitor (settings from the environment on first use): the one the
    /// tracing layer installed at start-up and the admin route share.
    pub fn global() -> &'static QueryMonitor {
        static GLOBAL: OnceLock<QueryMonitor> = OnceLock::new();
        GLOBAL.get_or_init(|| QueryMonitor::new(MonitorConfig::from_env()))
    }

    /// The settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.inner.config
    }

    /// When this monitor started collecting.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// Lets slow statements be explained on a private connection to the same server and
    /// database as `pool` (normally the writer). Without it slow statements are logged without
    /// plans. The connection is opened on the first slow statement only.
    pub fn explain_with(&self, pool: &PgPool) {
        let options = pool.connect_options();
        let explainer = Explainer::new(&options, self.inner.config.explain_timeout);
        *lock(&self.inner.explainer) = Some(Arc::new(explainer));
    }

    /// Records one executed statement (the tracing layer calls this for every sqlx statement).
    pub fn observe(&self, sql: &str, elapsed: Duration, rows_returned: u64, rows_affected: u64) {
        let fp = fingerprint::analyze(sql);
        let slow = elapsed >= self.inner.config.slow_threshold;
        let decision = {
            let mut guard = lock(&self.inner.state);
            let state = &mut *guard;
            state.statements += 1;
            let cap = self.inner.config.max_fingerprints;
            let (id, entry) = if state.entries.contains_key(&fp.id) || state.entries.len() < cap {
                let e = state
                    .entries
                    .entry(fp.id.clone())
                    .or_insert_with(|| Entry::new(fp.text.clone()));
                (fp.id.as_str(), e)
            } else {
                (OVERFLOW_ID, &mut state.overflow)
            };
            entry.hist.record(elapsed);
            // A SELECT reports its rows both as returned and as affected (the server's
            // command tag counts them): the larger of the two is the statement's row count.
            entry.rows = entry.rows.saturating_add(rows_returned.max(rows_affected));
            if !slow {
                return;
            }
            entry.slow += 1;
            let decision = self.decide(entry, id == OVERFLOW_ID, &fp);
            if matches!(decision, Decision::Explain(..)) {
                entry.last_explain = Some(Instant::now());
                self.inner.pending.fetch_add(1, Ordering::AcqRel);
            }
            decision
        };
        let at = Utc::now();
        match decision {
            Decision::Explain(explainer, handle) => {
                let monitor = self.clone();
                let sql = sql.to_string();
                let guard = PendingGuard(self.inner.clone());
                handle.spawn(async move {
                    let _guard = guard;
                    let limit = monitor.inner.config.explain_timeout * 2 + Duration::from_secs(1);
                    let outcome =
                        tokio::time::timeout(limit, explainer.explain(&sql, fp.max_param)).await;
                    let (plan, status) = match outcome {
                        Ok(Ok(info)) => (Some(Arc::new(info)), "explained".to_string()),
                        Ok(Err(e)) => (None, format!("failed: {e}")),
                        Err(_) => (None, format!("failed: no plan within {limit:?}")),
                    };
                    if let Some(p) = &plan {
                        monitor.remember_plan(&fp.id, p.clone());
                    }
                    monitor.log_slow(at, &fp, elapsed, rows_returned, rows_affected, plan, status);
                });
            }
            Decision::Reuse(plan, status) => {
                self.log_slow(
                    at,
                    &fp,
                    elapsed,
                    rows_returned,
                    rows_affected,
                    Some(plan),
                    status,
                );
            }
            Decision::Skip(reason) => {
                self.log_slow(
                    at,
                    &fp,
                    elapsed,
                    rows_returned,
                    rows_affected,
                    None,
                    format!("skipped: {reason}"),
                );
            }
        }
    }

    fn decide(&self, entry: &Entry, overflow: bool, fp: &Fingerprint) -> Decision {
        let config = &self.inner.config;
        if !config.explain {
            return Decision::Skip("EXPLAIN of slow statements is off (DB_EXPLAIN_SLOW)".into());
        }
        if fp.multiple_statements {
            return Decision::Skip("the text holds several statements".into());
        }
        if !EXPLAINABLE.contains(&fp.first_keyword.as_str()) {
            return Decision::Skip(format!(
                "a {} statement cannot be explained",
                if fp.first_keyword.is_empty() {
                    "non-SQL"
                } else {
                    &fp.first_keyword
                }
            ));
        }
        if let Some(last) = entry.last_explain
            && last.elapsed() < config.explain_interval
        {
            let ago = last.elapsed().as_secs();
            // The overflow row mixes statements: its plan belongs to another one.
            return match (&entry.last_plan, overflow) {
                (Some(p), false) => Decision::Reuse(
                    p.clone(),
                    format!(
                        "reused: explained {ago} s ago (at most one EXPLAIN per fingerprint every {} s)",
                        config.explain_interval.as_secs()
                    ),
                ),
                _ => Decision::Skip(format!(
                    "rate-limited: an EXPLAIN of this fingerprint ran {ago} s ago"
                )),
            };
        }
        let Some(explainer) = lock(&self.inner.explainer).clone() else {
            return Decision::Skip(
                "no EXPLAIN connection configured (QueryMonitor::explain_with)".into(),
            );
        };
        if self.inner.pending.load(Ordering::Acquire) >= MAX_PENDING_EXPLAINS {
            return Decision::Skip(format!("{MAX_PENDING_EXPLAINS} EXPLAINs already pending"));
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => Decision::Explain(explainer, handle),
            Err(_) => Decision::Skip("no Tokio runtime to run the EXPLAIN on".into()),
        }
    }

    fn remember_plan(&self, id: &str, plan: Arc<PlanInfo>) {
        let size = serde_json::to_string(&plan.plan).map_or(usize::MAX, |s| s.len());
        if size > MAX_STORED_PLAN_BYTES {
            return;
        }
        if let Some(e) = lock(&self.inner.state).entries.get_mut(id) {
            e.last_plan = Some(plan);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log_slow(
        &self,
        at: DateTime<Utc>,
        fp: &Fingerprint,
        elapsed: Duration,
        rows_returned: u64,
        rows_affected: u64,
        plan: Option<Arc<PlanInfo>>,
        plan_status: String,
    ) {
        let config = &self.inner.config;
        let actual = rows_returned.max(rows_affected);
        let recommendations = plan
            .as_ref()
            .and_then(|p| {
                let root = plan::plan_root(&p.plan)?;
                let ctx = PlanContext {
                    relation_rows: p.relation_rows.clone(),
                    work_mem_bytes: p.work_mem_bytes,
                    actual_rows: Some(actual),
                    seq_scan_min_rows: config.seq_scan_min_rows,
                    misestimate_factor: config.misestimate_factor,
                    generic_plan: p.method == PlanMethod::GenericPlan,
                };
                Some(plan::recommend(root, &ctx))
            })
            .unwrap_or_default();
        let plan_json = plan
            .as_ref()
            .and_then(|p| serde_json::to_string(&p.plan).ok());
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let suggestions: Vec<&str> = recommendations
            .iter()
            .map(|r| r.suggestion.as_str())
            .collect();
        tracing::warn!(
            target: "db::slow_query",
            fingerprint_id = %fp.id,
            fingerprint = %fp.text,
            duration_ms,
            rows_returned,
            rows_affected,
            plan_status = %plan_status,
            plan = plan_json.as_deref().unwrap_or(""),
            recommendations = ?suggestions,
            "slow query"
        );
        let stored_plan = plan
            .as_ref()
            .filter(|_| {
                plan_json
                    .as_ref()
                    .is_some_and(|j| j.len() <= MAX_STORED_PLAN_BYTES)
            })
            .map(|p| p.plan.clone());
        let entry = SlowQuery {
            at,
            fingerprint_id: fp.id.clone(),
            fingerprint: fp.text.clone(),
            duration_ms,
            rows_returned,
            rows_affected,
            plan_method: plan.as_ref().map(|p| p.method),
            plan_explained_at: plan.as_ref().map(|p| p.explained_at),
            plan: stored_plan,
            plan_status,
            recommendations,
        };
        let capacity = config.slow_log_capacity;
        if capacity == 0 {
            return;
        }
        let mut state = lock(&self.inner.state);
        while state.slow_log.len() >= capacity {
            state.slow_log.pop_back();
        }
        state.slow_log.push_front(entry);
    }

    /// Records one connection acquire (the tracing layer feeds sqlx's `sqlx::pool::acquire` events).
    pub fn observe_acquire(&self, waited: Duration) {
        lock(&self.inner.state).acquire.record(waited);
    }

    /// Waits until every EXPLAIN started so far has finished, or `timeout` passed; true if settled.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.settled.notified();
            if self.inner.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.pending.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// The `top` statements by total time (the overflow row included when it has any calls).
    pub fn statement_stats(&self, top: usize) -> Vec<StatementStats> {
        let state = lock(&self.inner.state);
        let mut all: Vec<StatementStats> =
            state.entries.iter().map(|(id, e)| e.stats(id)).collect();
        if state.overflow.hist.count() > 0 {
            all.push(state.overflow.stats(OVERFLOW_ID));
        }
        drop(state);
        all.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
        all.truncate(top);
        all
    }

    /// Statistics of one statement (by its SQL, any values), if it was seen.
    pub fn stats_for(&self, sql: &str) -> Option<StatementStats> {
        let fp = fingerprint::analyze(sql);
        lock(&self.inner.state)
            .entries
            .get(&fp.id)
            .map(|e| e.stats(&fp.id))
    }

    /// The slow-query log, newest first.
    pub fn slow_queries(&self) -> Vec<SlowQuery> {
        lock(&self.inner.state).slow_log.iter().cloned().collect()
    }

    /// Connection-acquire timings.
    pub fn acquire_stats(&self) -> AcquireStats {
        let state = lock(&self.inner.state);
        AcquireStats {
            count: state.acquire.count(),
            mean_ms: state.acquire.mean_ms(),
            p95_ms: state.acquire.quantile_ms(0.95),
            max_ms: state.acquire.max_ms(),
        }
    }

    /// (statements observed, fingerprints tracked, statements counted in the overflow row).
    pub fn counts(&self) -> (u64, usize, u64) {
        let state = lock(&self.inner.state);
        (
            state.statements,
            state.entries.len(),
            state.overflow.hist.count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MonitorConfig {
        MonitorConfig {
            max_fingerprints: 3,
            slow_log_capacity: 2,
            ..MonitorConfig::default()
        }
    }

    #[test]
    fn settings_from_the_environment() {
        let env: HashMap<&str, &str> = [
            ("DB_SLOW_QUERY_MS", "250"),
            ("DB_STATS_MAX_FINGERPRINTS", "0"),
            ("DB_EXPLAIN_SLOW", "off"),
            ("DB_MISESTIMATE_FACTOR", "0.5"),
            ("DB_SEQ_SCAN_MIN_ROWS", "nope"),
        ]
        .into();
        let c = MonitorConfig::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.slow_threshold, Duration::from_millis(250));
        assert_eq!(c.max_fingerprints, 1);
        assert!(!c.explain);
        assert_eq!(c.misestimate_factor, 10.0);
        assert_eq!(c.seq_scan_min_rows, 10_000.0);
        let d = MonitorConfig::from_lookup(|_| None);
        assert_eq!(d.slow_threshold, Duration::from_millis(100));
        assert!(d.explain);
    }

    #[test]
    fn values_aggregate_and_the_fingerprint_cap_holds() {
        let m = QueryMonitor::new(config());
        for i in 0..10 {
            m.observe(
                &format!("SELECT * FROM t WHERE id = {i}"),
                Duration::from_millis(i + 1),
                1,
                0,
            );
        }
        let s = m.stats_for("select * from t where id = $1").unwrap();
        assert_eq!(s.calls, 10);
        assert_eq!(s.rows, 10);
        assert!((s.mean_ms - 5.5).abs() < 1e-9);
        assert_eq!(s.max_ms, 10.0);
        assert!((9.0..=10.0).contains(&s.p95_ms), "{}", s.p95_ms);
        for t in ["a", "b", "c", "d"] {
            m.observe(
                &format!("select 1 from {t}"),
                Duration::from_millis(1),
                0,
                0,
            );
        }
        let (statements, tracked, overflow) = m.counts();
        assert_eq!((statements, tracked, overflow), (14, 3, 2));
        let top = m.statement_stats(10);
        assert_eq!(top[0].calls, 10);
        assert!(
            top.iter()
                .any(|s| s.fingerprint_id == OVERFLOW_ID && s.calls == 2)
        );
        assert_eq!(m.statement_stats(1).len(), 1);
    }

    #[test]
    fn slow_statements_without_an_explainer_are_logged_with_the_reason() {
        let m = QueryMonitor::new(config());
        m.observe("select pg_sleep(1)", Duration::from_millis(150), 1, 0);
        m.observe("BEGIN", Duration::from_millis(150), 0, 0);
        m.observe("select 1", Duration::from_millis(5), 1, 0);
        m.observe("select 2; select 3", Duration::from_millis(500), 1, 0);
        let slow = m.slow_queries();
        assert_eq!(slow.len(), 2, "capacity 2 keeps the newest");
        assert!(slow[0].plan_status.contains("several statements"));
        assert!(
            slow[1]
                .plan_status
                .contains("a begin statement cannot be explained")
        );
        assert!(slow.iter().all(|s| s.plan.is_none()));
        let all = m.statement_stats(10);
        assert_eq!(all.iter().map(|s| s.slow_calls).sum::<u64>(), 3);
    }
}
