//! Test support: a freshly migrated PostgreSQL database per test, unique S3 and SQS resources in
//! moto, and the real local server (gateway + every router) on a random port.

use std::net::SocketAddr;

use auth::Role;
use auth::local::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, LocalAuthority, TokenRequest};
use local::{Services, resources};
use sqlx::migrate::MigrateDatabase;
use sqlx::{Executor, PgPool, Postgres};
use storage::ObjectStore;
use uuid::Uuid;

/// The shared CAD test files: `CAD_TESTDATA` (set by infra/scripts/env.sh), else `../shared`
/// next to the repository.
pub fn cad_testdata() -> std::path::PathBuf {
    std::env::var_os("CAD_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/cad")
        })
}

/// Secret of the tests' token authority.
pub const TEST_JWT_SECRET: &str = "integration-test-secret";

/// Key the test system signs webhooks with.
pub const TEST_WEBHOOK_SECRET: &str = "integration-test-webhook-secret";

/// Sender address of the test system's email (verified in moto's SES at start-up).
pub const TEST_EMAIL_FROM: &str = "notifications@itest.cad-platform.local";

/// What a test's copy of the system runs besides the API.
#[derive(Clone, Default)]
pub struct TestOptions {
    /// Response cache and metrics store (None: no caching).
    pub cache: Option<cache::CacheService>,
    /// Key prefix of this test's cache entries.
    pub cache_prefix: String,
    /// Run the five workers on the local event source.
    pub workers: bool,
    /// Record metrics (into the cache's Redis) like the deployed functions.
    pub metrics: bool,
    /// Visibility timeout of the test's queues (default 30 s).
    pub visibility_timeout: Option<u32>,
}

/// Base URL of the PostgreSQL server tests create databases on.
pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Creates a fresh database named `itest_<uuid>` and applies every migration.
pub async fn fresh_database() -> (PgPool, String) {
    let name = format!("itest_{}", Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_base_url());
    Postgres::create_database(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database at {url} (is PostgreSQL running? `make test` starts it): {e}"));
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to the test database");
    db::migrate(&pool)
        .await
        .expect("migrations apply to a fresh database");
    (pool, name)
}

/// The SDK configuration pointed at moto.
pub async fn aws() -> aws_config::SdkConfig {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5005".into());
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

/// One running copy of the system for a test.
pub struct TestApp {
    /// Where the local server listens.
    pub addr: SocketAddr,
    /// The test's own database.
    pub pool: PgPool,
    /// Its name.
    pub db_name: String,
    /// The clients and resources the routers use.
    pub services: Services,
    /// Raw SQS client, to look at queues.
    pub sqs: aws_sdk_sqs::Client,
    /// URL of the test's file-processing queue.
    pub processing_queue_url: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Key prefix of this test's cache entries.
    pub cache_prefix: String,
    authority: LocalAuthority,
    shutdown: tokio_util::sync::CancellationToken,
    workers: Option<tokio::task::JoinHandle<()>>,
}

/// The shared Redis the tests use (REDIS_URL overrides).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A cache service with its own key prefix on the Redis at `url`.
pub async fn cache_service(url: &str, prefix: &str) -> cache::CacheService {
    let mut config = cache::CacheConfig::from_url(url).expect("valid Redis URL");
    config.key_prefix = prefix.to_owned();
    // Generous: the machine running tests is shared and busy; a slow answer is not a failure here.
    config.op_timeout = std::time::Duration::from_millis(500);
    config.breaker.cool_down = std::time::Duration::from_millis(500);
    cache::CacheService::connect(config)
        .await
        .expect("cache config")
}

impl TestApp {
    /// Starts everything with fresh resources, caching in the shared Redis under a unique prefix.
    pub async fn spawn() -> TestApp {
        let prefix = format!("itest:{}:", Uuid::new_v4().simple());
        let cache = cache_service(&redis_url(), &prefix).await;
        Self::spawn_with_cache(Some(cache), prefix).await
    }

    /// Starts everything with the given cache (None: no response caching).
    pub async fn spawn_with_cache(
        cache: Option<cache::CacheService>,
        cache_prefix: String,
    ) -> TestApp {
        Self::spawn_with(TestOptions {
            cache,
            cache_prefix,
            ..TestOptions::default()
        })
        .await
    }

    /// Starts the API and the workers (the upload → ready path), caching under a unique prefix.
    pub async fn spawn_with_workers() -> TestApp {
        let prefix = format!("itest:{}:", Uuid::new_v4().simple());
        let cache = cache_service(&redis_url(), &prefix).await;
        Self::spawn_with(TestOptions {
            cache: Some(cache),
            cache_prefix: prefix,
            workers: true,
            metrics: true,
            visibility_timeout: None,
        })
        .await
    }

    /// Starts a copy of the system as `options` say.
    pub async fn spawn_with(options: TestOptions) -> TestApp {
        let (pool, db_name) = fresh_database().await;
        let aws = aws().await;
        let s3 = storage::s3_client(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let tag = Uuid::new_v4().simple().to_string();
        let bucket = format!("itest-{}", &tag[..20]);
        resources::ensure_bucket(&s3, &bucket).await.expect(
            "create the test bucket (is moto running at AWS_ENDPOINT_URL? `make test` starts it)",
        );
        let jobs = local::jobs::setup(
            &aws,
            &format!("itest-{}-", &tag[..20]),
            Some(options.visibility_timeout.unwrap_or(30)),
        )
        .await
        .expect("create the test queues and tables");
        let queue_url = jobs
            .directory
            .get(jobs::QueueName::FileProcessing)
            .expect("file-processing queue")
            .url
            .clone();
        let ses = aws_sdk_sesv2::Client::new(&aws);
        notifications::ensure_sender_identity(&ses, TEST_EMAIL_FROM)
            .await
            .expect("verify the test sender in moto's SES");
        let notifications_config = notifications::NotificationsConfig {
            email_from: Some(TEST_EMAIL_FROM.to_owned()),
            webhook_secret: Some(TEST_WEBHOOK_SECRET.as_bytes().to_vec()),
            webhook_timeout: std::time::Duration::from_secs(5),
        };
        let notifications = notifications::NotificationsHandler::new(
            pool.clone(),
            notifications::webhook::http_client(notifications_config.webhook_timeout)
                .expect("http client"),
            ses,
            &notifications_config,
        );
        // Without `metrics` the monitor records nowhere; with it, into the test's Redis prefix.
        let config = monitoring::MonitorConfig {
            emf: false,
            redis: options.metrics,
            service: "itest".to_owned(),
            ..monitoring::MonitorConfig::default()
        };
        let mut builder = monitoring::Monitor::builder().config(config);
        if let Some(c) = options.cache.as_ref().filter(|_| options.metrics) {
            builder = builder.cache(c.clone());
        }
        let monitor = builder.build().expect("monitor");
        let services = Services {
            pool: pool.clone(),
            store: ObjectStore::new(s3, bucket),
            cache: options.cache,
            jobs,
            notifications,
            monitor,
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let workers = if options.workers {
            Some(
                local::jobs::spawn_workers(
                    &services,
                    local::jobs::PollSettings {
                        wait_time: std::time::Duration::from_secs(1),
                    },
                    shutdown.clone(),
                )
                .expect("start the workers"),
            )
        } else {
            None
        };
        let authority =
            LocalAuthority::new(TEST_JWT_SECRET.as_bytes(), DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let app = local::app(&services, authority.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("server runs");
        });
        TestApp {
            addr,
            pool,
            db_name,
            services,
            sqs,
            processing_queue_url: queue_url,
            http: reqwest::Client::new(),
            cache_prefix: options.cache_prefix,
            authority,
            shutdown,
            workers,
        }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A token for a new user with this role; the subject is unique per call.
    pub fn new_user_token(&self, role: Role) -> String {
        self.token_for(&format!("sub-{}", Uuid::new_v4()), role)
    }

    /// A token for a given subject and role.
    pub fn token_for(&self, subject: &str, role: Role) -> String {
        self.authority
            .mint(&TokenRequest {
                subject: subject.to_owned(),
                email: format!("{subject}@example.com"),
                username: subject.chars().take(30).collect(),
                role,
                ttl_seconds: 600,
            })
            .expect("mint")
    }

    /// GET with a bearer token.
    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A request with a JSON body and a bearer token.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Removes the test's database and cache entries (best effort; `make test` also sweeps
    /// leftover databases, and cache entries expire).
    pub async fn cleanup(self) {
        self.shutdown.cancel();
        if let Some(w) = self.workers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), w).await;
        }
        if !self.cache_prefix.is_empty() {
            delete_prefix(&redis_url(), &self.cache_prefix).await;
        }
        self.pool.close().await;
        let admin = PgPool::connect(&format!("{}/postgres", postgres_base_url())).await;
        if let Ok(admin) = admin {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.db_name
                )))
                .await;
        }
    }
}

/// Reads a JSON body, failing the test with the raw text when it is not JSON.
pub async fn json_body(resp: reqwest::Response) -> serde_json::Value {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}, body is not JSON: {text}"))
}

/// Deletes every key under `prefix` (SCAN, never KEYS or FLUSHDB: the Redis is shared).
pub async fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<u64> =
                redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A private redis-server for tests that stop and restart it (the shared one is never touched).
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> PrivateRedis {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut server = PrivateRedis { port, child: None };
        server.restart().await;
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (its data is gone, as after a real crash without persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("private redis-server on port {} did not start", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
