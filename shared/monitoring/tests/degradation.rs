//! Redis down or unresponsive: recording never fails a request and never waits longer than the
//! cache's operation timeout; the data is counted and dropped.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use cache::{BreakerConfig, CacheConfig, CacheService};
use common::*;
use monitoring::{Monitor, MonitorError, RedisWrite, RedisWriteMode};
use tower::ServiceExt;

const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// Scheduling slack on a busy shared machine.
const SLACK: Duration = Duration::from_millis(400);

async fn cache_at(port: u16, op_timeout: Duration) -> CacheService {
    let mut c = CacheConfig::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    c.key_prefix = unique_prefix("down");
    c.op_timeout = op_timeout;
    c.connect_timeout = Duration::from_millis(200);
    c.breaker = BreakerConfig {
        failure_threshold: 3,
        cool_down: Duration::from_secs(60),
    };
    CacheService::connect(c).await.unwrap()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn closed_port_recording_neither_fails_nor_blocks() {
    let cache = cache_at(closed_port(), OP_TIMEOUT).await;
    let out = Capture::default();
    let m = Monitor::builder()
        .cache(cache.clone())
        .emf_writer(out.clone())
        .build()
        .unwrap();
    for i in 0..10 {
        let s = m.scope();
        s.http(&http::Method::GET, "/x", 200, Duration::from_millis(3));
        let t = Instant::now();
        let o = s.flush().await;
        assert!(
            t.elapsed() <= OP_TIMEOUT + SLACK,
            "flush {i} took {:?}",
            t.elapsed()
        );
        assert_eq!(o.redis, RedisWrite::Failed);
        assert_eq!(o.emf_lines, 2, "EMF does not depend on Redis");
    }
    let stats = m.stats();
    assert_eq!(stats.redis_errors, 10);
    assert_eq!(stats.redis_writes, 0);
    // After the breaker opened, writes were skipped without trying.
    assert!(
        cache
            .named(monitoring::MONITORING_CACHE_NAME)
            .stats()
            .bypasses
            >= 7
    );
    assert_eq!(out.documents().len(), 20);

    // Requests through the layer, awaited inline: still 200, still fast.
    let app = Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(m.layer().redis_write(RedisWriteMode::Inline));
    for _ in 0..5 {
        let t = Instant::now();
        let resp = app
            .clone()
            .oneshot(Request::get("/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(t.elapsed() <= OP_TIMEOUT + SLACK);
    }
    // Reading is an error the admin route can turn into a 503.
    let r = m.report(&Default::default()).await;
    assert!(matches!(r, Err(MonitorError::Redis(_))), "{r:?}");
}

#[tokio::test]
async fn silent_server_background_writes_are_bounded() {
    // Accepts connections, never answers: every write waits for the operation timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cache = cache_at(port, Duration::from_millis(1500)).await;
    let m = Monitor::builder()
        .cache(cache)
        .emf_writer(Capture::default())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(m.layer().redis_write(RedisWriteMode::Background));
    let t = Instant::now();
    for _ in 0..100 {
        let resp = app
            .clone()
            .oneshot(Request::get("/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The responses did not wait for Redis at all.
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let stats = m.stats();
    assert_eq!(stats.redis_in_flight, monitoring::MAX_IN_FLIGHT);
    assert_eq!(stats.redis_dropped, 100 - monitoring::MAX_IN_FLIGHT);
    assert!(m.wait_for_background_writes(Duration::from_secs(10)).await);
    let stats = m.stats();
    assert_eq!(stats.redis_errors, monitoring::MAX_IN_FLIGHT);
    assert_eq!(stats.redis_in_flight, 0);
    drop(listener);
}

#[tokio::test]
async fn without_redis_the_report_says_so() {
    let m = Monitor::builder()
        .emf_writer(Capture::default())
        .build()
        .unwrap();
    let s = m.scope();
    s.http(&http::Method::GET, "/x", 200, Duration::from_millis(3));
    assert_eq!(s.flush().await.redis, RedisWrite::Disabled);
    assert!(matches!(
        m.report(&Default::default()).await,
        Err(MonitorError::NoRedis)
    ));
}

#[test]
fn flushing_outside_a_runtime_drops_the_redis_write() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = rt.block_on(cache_at(closed_port(), OP_TIMEOUT));
    let m = Monitor::builder()
        .cache(cache)
        .emf_writer(Capture::default())
        .build()
        .unwrap();
    let s = m.scope();
    s.http(&http::Method::GET, "/x", 200, Duration::from_millis(3));
    assert_eq!(s.flush_in_background().redis, RedisWrite::Dropped);
    assert!(
        !monitoring::record::db_query(Duration::from_millis(1)),
        "no scope here"
    );
    drop(rt);
}
