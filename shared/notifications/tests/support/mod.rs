//! Test support: a freshly migrated `itest_` database per test (PostgreSQL from `make services`
//! or TEST_POSTGRES_URL), the moto endpoint, users, and calling routers as API Gateway would.
#![allow(dead_code)]

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use tower::ServiceExt;
use uuid::Uuid;

/// Base URL of the PostgreSQL server.
pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of one test; `drop_db` removes it (leftovers of failed runs are `itest_*`,
/// which `make test` sweeps).
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
}

impl TestDb {
    /// Creates `itest_<uuid>` and applies every migration.
    pub async fn new() -> TestDb {
        let name = format!("itest_{}", Uuid::new_v4().simple());
        let url = format!("{}/{name}", postgres_base_url());
        Postgres::create_database(&url)
            .await
            .unwrap_or_else(|e| panic!("create {url} (run `make services`): {e}"));
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&url)
            .await
            .expect("connect to the test database");
        db::migrate(&pool).await.expect("migrations apply");
        TestDb { pool, name }
    }

    /// Closes the pool and drops the database.
    pub async fn drop_db(self) {
        self.pool.close().await;
        let url = format!("{}/{}", postgres_base_url(), self.name);
        Postgres::force_drop_database(&url)
            .await
            .expect("drop test database");
    }

    /// Inserts a user; returns its id.
    pub async fn user(&self, role: &str) -> (Uuid, String) {
        let sub = format!("sub-{}", Uuid::new_v4());
        let email = format!("{sub}@example.com");
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO users (cognito_sub, email, username, role) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&sub)
        .bind(&email)
        .bind(&sub[..20])
        .bind(role)
        .fetch_one(&self.pool)
        .await
        .expect("insert user");
        (id, sub)
    }
}

/// The AWS endpoint (moto) from AWS_ENDPOINT_URL, default the `make services` one.
pub fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5005".into())
}

/// SDK config pointed at moto with dummy credentials.
pub async fn aws() -> aws_config::SdkConfig {
    let creds = aws_sdk_sesv2::config::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

/// Calls `app` as API Gateway would after its JWT authorizer accepted `sub`'s token.
pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    sub: &str,
    role: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let claims: HashMap<String, String> = [
        ("sub", sub.to_owned()),
        ("email", format!("{sub}@example.com")),
        ("custom:role", role.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut req = Request::builder().method(method).uri(path);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let mut req = req.body(body).expect("request");
    let route = path.split('?').next().unwrap_or(path);
    req.extensions_mut()
        .insert(auth::request_context(claims, method, route));
    let res = app.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, json)
}
