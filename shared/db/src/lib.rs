//! PostgreSQL access shared by every function: the pool (built once per process), the embedded
//! migrations, and where the connection string comes from (env or Secrets Manager); the writer
//! and read-replica pools ([`Db`]); query monitoring ([`perf`]); UNNEST batch inserts ([`batch`]).

pub mod audit;
pub mod batch;
pub mod perf;
pub mod replica;

use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;
use serde::Deserialize;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use batch::{BatchInsertOutcome, UnnestInsert};
pub use perf::{QueryMonitor, QueryReport};
pub use replica::{Db, PoolStats, PoolsStats};
pub use sqlx::PgPool;

/// The migrations under `migrations/`, embedded in every binary that needs them.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Why the database could not be configured or reached.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Neither DATABASE_URL nor DATABASE_SECRET_ARN is set.
    #[error("set DATABASE_URL or DATABASE_SECRET_ARN")]
    NotConfigured,
    /// The connection string or secret could not be parsed.
    #[error("invalid database configuration: {0}")]
    InvalidConfig(String),
    /// Secrets Manager refused or failed.
    #[error("could not read the database secret: {0}")]
    Secret(String),
    /// A database operation failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A caller passed something unusable (an identifier or type name, an empty column list).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Pool settings; defaults suit a Lambda container, which serves one request at a time.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// DB_MAX_CONNECTIONS (default 5).
    pub max_connections: u32,
    /// DB_ACQUIRE_TIMEOUT_MS (default 3000): how long a request waits for a connection before
    /// failing with 503 instead of hanging.
    pub acquire_timeout: Duration,
    /// DB_STATEMENT_TIMEOUT_MS (default 10000), enforced by the server.
    pub statement_timeout: Duration,
}

impl PoolSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Self {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Self {
            max_connections: num("DB_MAX_CONNECTIONS", 5) as u32,
            acquire_timeout: Duration::from_millis(num("DB_ACQUIRE_TIMEOUT_MS", 3000)),
            statement_timeout: Duration::from_millis(num("DB_STATEMENT_TIMEOUT_MS", 10_000)),
        }
    }
}

/// The fields of an RDS-managed (or hand-made) database secret.
#[derive(Debug, Deserialize)]
struct DbSecret {
    username: String,
    password: String,
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default, alias = "dbname", alias = "database")]
    dbname: Option<String>,
}

fn default_port() -> u16 {
    5432
}

/// Connection options from DATABASE_URL, or from the secret named by DATABASE_SECRET_ARN.
pub async fn connect_options_from_env(
    aws: Option<&aws_config::SdkConfig>,
) -> Result<PgConnectOptions, DbError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return PgConnectOptions::from_str(&url).map_err(|e| DbError::InvalidConfig(e.to_string()));
    }
    let arn = std::env::var("DATABASE_SECRET_ARN").map_err(|_| DbError::NotConfigured)?;
    let aws = aws.ok_or(DbError::NotConfigured)?;
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let secret = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| {
            DbError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        })?;
    let text = secret
        .secret_string()
        .ok_or_else(|| DbError::Secret("the secret has no string value".into()))?;
    options_from_secret(text)
}

fn options_from_secret(text: &str) -> Result<PgConnectOptions, DbError> {
    let s: DbSecret =
        serde_json::from_str(text).map_err(|e| DbError::InvalidConfig(format!("secret: {e}")))?;
    let mut opts = PgConnectOptions::new()
        .host(&s.host)
        .port(s.port)
        .username(&s.username)
        .password(&s.password);
    if let Some(db) = s.dbname {
        opts = opts.database(&db);
    }
    Ok(opts)
}

/// Builds the pool without connecting: a cold start never waits for (or dies of) the database;
/// the first query does, bounded by the acquire timeout.
///
/// Every statement and every connection acquire is reported as a `Debug` tracing event
/// (`sqlx::query`, `sqlx::pool::acquire`): that is what [`perf::QueryMonitor`]'s layer
/// aggregates. sqlx only formats them when a subscriber wants them, so this costs nothing
/// without the layer.
pub fn lazy_pool(options: PgConnectOptions, settings: &PoolSettings) -> PgPool {
    let statement_timeout = settings.statement_timeout.as_millis().to_string();
    let options = options
        .options([("statement_timeout", statement_timeout.as_str())])
        .log_statements(LevelFilter::Debug);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .acquire_time_level(LevelFilter::Debug)
        // Lambda freezes idle containers; connections older than this are likely dead on thaw.
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether an error means the database is unreachable or overloaded (answer 503), rather than a bug.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// Whether an error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_in_the_rds_shape_is_accepted() {
        let opts = options_from_secret(
            r#"{"username":"app","password":"p@ss","host":"db.example","port":6543,"dbname":"cad","engine":"postgres"}"#,
        )
        .unwrap();
        assert_eq!(opts.get_host(), "db.example");
        assert_eq!(opts.get_port(), 6543);
        assert_eq!(opts.get_database(), Some("cad"));
        assert!(options_from_secret("{}").is_err());
    }

    #[test]
    fn every_index_migration_runs_outside_a_transaction() {
        for m in MIGRATOR.iter() {
            if m.sql.as_str().contains("CONCURRENTLY") {
                assert!(
                    m.no_tx,
                    "migration {} builds an index concurrently inside a transaction",
                    m.version
                );
                let statements = m.sql.as_str().split(';').filter(|s| {
                    s.lines()
                        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
                });
                assert_eq!(
                    statements.count(),
                    1,
                    "migration {} must hold exactly one statement",
                    m.version
                );
            }
        }
    }
}
