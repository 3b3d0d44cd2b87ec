//! Serves the admin router on a local port with demo data, for the dashboard's browser check.
//!
//! ```text
//! source infra/scripts/env.sh   # moto, PostgreSQL, Redis (make services)
//! cargo run -p admin --example dashboard_demo
//! ```
//!
//! It creates its own queues (`admin-demo-<tag>-…`) and tracking table in moto, puts jobs in
//! the queues and dead letters in two DLQs, records synthetic traffic into the monitor's Redis
//! view every second (under a unique key prefix), runs a few real statements through the query
//! monitor, and verifies bearer tokens like the local gateway (HS256, `LOCAL_JWT_SECRET`). It
//! prints the dashboard URL with an admin token, and removes what it created on Ctrl-C/SIGTERM.
//!
//! Variables: `ADMIN_DEMO_ADDR` (127.0.0.1:3900), `DATABASE_URL`, `REDIS_URL`
//! (redis://127.0.0.1:6379), `AWS_ENDPOINT_URL` (http://127.0.0.1:5005), `LOCAL_JWT_SECRET`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use admin::{AdminState, api_router, dashboard_router};
use auth::Role;
use auth::local::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, LocalAuthority, TokenRequest, bearer_token};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jobs::{Clients, Job, JobTracking, JobType, QueueName};
use monitoring::{CacheOutcome, JobOutcome, Monitor, MonitorConfig};
use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The local gateway's job: verify the bearer token, attach the authorizer context.
async fn authorize(
    State(authority): State<Arc<LocalAuthority>>,
    mut req: Request,
    next: Next,
) -> Response {
    let claims = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .and_then(|t| authority.verify(t).ok());
    let Some(claims) = claims else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({"message": "Unauthorized"})),
        )
            .into_response();
    };
    let ctx = auth::request_context(claims, req.method().as_str(), req.uri().path());
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

/// A cheap deterministic pseudo-random sequence (xorshift), so figures move between polls.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One second of synthetic platform traffic: requests on a few routes (a few slow ones, a few
/// 5xx), cache lookups (hit ratio around 75 %, under the guide's 80 %), job attempts.
async fn record_second(monitor: &Monitor, noise: &mut Noise) {
    let scope = monitor.scope();
    let routes = [
        ("/api/files/{id}", 40u64),
        ("/api/files", 120),
        ("/api/search", 260),
        ("/api/users/me", 15),
    ];
    for _ in 0..(8 + noise.below(8)) {
        let (route, base) = routes[noise.below(routes.len() as u64) as usize];
        let mut ms = base / 2 + noise.below(base);
        if noise.below(40) == 0 {
            ms += 1500 + noise.below(2500);
        }
        let status = if noise.below(50) == 0 { 503 } else { 200 };
        scope.http(&http::Method::GET, route, status, Duration::from_millis(ms));
    }
    for _ in 0..12 {
        let outcome = if noise.below(4) == 0 {
            CacheOutcome::Miss
        } else {
            CacheOutcome::Hit
        };
        scope.cache("cadFileMetadata", outcome);
    }
    for queue in ["file-processing", "search-indexing", "notifications"] {
        let outcome = match noise.below(30) {
            0 => JobOutcome::Dead,
            1 | 2 => JobOutcome::Failed,
            _ => JobOutcome::Succeeded,
        };
        scope.job(
            queue,
            outcome,
            Duration::from_millis(200 + noise.below(1800)),
        );
    }
    scope.flush().await;
}

async fn seed_queues(
    clients: &Clients,
    dir: &jobs::QueueDirectory,
    tracking: &JobTracking,
) -> Result<(), BoxError> {
    let send = |url: String, body: String| {
        let sqs = clients.sqs.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .map(|_| ())
        }
    };
    let counts = [
        (QueueName::FileProcessing, JobType::ProcessFile, 7),
        (QueueName::SearchIndexing, JobType::IndexFile, 3),
        (QueueName::Reports, JobType::GenerateReport, 1),
    ];
    for (q, t, n) in counts {
        for _ in 0..n {
            send(
                dir.get(q)?.url.clone(),
                Job::new(t, json!({"demo": true})).to_json()?,
            )
            .await?;
        }
    }
    let dead = [
        (
            QueueName::Reports,
            JobType::GenerateReport,
            "PDF renderer crashed: out of memory",
        ),
        (
            QueueName::Notifications,
            JobType::SendNotification,
            "SES throttled the request",
        ),
        (
            QueueName::Notifications,
            JobType::SendNotification,
            "recipient address rejected",
        ),
    ];
    for (q, t, error) in dead {
        let job = Job::new(t, json!({"demo": true}));
        tracking.record_queued(std::slice::from_ref(&job)).await?;
        let attempts = q.spec().retry.max_attempts;
        tracking.mark_failed(&job, attempts, error, true).await?;
        send(dir.get(q)?.dlq_url.clone(), job.to_json()?).await?;
    }
    Ok(())
}

/// A few real statements, seen by the query monitor's tracing layer (one slow enough to be
/// explained).
async fn run_statements(pool: &sqlx::PgPool) {
    for _ in 0..3 {
        let _ = sqlx::query("SELECT count(*) FROM pg_class WHERE relkind = 'r'")
            .fetch_one(pool)
            .await;
    }
    let _ = sqlx::query(
        "SELECT c.relname, pg_sleep(0.15) FROM pg_class c ORDER BY c.relname DESC LIMIT 1",
    )
    .fetch_all(pool)
    .await;
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let queries = db::QueryMonitor::global();
    tracing_subscriber::registry()
        .with(queries.layer())
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(tracing_subscriber::EnvFilter::new("warn,admin=info")),
        )
        .init();

    // Bind before creating anything, so a busy port leaves nothing behind.
    let listener = tokio::net::TcpListener::bind(var("ADMIN_DEMO_ADDR", "127.0.0.1:3900")).await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();

    // PostgreSQL: any database will do; the demo only reads.
    let options = sqlx::postgres::PgConnectOptions::from_str(&var(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    ))?;
    let pool = db::lazy_pool(options, &db::PoolSettings::from_env());
    queries.explain_with(&pool);

    // moto: queues, tracking table, demo jobs.
    let endpoint = var("AWS_ENDPOINT_URL", "http://127.0.0.1:5005");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new(var("AWS_REGION", "us-east-1")))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "demo",
        ))
        .load()
        .await;
    let clients = Clients::new(&sdk);
    let prefix = format!("admin-demo-{tag}-");
    let dir = jobs::local_source::create_queues(&clients.sqs, &prefix, &Default::default()).await?;
    let table = format!("admin-demo-jobs-{tag}");
    jobs::tracking::create_tracking_table(&clients.dynamodb, &table).await?;
    let tracking = JobTracking::new(
        clients.dynamodb.clone(),
        table.clone(),
        Duration::from_secs(86_400),
    );
    seed_queues(&clients, &dir, &tracking).await?;

    // Redis view under a unique prefix.
    let cache_prefix = format!("admin-demo:{tag}:");
    let mut cc = cache::CacheConfig::from_url(&var("REDIS_URL", "redis://127.0.0.1:6379"))?;
    cc.key_prefix = cache_prefix.clone();
    let cache = cache::CacheService::connect(cc).await?;
    let mc = MonitorConfig {
        service: "admin-demo".into(),
        emf: false,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::builder().config(mc).cache(cache).build()?;

    let state = AdminState::new(
        clients.sqs.clone(),
        dir.clone(),
        monitor.clone(),
        db::Db::new(pool.clone()),
    )
    .with_tracking(tracking);
    let authority = Arc::new(LocalAuthority::new(
        var(
            "LOCAL_JWT_SECRET",
            "local-development-secret-not-for-production",
        )
        .as_bytes(),
        &var("JWT_ISSUER", DEFAULT_ISSUER),
        &var("JWT_AUDIENCE", DEFAULT_AUDIENCE),
    ));
    let token = authority.mint(&TokenRequest {
        subject: format!("admin-demo-{tag}"),
        email: "admin-demo@example.com".into(),
        username: "admin-demo".into(),
        role: Role::Admin,
        ttl_seconds: 8 * 3600,
    })?;
    let app = Router::new()
        .merge(
            api_router(state).layer(middleware::from_fn_with_state(authority.clone(), authorize)),
        )
        .merge(dashboard_router())
        .layer(monitor.layer());

    // Traffic and statements in the background, so the charts move.
    let traffic = {
        let monitor = monitor.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
            // A first burst so every window has figures right away.
            for _ in 0..20 {
                record_second(&monitor, &mut noise).await;
            }
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                record_second(&monitor, &mut noise).await;
                if n.is_multiple_of(15) {
                    run_statements(&pool).await;
                }
                n += 1;
            }
        })
    };

    let bound = listener.local_addr()?;
    println!("BASE_URL=http://{bound}");
    println!("TOKEN={token}");
    println!("dashboard: http://{bound}/admin/dashboard?token={token}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    traffic.abort();
    eprintln!("cleaning up the demo's queues, table and Redis keys");
    for (_, urls) in dir.iter() {
        for u in [&urls.url, &urls.dlq_url] {
            let _ = clients.sqs.delete_queue().queue_url(u).send().await;
        }
    }
    let _ = clients
        .dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await;
    if let Ok(client) = redis::Client::open(var("REDIS_URL", "redis://127.0.0.1:6379"))
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{cache_prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
            else {
                break;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<u64> =
                    redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(())
}
