//! `local-server`: the whole API on one port, as API Gateway and Lambda would serve it.
//!
//!   local-server serve            set up resources, migrate, seed, print tokens, serve
//!   local-server token ROLE       print a bearer token for the demo user of ROLE

use auth::Role;
use local::jobs::PollSettings;
use local::{LocalConfig, LocalError, Services, resources, seed};
use sqlx::migrate::MigrateDatabase;
use storage::ObjectStore;
use tokio_util::sync::CancellationToken;

const TOKEN_TTL_SECONDS: i64 = 12 * 3600;

#[tokio::main]
async fn main() {
    bootstrap::init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("token") => token(args.get(1).map(String::as_str).unwrap_or("engineer")),
        Some(other) => Err(LocalError::Config(format!(
            "unknown command {other:?}; use `serve` or `token ROLE`"
        ))),
    };
    if let Err(err) = result {
        eprintln!("local-server: {err}");
        std::process::exit(1);
    }
}

/// Emulates the template's EventBridge schedule of the cache-warmer function.
fn spawn_cache_warmer(services: &Services) {
    if services.cache.is_none() {
        return;
    }
    let interval: u64 = std::env::var("CACHE_WARM_INTERVAL_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let paths = response_pipeline::warm::parse_paths(
        &std::env::var("CACHE_WARM_PATHS")
            .unwrap_or_else(|_| "/api/files,/api/files?sort=name".into()),
    );
    if let Err(err) = response_pipeline::warm::check_paths(&paths) {
        tracing::error!(error = %err, "CACHE_WARM_PATHS refused; the local cache warmer is off");
        return;
    }
    let Some(router) = local::function_app(services, "files-api") else {
        return;
    };
    let claims = [("sub", "service:cache-warmer"), ("custom:role", "viewer")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let context = auth::request_context(claims, "GET", "/");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(interval.max(10)));
        loop {
            tick.tick().await;
            response_pipeline::warm::warm(&router, &paths, &context).await;
        }
    });
}

fn token(role: &str) -> Result<(), LocalError> {
    let role: Role = role.parse().map_err(LocalError::Config)?;
    let config = LocalConfig::from_env()?;
    println!(
        "{}",
        seed::demo_token(&config.authority(), role, TOKEN_TTL_SECONDS)?
    );
    Ok(())
}

async fn serve() -> Result<(), LocalError> {
    let config = LocalConfig::from_env()?;
    let database_url =
        bootstrap::required_env("DATABASE_URL").map_err(|e| LocalError::Config(e.to_string()))?;
    if !sqlx::Postgres::database_exists(&database_url).await? {
        sqlx::Postgres::create_database(&database_url).await?;
    }
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws)
        .await
        .map_err(|e| LocalError::Config(e.to_string()))?;
    db::migrate(&pool).await?;

    let s3 = storage::s3_client(&aws);
    resources::ensure_bucket(&s3, &config.bucket).await?;
    let jobs = local::jobs::setup(&aws, &config.queue_prefix, None).await?;
    let notifications = local_notifications(&aws, &pool).await?;

    let users = seed::seed_demo_users(&pool).await?;
    let authority = config.authority();
    println!("Demo users (tokens valid {} h):", TOKEN_TTL_SECONDS / 3600);
    for user in &users {
        let token = seed::demo_token(&authority, user.role, TOKEN_TTL_SECONDS)?;
        println!("  {:<8} {}\n    {token}", user.role, user.email);
    }

    let cache = bootstrap::cache(&aws)
        .await
        .map_err(|e| LocalError::Config(e.to_string()))?;
    let monitor =
        bootstrap::monitor(cache.clone()).map_err(|e| LocalError::Config(e.to_string()))?;
    let services = Services {
        pool,
        store: ObjectStore::new(s3, config.bucket.clone()),
        cache,
        jobs,
        notifications,
        monitor,
    };
    let shutdown = CancellationToken::new();
    let workers = local::jobs::spawn_workers(&services, PollSettings::default(), shutdown.clone())?;
    println!(
        "Workers polling the five queues: file-processing, ai-training, search-indexing, notifications, reports"
    );
    spawn_cache_warmer(&services);
    let app = local::app(&services, authority);
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    println!("API listening on http://{}", config.addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Let the workers finish the batches they hold, as Lambda would before freezing.
    shutdown.cancel();
    let _ = workers.await;
    Ok(())
}

/// The notifications worker's handler with local defaults: a sender identity verified in moto's
/// SES and a local webhook signing key, unless the environment sets them.
async fn local_notifications(
    aws: &aws_config::SdkConfig,
    pool: &db::PgPool,
) -> Result<notifications::NotificationsHandler, LocalError> {
    let from = std::env::var("NOTIFICATIONS_EMAIL_FROM")
        .unwrap_or_else(|_| "notifications@cad-platform.local".to_owned());
    let ses = aws_sdk_sesv2::Client::new(aws);
    notifications::ensure_sender_identity(&ses, &from)
        .await
        .map_err(|e| LocalError::Aws(e.to_string()))?;
    let secret = std::env::var("NOTIFICATIONS_WEBHOOK_SECRET")
        .unwrap_or_else(|_| "local-webhook-secret-not-for-production".to_owned());
    let config = notifications::NotificationsConfig {
        email_from: Some(from),
        webhook_secret: Some(secret.into_bytes()),
        webhook_timeout: std::time::Duration::from_secs(5),
    };
    let http = notifications::webhook::http_client(config.webhook_timeout)
        .map_err(|e| LocalError::Config(e.to_string()))?;
    Ok(notifications::NotificationsHandler::new(
        pool.clone(),
        http,
        ses,
        &config,
    ))
}
