//! Process start-up shared by every function binary: logging, the AWS SDK configuration, the
//! database pool and environment variables. Everything here runs once per process (cold start).

use tracing_subscriber::EnvFilter;

pub use db::PgPool;

/// A start-up failure; the process exits with it (Lambda reports an init error).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A required environment variable is missing or empty.
    #[error("environment variable {0} must be set")]
    MissingEnv(&'static str),
    /// The database could not be configured.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// A secret could not be read.
    #[error("could not read a secret: {0}")]
    Secret(String),
    /// The cache settings are contradictory or invalid.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// The metrics settings are invalid.
    #[error("metrics: {0}")]
    Monitoring(String),
    /// The job queues or tables are not configured.
    #[error("job queues: {0}")]
    Jobs(#[from] jobs::Error),
}

/// The job clients, settings and producer of this process (queue URLs and tables from the
/// environment; see the jobs crate's README).
pub async fn jobs(
    aws: &aws_config::SdkConfig,
) -> Result<(jobs::Clients, jobs::JobsConfig, jobs::Producer), StartupError> {
    let config = jobs::JobsConfig::from_env()?;
    let clients = jobs::Clients::new(aws);
    let producer = jobs::Producer::from_config(&clients, &config).await?;
    Ok((clients, config, producer))
}

/// Whether this process runs inside AWS Lambda.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Logs to stdout: JSON lines in Lambda (CloudWatch Logs Insights parses them), readable text
/// locally. RUST_LOG filters (default `info`); LOG_FORMAT=json|text overrides the choice.
/// Every SQL statement also reaches the process's query monitor (statistics, slow-query plans)
/// and the current request's or job's metrics, whatever RUST_LOG says.
pub fn init_tracing() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => in_lambda(),
    };
    let output = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_filter(filter)
            .boxed()
    };
    db::perf::set_statement_observer(|elapsed| {
        monitoring::record::db_query(elapsed);
    });
    // try_init: tests and the local server may call this more than once.
    let _ = tracing_subscriber::registry()
        .with(output)
        .with(db::QueryMonitor::global().layer())
        .try_init();
}

/// The metrics of this process (EMF on stdout; the real-time view in Redis when a cache is
/// configured), named by METRICS_SERVICE and METRICS_NAMESPACE.
pub fn monitor(cache: Option<cache::CacheService>) -> Result<monitoring::Monitor, StartupError> {
    monitoring::Monitor::from_env(cache).map_err(|e| StartupError::Monitoring(e.to_string()))
}

/// The AWS SDK configuration from the standard chain; honours AWS_ENDPOINT_URL for local use.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A required environment variable.
pub fn required_env(name: &'static str) -> Result<String, StartupError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(StartupError::MissingEnv(name))
}

/// The Redis/ElastiCache client when one is configured (REDIS_HOST, REDIS_URL or an ElastiCache
/// id), else None: the API then runs without a response cache (every response `X-Cache: BYPASS`).
/// An unreachable Redis is not an error: the cache reports itself unavailable until it answers.
/// REDIS_PASSWORD_SECRET_ARN names a Secrets Manager secret holding the AUTH token, read once here
/// so the token never sits in the function's environment.
pub async fn cache(
    aws: &aws_config::SdkConfig,
) -> Result<Option<cache::CacheService>, StartupError> {
    let configured = [
        "REDIS_HOST",
        "REDIS_URL",
        "ELASTICACHE_REPLICATION_GROUP_ID",
        "ELASTICACHE_SERVERLESS_CACHE_NAME",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    if !configured || std::env::var("CACHE_DISABLED").is_ok_and(|v| v == "true") {
        tracing::warn!("no Redis configured: response caching is off");
        return Ok(None);
    }
    let mut config = cache::CacheConfig::from_env()?;
    if let Ok(arn) = std::env::var("REDIS_PASSWORD_SECRET_ARN")
        && !arn.trim().is_empty()
    {
        config.password = Some(redis_token(aws, &arn).await?);
    }
    Ok(Some(cache::CacheService::connect(config).await?))
}

async fn redis_token(aws: &aws_config::SdkConfig, arn: &str) -> Result<String, StartupError> {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let secret = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            StartupError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        })?;
    let text = secret
        .secret_string()
        .ok_or_else(|| StartupError::Secret("the Redis token secret has no string value".into()))?;
    Ok(token_from_secret(text))
}

/// The token is the whole secret string, or a `token` / `password` / `auth_token` field of JSON.
fn token_from_secret(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            ["token", "password", "auth_token"]
                .iter()
                .find_map(|k| v.get(k).and_then(|t| t.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| text.trim().to_owned())
}

/// The database pool (lazy: built without connecting), from DATABASE_URL or DATABASE_SECRET_ARN.
pub async fn database(aws: &aws_config::SdkConfig) -> Result<PgPool, StartupError> {
    let options = db::connect_options_from_env(Some(aws)).await?;
    let pool = db::lazy_pool(options, &db::PoolSettings::from_env());
    // Slow statements are explained (plain EXPLAIN, never ANALYZE) on this pool.
    db::QueryMonitor::global().explain_with(&pool);
    Ok(pool)
}

/// The writer pool and, when DATABASE_READ_URL is set, a read-replica pool for read-only
/// queries (both lazy).
pub async fn databases(aws: &aws_config::SdkConfig) -> Result<db::Db, StartupError> {
    let dbs = db::Db::from_env(Some(aws), &db::PoolSettings::from_env()).await?;
    db::QueryMonitor::global().explain_with(dbs.writer());
    Ok(dbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_tokens_come_from_plain_or_json_secrets() {
        assert_eq!(token_from_secret("s3cret\n"), "s3cret");
        assert_eq!(token_from_secret(r#"{"token":"abc"}"#), "abc");
        assert_eq!(token_from_secret(r#"{"password":"p"}"#), "p");
    }
}
