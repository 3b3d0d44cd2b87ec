//! `NamedCache::pipeline`: caller-built pipelines on the shared connection, with the service's
//! timeout, circuit breaker and counters.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use cache::{BreakerConfig, BreakerState, CacheConfig, CacheError, CacheService};
use common::*;

#[tokio::test]
async fn runs_a_pipeline_and_returns_typed_replies() {
    let svc = shared_service("pipeline").await;
    let c = svc.named("monitoring");
    let key = format!("{}{{mon}}:m:1", svc.key_prefix());

    let mut write = redis::pipe();
    write
        .cmd("HINCRBY")
        .arg(&key)
        .arg("a")
        .arg(2)
        .ignore()
        .cmd("HINCRBY")
        .arg(&key)
        .arg("b")
        .arg(5)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(600)
        .ignore();
    let () = c.pipeline(&write).await.unwrap();
    let () = c.pipeline(&write).await.unwrap();

    let mut read = redis::pipe();
    read.cmd("HGETALL").arg(&key).cmd("TTL").arg(&key);
    let (hash, ttl): (HashMap<String, i64>, i64) = c.pipeline(&read).await.unwrap();
    assert_eq!(hash.get("a"), Some(&4));
    assert_eq!(hash.get("b"), Some(&10));
    assert!((590..=600).contains(&ttl), "ttl {ttl}");

    // Redis answering with an error is an error for the caller, counted, but not an outage.
    let mut wrong = redis::pipe();
    wrong.cmd("INCR").arg(&key);
    let r: Result<i64, CacheError> = c.pipeline(&wrong).await;
    assert!(matches!(r, Err(CacheError::Redis(_))), "{r:?}");
    assert_eq!(c.stats().errors, 1);
    assert_eq!(c.stats().hits + c.stats().misses + c.stats().writes, 0);
    assert_eq!(svc.breaker_state(), BreakerState::Closed);
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn unreachable_redis_times_out_then_the_breaker_skips_it() {
    // A port that accepts connections but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = CacheConfig::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    cfg.key_prefix = unique_prefix("pipeline-down");
    cfg.op_timeout = Duration::from_millis(100);
    cfg.connect_timeout = Duration::from_millis(200);
    cfg.breaker = BreakerConfig {
        failure_threshold: 2,
        cool_down: Duration::from_secs(60),
    };
    let svc = CacheService::connect(cfg).await.unwrap();
    let c = svc.named("monitoring");
    let mut p = redis::pipe();
    p.cmd("HINCRBY").arg("k").arg("f").arg(1).ignore();

    for _ in 0..2 {
        let t = Instant::now();
        let r: Result<(), CacheError> = c.pipeline(&p).await;
        assert!(r.is_err());
        assert!(
            t.elapsed() < Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
    }
    assert_eq!(svc.breaker_state(), BreakerState::Open);
    let t = Instant::now();
    let r: Result<(), CacheError> = c.pipeline(&p).await;
    assert!(matches!(r, Err(CacheError::BreakerOpen)));
    assert!(t.elapsed() < Duration::from_millis(20));
    assert_eq!(c.stats().bypasses, 1);
    drop(listener);
}

#[tokio::test]
async fn cluster_pipelines_need_one_slot() {
    let cluster = RedisCluster::start();
    let mut cfg = CacheConfig::from_url(&cluster.url()).unwrap();
    cfg.endpoint = match cfg.endpoint {
        cache::EndpointSource::Direct(mut e) => {
            e.cluster = true;
            cache::EndpointSource::Direct(e)
        }
        other => other,
    };
    cfg.key_prefix = unique_prefix("pipeline-cluster");
    cfg.op_timeout = Duration::from_secs(2);
    cfg.connect_timeout = Duration::from_secs(2);
    let svc = CacheService::connect(cfg).await.unwrap();
    assert!(svc.is_cluster());
    let c = svc.named("monitoring");
    let p = svc.key_prefix().to_owned();

    // Same hash tag: one slot, one pipeline.
    let (m, h) = (format!("{p}{{mon}}:m:1"), format!("{p}{{mon}}:h:1"));
    let mut ok = redis::pipe();
    ok.cmd("HINCRBY").arg(&m).arg("n").arg(1).ignore();
    ok.cmd("HINCRBY").arg(&h).arg("n").arg(1).ignore();
    ok.cmd("HGET").arg(&m).arg("n");
    let (n,): (i64,) = c.pipeline(&ok).await.unwrap();
    assert_eq!(n, 1);

    // Keys in different slots: refused, not silently split.
    let mut cross = redis::pipe();
    cross.cmd("SET").arg(format!("{p}a")).arg(1).ignore();
    cross.cmd("SET").arg(format!("{p}b")).arg(1).ignore();
    assert_ne!(
        cache::slot::key_slot(format!("{p}a").as_bytes()),
        cache::slot::key_slot(format!("{p}b").as_bytes())
    );
    let r: Result<(), CacheError> = c.pipeline(&cross).await;
    assert!(r.is_err(), "cross-slot pipeline must fail");
}
