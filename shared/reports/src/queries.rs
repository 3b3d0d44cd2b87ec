//! The SQL behind each report. Every query is bounded: by the date range, and by a row limit
//! (one extra row is fetched to tell whether the limit cut anything).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ReportsError;
use crate::payload::DateRange;
use crate::table::{Cell, Table};

/// Most rows a table may hold (bounds the worker's memory: an audit row is well under 1 KiB).
pub const MAX_ROWS: usize = 100_000;
/// Most rows of the failures table.
pub const MAX_FAILURE_ROWS: usize = 1_000;

fn limited<T>(mut rows: Vec<T>, max: usize) -> (Vec<T>, bool) {
    let truncated = rows.len() > max;
    rows.truncate(max);
    (rows, truncated)
}

/// Usage: files and bytes uploaded in the range per user and project (`by_user_project`), and
/// uploads per day including days without any (`daily_uploads`). `only` restricts to one user.
pub async fn usage(
    pool: &PgPool,
    range: &DateRange,
    only: Option<Uuid>,
) -> Result<Vec<Table>, ReportsError> {
    let rows: Vec<(Uuid, String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT f.uploaded_by, u.username, f.project_name, count(*), sum(f.file_size)::bigint \
         FROM cad_files f JOIN users u ON u.id = f.uploaded_by \
         WHERE f.created_at >= $1 AND f.created_at < $2 AND ($3::uuid IS NULL OR f.uploaded_by = $3) \
         GROUP BY f.uploaded_by, u.username, f.project_name \
         ORDER BY 5 DESC, 2, 3 NULLS FIRST LIMIT $4",
    )
    .bind(range.start())
    .bind(range.end())
    .bind(only)
    .bind((MAX_ROWS + 1) as i64)
    .fetch_all(pool)
    .await?;
    let (rows, truncated) = limited(rows, MAX_ROWS);
    let mut by_user = Table::new(
        "by_user_project",
        &["user_id", "username", "project", "files", "bytes"],
    );
    by_user.truncated = truncated;
    by_user.rows = rows
        .into_iter()
        .map(|(id, name, project, files, bytes)| {
            vec![
                id.to_string().into(),
                name.into(),
                project.into(),
                files.into(),
                bytes.into(),
            ]
        })
        .collect();

    let days: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(
        "SELECT d::date, count(f.id), COALESCE(sum(f.file_size), 0)::bigint, \
                count(DISTINCT f.uploaded_by) \
         FROM generate_series($1::date, $2::date, interval '1 day') AS d \
         LEFT JOIN cad_files f ON f.created_at >= d AND f.created_at < d + interval '1 day' \
              AND ($3::uuid IS NULL OR f.uploaded_by = $3) \
         GROUP BY d ORDER BY d",
    )
    .bind(range.from)
    .bind(range.to)
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut daily = Table::new("daily_uploads", &["date", "uploads", "bytes", "uploaders"]);
    daily.rows = days
        .into_iter()
        .map(|(d, n, bytes, users)| {
            vec![d.to_string().into(), n.into(), bytes.into(), users.into()]
        })
        .collect();
    Ok(vec![by_user, daily])
}

/// Performance, from what the database records: processing outcomes of files uploaded in the
/// range (`files_by_status`), search latency from `search_queries` (`search_latency`), and
/// the latest processing failures (`processing_failures`). Lambda durations, cold starts and
/// cache hit rates live in CloudWatch (EMF metrics), not here, so they are not in this report.
pub async fn performance(
    pool: &PgPool,
    range: &DateRange,
    only: Option<Uuid>,
) -> Result<Vec<Table>, ReportsError> {
    let statuses: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT s.status, count(f.id), COALESCE(sum(f.file_size), 0)::bigint \
         FROM unnest(ARRAY['uploading', 'processing', 'ready', 'failed']) AS s(status) \
         LEFT JOIN cad_files f ON f.status = s.status AND f.created_at >= $1 AND f.created_at < $2 \
              AND ($3::uuid IS NULL OR f.uploaded_by = $3) \
         GROUP BY s.status ORDER BY array_position(ARRAY['uploading', 'processing', 'ready', 'failed'], s.status)",
    )
    .bind(range.start())
    .bind(range.end())
    .bind(only)
    .fetch_all(pool)
    .await?;
    let total: i64 = statuses.iter().map(|s| s.1).sum();
    let mut by_status = Table::new(
        "files_by_status",
        &["status", "files", "bytes", "share_pct"],
    );
    by_status.rows = statuses
        .into_iter()
        .map(|(status, n, bytes)| {
            let share = if total > 0 {
                Cell::Float(n as f64 * 100.0 / total as f64)
            } else {
                Cell::Null
            };
            vec![status.into(), n.into(), bytes.into(), share]
        })
        .collect();

    let (queries, avg, p50, p95, p99, empty): (
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        i64,
    ) = sqlx::query_as(
        "SELECT count(*), avg(duration_ms)::float8, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms), \
                    count(*) FILTER (WHERE result_count = 0) \
             FROM search_queries \
             WHERE created_at >= $1 AND created_at < $2 AND ($3::uuid IS NULL OR user_id = $3)",
    )
    .bind(range.start())
    .bind(range.end())
    .bind(only)
    .fetch_one(pool)
    .await?;
    let mut search = Table::new(
        "search_latency",
        &[
            "queries",
            "avg_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "zero_result_queries",
        ],
    );
    search.rows.push(vec![
        queries.into(),
        avg.into(),
        p50.into(),
        p95.into(),
        p99.into(),
        empty.into(),
    ]);

    let failures: Vec<FailureRow> = sqlx::query_as(
        "SELECT id, original_name, uploaded_by, processing_error, created_at, updated_at \
         FROM cad_files \
         WHERE status = 'failed' AND created_at >= $1 AND created_at < $2 \
           AND ($3::uuid IS NULL OR uploaded_by = $3) \
         ORDER BY updated_at DESC, id DESC LIMIT $4",
    )
    .bind(range.start())
    .bind(range.end())
    .bind(only)
    .bind((MAX_FAILURE_ROWS + 1) as i64)
    .fetch_all(pool)
    .await?;
    let (failures, truncated) = limited(failures, MAX_FAILURE_ROWS);
    let mut failed = Table::new(
        "processing_failures",
        &[
            "file_id",
            "original_name",
            "uploaded_by",
            "error",
            "uploaded_at",
            "failed_at",
        ],
    );
    failed.truncated = truncated;
    failed.rows = failures
        .into_iter()
        .map(|(id, name, by, err, created, updated)| {
            vec![
                id.to_string().into(),
                name.into(),
                by.to_string().into(),
                err.into(),
                created.into(),
                updated.into(),
            ]
        })
        .collect();
    Ok(vec![by_status, search, failed])
}

type FailureRow = (
    Uuid,
    String,
    Uuid,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

type AuditRow = (
    i64,
    DateTime<Utc>,
    Option<Uuid>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Value,
);

/// Audit: `audit_logs` rows in the range, oldest first, with the acting user's name.
pub async fn audit(pool: &PgPool, range: &DateRange) -> Result<Vec<Table>, ReportsError> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT a.id, a.created_at, a.user_id, u.username, a.action, a.resource_type, \
                a.resource_id, a.request_id, a.details \
         FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id \
         WHERE a.created_at >= $1 AND a.created_at < $2 \
         ORDER BY a.created_at, a.id LIMIT $3",
    )
    .bind(range.start())
    .bind(range.end())
    .bind((MAX_ROWS + 1) as i64)
    .fetch_all(pool)
    .await?;
    let (rows, truncated) = limited(rows, MAX_ROWS);
    let mut t = Table::new(
        "audit_log",
        &[
            "id",
            "at",
            "user_id",
            "username",
            "action",
            "resource_type",
            "resource_id",
            "request_id",
            "details",
        ],
    );
    t.truncated = truncated;
    t.rows = rows
        .into_iter()
        .map(|(id, at, user, name, action, rtype, rid, req, details)| {
            vec![
                id.into(),
                at.into(),
                user.map(|u| u.to_string()).into(),
                name.into(),
                action.into(),
                rtype.into(),
                rid.into(),
                req.into(),
                Cell::Json(details),
            ]
        })
        .collect();
    Ok(vec![t])
}

/// The requester's role name, if they exist and are active.
pub async fn active_role(pool: &PgPool, user: Uuid) -> Result<Option<String>, ReportsError> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT role FROM users WHERE id = $1 AND is_active")
            .bind(user)
            .fetch_optional(pool)
            .await?,
    )
}
