//! The axum layer: route templates (never raw paths), status classes, sizes, the request scope,
//! flushing after each response.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::*;
use monitoring::{Monitor, MonitorConfig, RedisWriteMode, Scope};
use tower::ServiceExt;

async fn user(Path(id): Path<u64>) -> String {
    monitoring::record::db_query(Duration::from_millis(150));
    format!("user {id}")
}

async fn version(
    Path((_f, _v)): Path<(String, u32)>,
    Extension(scope): Extension<Scope>,
) -> StatusCode {
    scope.db_query(Duration::from_millis(3));
    StatusCode::CREATED
}

async fn boom() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn big() -> String {
    "x".repeat(3000)
}

async fn encoded() -> impl IntoResponse {
    ([(header::CONTENT_ENCODING, "br")], vec![7u8; 400])
}

async fn piped() -> String {
    // What the response pipeline does: it knows both sizes.
    monitoring::record::response_bytes(10_000, 2_500);
    "y".repeat(2_500)
}

fn app(m: &Monitor, mode: RedisWriteMode) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/files/{file_id}/versions/{v}", post(version))
        .route("/boom", get(boom))
        .route("/big", get(big))
        .route("/encoded", get(encoded))
        .route("/piped", get(piped))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(m.layer().redis_write(mode))
}

async fn send(app: &Router, method: &str, uri: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn records_route_templates_not_raw_paths() {
    let prefix = unique_prefix("layer-routes");
    let cache = cache_with_prefix(&prefix).await;
    let out = Capture::default();
    let m = Monitor::builder()
        .config(MonitorConfig {
            service: "files-api".into(),
            ..MonitorConfig::default()
        })
        .cache(cache)
        .emf_writer(out.clone())
        .build()
        .unwrap();
    let app = app(&m, RedisWriteMode::Inline);

    assert_eq!(send(&app, "GET", "/users/42").await, StatusCode::OK);
    assert_eq!(send(&app, "GET", "/users/43").await, StatusCode::OK);
    assert_eq!(
        send(&app, "POST", "/files/abc-123/versions/7").await,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, "GET", "/boom").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(send(&app, "GET", "/nope/9876").await, StatusCode::NOT_FOUND);

    let docs = out.documents();
    // Every string on every line (dimension values and anything else), never a raw path.
    for d in &docs {
        for (k, v) in d.as_object().unwrap() {
            if let Some(s) = v.as_str() {
                for raw in ["42", "43", "abc-123", "9876", "/nope"] {
                    assert!(
                        !s.contains(raw),
                        "raw path fragment {raw} leaked into {k}: {s}"
                    );
                }
            }
        }
    }
    // One flush per request: a route document and the service document each.
    assert_eq!(docs_with(&docs, "ColdStart").len(), 5);
    assert_eq!(
        values(docs_with(&docs, "ColdStart")[0], "ColdStart"),
        vec![1.0]
    );
    let routes: Vec<(String, String)> = docs_with(&docs, "Latency")
        .iter()
        .map(|d| {
            (
                d["Method"].as_str().unwrap().to_owned(),
                d["Route"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("GET".into(), "/users/{id}".into()),
            ("GET".into(), "/users/{id}".into()),
            ("POST".into(), "/files/{file_id}/versions/{v}".into()),
            ("GET".into(), "/boom".into()),
            ("GET".into(), "unmatched".into()),
        ]
    );
    let by_route =
        |r: &str| -> Vec<&serde_json::Value> { docs.iter().filter(|d| d["Route"] == r).collect() };
    assert_eq!(values(by_route("/boom")[0], "Http5xx"), vec![1.0]);
    assert_eq!(values(by_route("unmatched")[0], "Http4xx"), vec![1.0]);
    assert_eq!(
        values(by_route("/files/{file_id}/versions/{v}")[0], "Http2xx"),
        vec![1.0]
    );
    // Recorded from inside the handlers: the task-local scope and the extension.
    let u = by_route("/users/{id}")[0];
    assert_eq!(values(u, "DbQueries"), vec![1.0]);
    assert_eq!(values(u, "SlowQueries"), vec![1.0]);
    assert_eq!(values(u, "DbTime"), vec![150.0]);
    assert_eq!(
        values(by_route("/files/{file_id}/versions/{v}")[0], "SlowQueries"),
        vec![0.0]
    );

    // The Redis view keeps the same templates.
    let minute = this_minute();
    let mut fields: Vec<String> = Vec::new();
    for key in keys_under(&prefix).await {
        fields.extend(hgetall(&key).await.into_keys());
    }
    assert!(fields.contains(&"h|files-api|GET /users/{id}|n".to_owned()));
    assert!(fields.contains(&"h|files-api|GET unmatched|s4".to_owned()));
    assert!(
        fields
            .iter()
            .all(|f| !f.contains("42") && !f.contains("abc-123"))
    );
    let report = m.report(&Default::default()).await.unwrap();
    let w = report.window("5m").unwrap();
    assert_eq!(w.http.requests, 5, "minute {minute}");
    let users = w.routes.iter().find(|r| r.route == "/users/{id}").unwrap();
    assert_eq!((users.method.as_str(), users.http.requests), ("GET", 2));
    cleanup(&prefix).await;
}

#[tokio::test]
async fn response_sizes() {
    let out = Capture::default();
    let m = Monitor::builder().emf_writer(out.clone()).build().unwrap();
    let app = app(&m, RedisWriteMode::Background);
    send(&app, "GET", "/big").await;
    send(&app, "GET", "/encoded").await;
    send(&app, "GET", "/piped").await;
    send(&app, "HEAD", "/big").await;
    let docs = out.documents();
    let sizes: Vec<(Vec<f64>, Vec<f64>)> = docs_with(&docs, "Latency")
        .iter()
        .map(|d| {
            (
                values(d, "ResponseBytes"),
                values(d, "ResponseBytesCompressed"),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            (vec![3000.0], vec![3000.0]),    // identity: sent as is
            (vec![], vec![400.0]),           // already encoded: raw size unknown here
            (vec![10_000.0], vec![2_500.0]), // recorded by the pipeline: wins
            (vec![], vec![]),                // HEAD: no body
        ]
    );
}

#[tokio::test]
async fn background_writes_land_after_the_response() {
    let prefix = unique_prefix("layer-bg");
    let cache = cache_with_prefix(&prefix).await;
    let m = Monitor::builder()
        .cache(cache)
        .emf_writer(Capture::default())
        .build()
        .unwrap();
    let app = app(&m, RedisWriteMode::Background);
    for i in 0..20 {
        assert_eq!(
            send(&app, "GET", &format!("/users/{i}")).await,
            StatusCode::OK
        );
    }
    assert!(m.wait_for_background_writes(Duration::from_secs(10)).await);
    let stats = m.stats();
    assert_eq!(stats.redis_writes, 20, "{stats:?}");
    assert_eq!(stats.redis_in_flight, 0);
    let report = m.report(&Default::default()).await.unwrap();
    assert_eq!(report.window("5m").unwrap().http.requests, 20);
    cleanup(&prefix).await;
}
