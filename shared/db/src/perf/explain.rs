//! Plans for slow statements, fetched on a separate connection after the statement finished.
//!
//! Safety rules: never `EXPLAIN ANALYZE` (that runs the statement again), always inside a
//! `READ ONLY` transaction that is rolled back (a second guard: even if something did execute,
//! it could not write), with its own short `statement_timeout`/`lock_timeout`, through the
//! extended protocol (the server refuses several statements in one text there).
//!
//! Statements with `$n` parameters: the values are not available (sqlx's log events do not carry
//! them), so the statement is `PREPARE`d and explained with `EXECUTE name(NULL, …)` under
//! `plan_cache_mode = force_generic_plan`: the planner then builds the generic plan, which does
//! not look at the parameter values at all, instead of a custom plan for NULLs (for which
//! `col = NULL` folds to a constant false and the plan is an empty `Result` — useless).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool};

use super::plan;

/// How a slow statement's plan was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMethod {
    /// `EXPLAIN (FORMAT JSON) <statement>`: the statement has no parameters, the plan is the one
    /// the server would choose for exactly this text.
    Explain,
    /// `PREPARE` + `EXPLAIN EXECUTE` under `force_generic_plan`: the plan for unknown parameter
    /// values; estimates use default selectivities and may differ from the custom plans the
    /// server builds for the first executions with real values.
    GenericPlan,
}

/// A plan and the facts read alongside it.
#[derive(Debug, Clone)]
pub(crate) struct PlanInfo {
    /// The `EXPLAIN (FORMAT JSON)` output.
    pub plan: Value,
    pub method: PlanMethod,
    /// `pg_class.reltuples` of the relations the plan scans sequentially.
    pub relation_rows: HashMap<String, f64>,
    pub work_mem_bytes: Option<u64>,
    pub explained_at: chrono::DateTime<chrono::Utc>,
}

/// Runs EXPLAINs on a private one-connection pool, so they never take a connection from the
/// application and their own statements are not observed (statement logging is off there).
pub(crate) struct Explainer {
    pool: PgPool,
    timeout: Duration,
    work_mem: tokio::sync::OnceCell<Option<u64>>,
    counter: AtomicU64,
}

impl Explainer {
    pub(crate) fn new(options: &PgConnectOptions, timeout: Duration) -> Self {
        let options = options.clone().disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(timeout)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(options);
        Self {
            pool,
            timeout,
            work_mem: tokio::sync::OnceCell::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// `work_mem`, read once per process with `SHOW work_mem`.
    async fn work_mem(&self, conn: &mut PgConnection) -> Option<u64> {
        if let Some(v) = self.work_mem.get() {
            return *v;
        }
        let shown: Result<String, _> = sqlx::query_scalar("SHOW work_mem")
            .fetch_one(&mut *conn)
            .await;
        let value = shown.ok().and_then(|s| plan::parse_memory_setting(&s));
        let _ = self.work_mem.set(value);
        value
    }

    /// The plan of `sql`, which uses parameters `$1..=$params`.
    pub(crate) async fn explain(&self, sql: &str, params: u32) -> Result<PlanInfo, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let work_mem_bytes = self.work_mem(&mut conn).await;
        let name = format!(
            "db_perf_explain_{}",
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let mut prepared = false;
        let result = self
            .explain_in_transaction(&mut conn, sql, params, &name, &mut prepared)
            .await;
        if prepared {
            // Prepared statements outlive transactions: drop ours, or the connection if that fails.
            let dealloc = format!("DEALLOCATE {name}");
            if sqlx::query(AssertSqlSafe(dealloc))
                .persistent(false)
                .execute(&mut *conn)
                .await
                .is_err()
            {
                conn.close_on_drop();
            }
        }
        if result.is_err() {
            // Whatever state the failure left behind goes with the connection.
            conn.close_on_drop();
        }
        let (plan, method, relation_rows) = result?;
        Ok(PlanInfo {
            plan,
            method,
            relation_rows,
            work_mem_bytes,
            explained_at: chrono::Utc::now(),
        })
    }

    async fn explain_in_transaction(
        &self,
        conn: &mut PgConnection,
        sql: &str,
        params: u32,
        name: &str,
        prepared: &mut bool,
    ) -> Result<(Value, PlanMethod, HashMap<String, f64>), sqlx::Error> {
        let mut tx = conn.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await?;
        let ms = self.timeout.as_millis().max(1);
        let limits = format!("SET LOCAL statement_timeout = {ms}");
        sqlx::query(AssertSqlSafe(limits))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        let limits = format!("SET LOCAL lock_timeout = {ms}");
        sqlx::query(AssertSqlSafe(limits))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        let (plan, method) = if params == 0 {
            let text = format!("EXPLAIN (FORMAT JSON) {sql}");
            let plan: Value = sqlx::query_scalar(AssertSqlSafe(text))
                .persistent(false)
                .fetch_one(&mut *tx)
                .await?;
            (plan, PlanMethod::Explain)
        } else {
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(&mut *tx)
                .await?;
            let prepare = format!("PREPARE {name} AS {sql}");
            sqlx::query(AssertSqlSafe(prepare))
                .persistent(false)
                .execute(&mut *tx)
                .await?;
            *prepared = true;
            let nulls = vec!["NULL"; params as usize].join(", ");
            let text = format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})");
            let plan: Value = sqlx::query_scalar(AssertSqlSafe(text))
                .persistent(false)
                .fetch_one(&mut *tx)
                .await?;
            (plan, PlanMethod::GenericPlan)
        };
        let mut relation_rows = HashMap::new();
        if let Some(root) = plan::plan_root(&plan) {
            let names = plan::seq_scan_relations(root);
            if !names.is_empty() {
                let rows: Vec<(String, Option<f64>)> = sqlx::query_as(
                    "SELECT n, c.reltuples::float8 FROM unnest($1::text[]) AS n \
                     LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(n))",
                )
                .bind(&names)
                .fetch_all(&mut *tx)
                .await?;
                relation_rows.extend(rows.into_iter().filter_map(|(n, r)| Some((n, r?))));
            }
        }
        tx.rollback().await?;
        Ok((plan, method, relation_rows))
    }
}
