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
    /// The cache settings are contradictory or invalid.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}

/// Whether this process runs inside AWS Lambda.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Logs to stdout: JSON lines in Lambda (CloudWatch Logs Insights parses them), readable text
/// locally. RUST_LOG filters (default `info`); LOG_FORMAT=json|text overrides the choice.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => in_lambda(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: tests and the local server may call this more than once.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
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
pub async fn cache() -> Result<Option<cache::CacheService>, StartupError> {
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
    Ok(Some(cache::CacheService::from_env().await?))
}

/// The database pool (lazy: built without connecting), from DATABASE_URL or DATABASE_SECRET_ARN.
pub async fn database(aws: &aws_config::SdkConfig) -> Result<PgPool, StartupError> {
    let options = db::connect_options_from_env(Some(aws)).await?;
    Ok(db::lazy_pool(options, &db::PoolSettings::from_env()))
}
