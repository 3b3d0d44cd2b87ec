//! The local stand-in for API Gateway and Lambda: every API function's router behind one HTTP
//! server, with the JWT authorizer emulated by locally signed tokens, and the AWS resources and
//! demo users a developer needs.

pub mod gateway;
pub mod jobs;
pub mod resources;
pub mod seed;

use std::net::SocketAddr;
use std::sync::Arc;

use auth::local::LocalAuthority;
use axum::Router;
use files::{FileJobs, FilesConfig, FilesState};
use response_pipeline::Invalidator;
use storage::ObjectStore;
use users::UsersState;

/// Local settings, from the environment (see README).
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// LOCAL_ADDR (default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// LOCAL_JWT_SECRET: signs local tokens. Local use only.
    pub jwt_secret: String,
    /// JWT_ISSUER (default the local issuer).
    pub issuer: String,
    /// JWT_AUDIENCE (default the local audience).
    pub audience: String,
    /// UPLOADS_BUCKET (default cad-platform-uploads).
    pub bucket: String,
    /// QUEUE_PREFIX: local queue names are `<prefix>file-processing` etc. (default empty).
    pub queue_prefix: String,
}

impl LocalConfig {
    /// Reads the settings, with defaults that work on a fresh machine.
    pub fn from_env() -> Result<Self, LocalError> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let addr = var("LOCAL_ADDR", "127.0.0.1:3000");
        Ok(Self {
            addr: addr
                .parse()
                .map_err(|_| LocalError::Config(format!("LOCAL_ADDR={addr} is not host:port")))?,
            jwt_secret: var(
                "LOCAL_JWT_SECRET",
                "local-development-secret-not-for-production",
            ),
            issuer: var("JWT_ISSUER", auth::local::DEFAULT_ISSUER),
            audience: var("JWT_AUDIENCE", auth::local::DEFAULT_AUDIENCE),
            bucket: var("UPLOADS_BUCKET", "cad-platform-uploads"),
            queue_prefix: var("QUEUE_PREFIX", ""),
        })
    }

    /// The token authority for these settings.
    pub fn authority(&self) -> LocalAuthority {
        LocalAuthority::new(self.jwt_secret.as_bytes(), &self.issuer, &self.audience)
    }
}

/// A local set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// An AWS call failed (is moto running at AWS_ENDPOINT_URL?).
    #[error("AWS {0}")]
    Aws(String),
    /// A database call failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] db::DbError),
    /// Token minting failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// The clients and resources every API router and worker shares, built once.
#[derive(Debug, Clone)]
pub struct Services {
    /// Database pool.
    pub pool: db::PgPool,
    /// The uploads bucket.
    pub store: ObjectStore,
    /// Redis, when configured.
    pub cache: Option<cache::CacheService>,
    /// Job queues, tables and producer.
    pub jobs: jobs::LocalJobs,
    /// The notifications worker's handler (SES client, webhook signing key).
    pub notifications: notifications::NotificationsHandler,
    /// Metrics (EMF on stdout, the real-time view in Redis, as configured).
    pub monitor: monitoring::Monitor,
}

/// The users-api state over the shared clients.
pub fn users_state(services: &Services) -> UsersState {
    UsersState {
        pool: services.pool.clone(),
        invalidator: Invalidator::new(services.cache.clone()),
    }
}

/// The files-api state over the shared clients.
pub fn files_state(services: &Services) -> FilesState {
    FilesState {
        pool: services.pool.clone(),
        reader: services.pool.clone(),
        store: services.store.clone(),
        jobs: FileJobs::new(services.jobs.producer.clone()),
        config: FilesConfig::default(),
        invalidator: Invalidator::new(services.cache.clone()),
    }
}

/// The routes of one API function, as its `main.rs` builds them.
pub fn function_routes(services: &Services, function: &str) -> Option<Router> {
    let invalidator = Invalidator::new(services.cache.clone());
    let pool = services.pool.clone();
    Some(match function {
        "users-api" => users::router(users_state(services)),
        "files-api" => files::router(files_state(services))
            .merge(search::router(search::SearchState { pool, invalidator })),
        "jobs-api" => job_status::router(job_status::JobStatusState {
            tracking: services.jobs.tracking.clone(),
            pool: pool.clone(),
            invalidator: invalidator.clone(),
        })
        .merge(notifications::router(notifications::NotificationsState {
            pool: pool.clone(),
            invalidator: invalidator.clone(),
        }))
        .merge(reports::router(reports::ReportsState {
            pool,
            invalidator,
            producer: services.jobs.producer.clone(),
        })),
        "admin-api" => admin::api_router(admin_state(services)),
        _ => return None,
    })
}

/// The admin-api state over the shared clients.
pub fn admin_state(services: &Services) -> admin::AdminState {
    admin::AdminState::new(
        services.jobs.clients.sqs.clone(),
        services.jobs.directory.clone(),
        services.monitor.clone(),
        db::Db::new(services.pool.clone()),
    )
    .with_tracking(services.jobs.tracking.clone())
}

/// Names of the API functions the local server mounts.
pub const API_FUNCTIONS: [&str; 4] = ["users-api", "files-api", "jobs-api", "admin-api"];

/// One API function's router with the shared layers, as its `main.rs` builds it for Lambda.
pub fn function_app(services: &Services, function: &str) -> Option<Router> {
    let routes = function_routes(services, function)?;
    Some(response_pipeline::apply_monitored(
        routes,
        services.cache.clone(),
        Some(services.monitor.clone()),
    ))
}

/// Every API function's router, merged, with the shared layers applied once, as each function
/// applies them in Lambda.
pub fn api(services: &Services) -> Router {
    let routes = API_FUNCTIONS
        .iter()
        .filter_map(|f| function_routes(services, f))
        .fold(Router::new(), Router::merge);
    response_pipeline::apply_monitored(
        routes,
        services.cache.clone(),
        Some(services.monitor.clone()),
    )
}

/// The API behind the emulated gateway: what a client of `make run` talks to.
/// The admin dashboard page is the one route without the authorizer (as in the template): the
/// page holds no data and asks for a token itself.
pub fn app(services: &Services, authority: LocalAuthority) -> Router {
    gateway::wrap(api(services), Arc::new(authority), services.pool.clone())
        .merge(admin::dashboard_router())
}
