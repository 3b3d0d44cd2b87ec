//! pg_stat_statements' view of the busiest statements, when the extension is there.

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use sqlx::{Row, postgres::PgConnection};

/// Statement texts in the report are cut to this many characters.
pub const MAX_QUERY_CHARS: usize = 2048;

/// One row of pg_stat_statements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopStatement {
    /// pg_stat_statements' own statement id.
    pub queryid: Option<i64>,
    /// The normalised text as the server keeps it (`$1` for values).
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Total execution time.
    pub total_ms: f64,
    /// Mean execution time.
    pub mean_ms: f64,
    /// Rows returned or affected, summed.
    pub rows: i64,
}

/// The pg_stat_statements section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PgStatStatements {
    /// The top statements by total execution time in the current database.
    Available {
        /// Busiest first.
        statements: Vec<TopStatement>,
    },
    /// Why there is nothing to show.
    NotAvailable {
        /// What is missing.
        reason: String,
    },
}

fn truncate(s: String) -> String {
    if s.chars().count() <= MAX_QUERY_CHARS {
        s
    } else {
        let mut cut: String = s.chars().take(MAX_QUERY_CHARS).collect();
        cut.push('…');
        cut
    }
}

fn top_statement(row: &PgRow) -> Result<TopStatement, sqlx::Error> {
    Ok(TopStatement {
        queryid: row.try_get("queryid")?,
        query: truncate(
            row.try_get::<Option<String>, _>("query")?
                .unwrap_or_default(),
        ),
        calls: row.try_get("calls")?,
        total_ms: row.try_get("total_exec_time")?,
        mean_ms: row.try_get("mean_exec_time")?,
        rows: row.try_get("rows")?,
    })
}

/// Whether `pg_stat_statements` is listed in a `shared_preload_libraries` value.
fn preloaded(shared_preload_libraries: &str) -> bool {
    shared_preload_libraries
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .any(|s| s == "pg_stat_statements")
}

async fn query_top(conn: &mut PgConnection, limit: i64) -> Result<PgStatStatements, sqlx::Error> {
    let installed: Option<String> = sqlx::query_scalar(
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let libraries: String =
        sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
            .fetch_one(&mut *conn)
            .await?;
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await?;
    if !preloaded(&libraries) {
        return Ok(PgStatStatements::NotAvailable {
            reason: format!(
                "pg_stat_statements is not in shared_preload_libraries (currently '{libraries}'); it must be preloaded (server restart) {}",
                if installed.is_some() {
                    "before its view can be read"
                } else {
                    "and then installed with CREATE EXTENSION pg_stat_statements"
                }
            ),
        });
    }
    if installed.is_none() {
        return Ok(PgStatStatements::NotAvailable {
            reason: "pg_stat_statements is preloaded but not installed in this database: run CREATE EXTENSION pg_stat_statements".into(),
        });
    }
    if version < 130_000 {
        return Ok(PgStatStatements::NotAvailable {
            reason: format!("PostgreSQL {version} predates the total_exec_time columns (13+)"),
        });
    }
    let rows = sqlx::query(
        "SELECT queryid, query, calls, total_exec_time, mean_exec_time, rows \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY total_exec_time DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let statements = rows
        .iter()
        .map(top_statement)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PgStatStatements::Available { statements })
}

/// The `limit` statements with the most total execution time in the pool's database, or why
/// that cannot be known. Never fails: errors become `NotAvailable` with the error as the reason.
pub async fn pg_stat_statements_top(pool: &PgPool, limit: usize) -> PgStatStatements {
    let limit = i64::try_from(limit.min(1000)).unwrap_or(1000);
    let work = async {
        let mut conn = pool.acquire().await?;
        query_top(&mut conn, limit).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), work).await {
        Ok(Ok(section)) => section,
        Ok(Err(e)) => PgStatStatements::NotAvailable {
            reason: format!("querying pg_stat_statements failed: {e}"),
        },
        Err(_) => PgStatStatements::NotAvailable {
            reason: "querying pg_stat_statements took more than 5 s".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_list_parsing() {
        assert!(preloaded("pg_stat_statements"));
        assert!(preloaded("auto_explain, pg_stat_statements"));
        assert!(preloaded("\"pg_stat_statements\""));
        assert!(!preloaded(""));
        assert!(!preloaded("pg_stat_statements_x"));
    }

    #[test]
    fn long_texts_are_cut() {
        assert_eq!(truncate("abc".into()), "abc");
        let long = "x".repeat(MAX_QUERY_CHARS + 10);
        assert_eq!(truncate(long).chars().count(), MAX_QUERY_CHARS + 1);
    }
}
