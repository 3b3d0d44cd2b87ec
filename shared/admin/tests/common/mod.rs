//! Test set-up: a fresh migrated database, unique queues and tracking table in moto, the shared
//! Redis under a unique prefix, and authenticated requests straight into the router.
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::Duration;

use admin::{AdminConfig, AdminState};
use auth::Role;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use cache::{CacheConfig, CacheService};
use db::perf::{MonitorConfig as QueryConfig, QueryMonitor};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use jobs::{Clients, JobTracking, QueueDirectory};
use monitoring::{Monitor, MonitorConfig};
use serde_json::Value;
use sqlx::migrate::MigrateDatabase;
use sqlx::{Executor, PgPool, Postgres};
use tower::ServiceExt;
use uuid::Uuid;

/// PostgreSQL server the tests create databases on.
pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The shared Redis (REDIS_URL overrides).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A fresh `itest_<uuid>` database with every migration applied (the integration tests' way).
pub async fn fresh_database() -> (PgPool, String) {
    let name = format!("itest_{}", Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_base_url());
    Postgres::create_database(&url).await.unwrap_or_else(|e| {
        panic!("cannot create {url} (is PostgreSQL running? `make services`): {e}")
    });
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to the test database");
    db::migrate(&pool).await.expect("migrations apply");
    (pool, name)
}

/// SDK configuration pointed at `endpoint` (moto unless told otherwise).
pub async fn aws_at(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .load()
        .await
}

/// moto's endpoint.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5005".into())
}

/// What varies between tests.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Redis for the monitor (default: the shared one).
    pub redis_url: Option<String>,
    /// SQS endpoint for the admin state (default: moto, where the queues are).
    pub sqs_endpoint: Option<String>,
    /// Queue-length alert threshold (default: the guide's 1000).
    pub queue_length: Option<u64>,
}

/// One test's world.
pub struct TestEnv {
    pub state: AdminState,
    pub app: Router,
    /// SQS client on moto (always working, for set-up and checks).
    pub sqs: aws_sdk_sqs::Client,
    pub dir: QueueDirectory,
    pub tracking: JobTracking,
    pub monitor: Monitor,
    pub queries: QueryMonitor,
    pub pool: PgPool,
    pub db_name: String,
    pub cache_prefix: String,
}

impl TestEnv {
    pub async fn new(opts: Options) -> TestEnv {
        let (pool, db_name) = fresh_database().await;
        let tag = Uuid::new_v4().simple().to_string();
        let moto = aws_at(&moto_endpoint()).await;
        let clients = Clients::new(&moto);
        let dir = jobs::local_source::create_queues(
            &clients.sqs,
            &format!("admin-{}-", &tag[..16]),
            &Default::default(),
        )
        .await
        .expect("create queues in moto (is it running at AWS_ENDPOINT_URL? `make services`)");
        let table = format!("admin-jobs-{}", &tag[..16]);
        jobs::tracking::create_tracking_table(&clients.dynamodb, &table)
            .await
            .expect("create the tracking table");
        let tracking = JobTracking::new(clients.dynamodb.clone(), table, Duration::from_secs(3600));

        let cache_prefix = format!("admin-test:{tag}:");
        let mut cc = CacheConfig::from_url(opts.redis_url.as_deref().unwrap_or(&redis_url()))
            .expect("redis url");
        cc.key_prefix = cache_prefix.clone();
        cc.op_timeout = Duration::from_millis(500);
        cc.connect_timeout = Duration::from_millis(500);
        let cache = CacheService::connect(cc).await.expect("cache config");
        let mut mc = MonitorConfig {
            service: "admin-test".into(),
            ..MonitorConfig::default()
        };
        if let Some(q) = opts.queue_length {
            mc.thresholds.queue_length = q;
        }
        let monitor = Monitor::builder()
            .config(mc)
            .cache(cache)
            .emf_writer(std::io::sink())
            .build()
            .expect("monitor");

        let queries = QueryMonitor::new(QueryConfig::default());
        let admin_sqs = match &opts.sqs_endpoint {
            None => clients.sqs.clone(),
            Some(e) => Clients::new(&aws_at(e).await).sqs,
        };
        let state = AdminState::new(
            admin_sqs,
            dir.clone(),
            monitor.clone(),
            db::Db::new(pool.clone()),
        )
        .with_tracking(tracking.clone())
        .with_query_monitor(queries.clone())
        .with_config(AdminConfig {
            source_timeout: Duration::from_secs(8),
            ..AdminConfig::default()
        });
        TestEnv {
            app: admin::router(state.clone()),
            state,
            sqs: clients.sqs,
            dir,
            tracking,
            monitor,
            queries,
            pool,
            db_name,
            cache_prefix,
        }
    }

    /// Sends a request as a caller with `role` (None: no authorizer claims at all).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
        json: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = Request::builder().method(method.clone()).uri(path);
        if json.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let mut req = req
            .body(json.map_or_else(Body::empty, |v| Body::from(v.to_string())))
            .unwrap();
        if let Some(role) = role {
            let claims = [
                ("sub".to_owned(), format!("sub-{}", Uuid::new_v4())),
                ("custom:role".to_owned(), role.as_str().to_owned()),
            ]
            .into_iter()
            .collect();
            req.extensions_mut()
                .insert(auth::request_context(claims, method.as_str(), path));
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    /// GET as admin, expecting 200 JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, headers, body) = self.call(Method::GET, path, Some(Role::Admin), None).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[http::header::CACHE_CONTROL], "no-store");
        serde_json::from_slice(&body).unwrap()
    }

    /// Puts a raw body into a queue URL.
    pub async fn send(&self, url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Drops the database, the Redis keys and the queues (best effort).
    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPool::connect(&format!("{}/postgres", postgres_base_url())).await {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.db_name
                )))
                .await;
        }
        delete_prefix(&self.cache_prefix).await;
        for (_, urls) in self.dir.iter() {
            for u in [&urls.url, &urls.dlq_url] {
                let _ = self.sqs.delete_queue().queue_url(u).send().await;
            }
        }
    }
}

/// Deletes every key under `prefix` (SCAN + UNLINK; the Redis is shared).
pub async fn delete_prefix(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
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
