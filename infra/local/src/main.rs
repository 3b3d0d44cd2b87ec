//! `local-server`: the whole API on one port, as API Gateway and Lambda would serve it.
//!
//!   local-server serve            set up resources, migrate, seed, print tokens, serve
//!   local-server token ROLE       print a bearer token for the demo user of ROLE

use auth::Role;
use local::{LocalConfig, LocalError, Services, resources, seed};
use sqlx::migrate::MigrateDatabase;
use storage::ObjectStore;

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
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let processing_url = resources::ensure_queue(
        &sqs,
        &format!("{}file-processing", config.queue_prefix),
        900,
        3,
    )
    .await?;

    let users = seed::seed_demo_users(&pool).await?;
    let authority = config.authority();
    println!("Demo users (tokens valid {} h):", TOKEN_TTL_SECONDS / 3600);
    for user in &users {
        let token = seed::demo_token(&authority, user.role, TOKEN_TTL_SECONDS)?;
        println!("  {:<8} {}\n    {token}", user.role, user.email);
    }

    let services = Services {
        pool,
        store: ObjectStore::new(s3, config.bucket.clone()),
        processing: files::ProcessingQueue::new(sqs, processing_url),
        cache: bootstrap::cache()
            .await
            .map_err(|e| LocalError::Config(e.to_string()))?,
    };
    let app = local::app(&services, authority);
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    println!("API listening on http://{}", config.addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
