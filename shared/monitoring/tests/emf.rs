//! EMF output: every kind of metric, parsed and validated against the specification's rules.

mod common;

use std::time::Duration;

use common::*;
use monitoring::{CacheOutcome, JobOutcome, Monitor, MonitorConfig, RedisWrite, StorageResolution};
use serde_json::{Value, json};

fn monitor(config: MonitorConfig) -> (Monitor, Capture) {
    let capture = Capture::default();
    let m = Monitor::builder()
        .config(config)
        .emf_writer(capture.clone())
        .build()
        .unwrap();
    (m, capture)
}

fn config() -> MonitorConfig {
    MonitorConfig {
        namespace: "CadTest".into(),
        service: "users-api".into(),
        memory_limit_mb: Some(128),
        ..MonitorConfig::default()
    }
}

#[tokio::test]
async fn every_metric_kind_is_valid_emf() {
    let (m, out) = monitor(config());
    let scope = m.scope();
    scope.set_route(&http::Method::GET, "/users/{id}");
    scope.http(
        &http::Method::GET,
        "/users/{id}",
        200,
        Duration::from_millis(12),
    );
    scope.response_bytes(Some(5000), Some(1200));
    scope.db_query(Duration::from_millis(30));
    scope.db_query(Duration::from_millis(150));
    for _ in 0..3 {
        scope.cache("localLru", CacheOutcome::Hit);
    }
    scope.cache("localLru", CacheOutcome::Miss);
    scope.cache("localLru", CacheOutcome::Bypass);
    for (o, ms) in [
        (JobOutcome::Succeeded, 100),
        (JobOutcome::Succeeded, 200),
        (JobOutcome::Succeeded, 300),
        (JobOutcome::Failed, 50),
        (JobOutcome::Dead, 60),
    ] {
        scope.job("file-processing", o, Duration::from_millis(ms));
    }
    // Buffered: nothing is written before the flush.
    assert!(out.lines().is_empty());
    let outcome = scope.flush().await;
    assert_eq!(outcome.redis, RedisWrite::Disabled);
    let docs = out.documents();
    assert_eq!(outcome.emf_lines, docs.len());
    assert_eq!(docs.len(), 4, "route, service, cache, queue");
    for d in &docs {
        assert_eq!(directive(d)["Namespace"], "CadTest");
        assert_eq!(d["Service"], "users-api");
    }

    let route = docs_with(&docs, "Latency")[0];
    assert_eq!(
        directive(route)["Dimensions"],
        json!([["Service", "Route", "Method"], ["Service"]])
    );
    assert_eq!(route["Route"], "/users/{id}");
    assert_eq!(route["Method"], "GET");
    assert_eq!(values(route, "Latency"), vec![12.0]);
    assert_eq!(unit_of(route, "Latency").as_deref(), Some("Milliseconds"));
    assert_eq!(values(route, "Requests"), vec![1.0]);
    assert_eq!(values(route, "Http2xx"), vec![1.0]);
    for c in ["Http3xx", "Http4xx", "Http5xx"] {
        assert_eq!(values(route, c), vec![0.0], "{c}");
        assert_eq!(unit_of(route, c).as_deref(), Some("Count"));
    }
    assert_eq!(values(route, "ResponseBytes"), vec![5000.0]);
    assert_eq!(values(route, "ResponseBytesCompressed"), vec![1200.0]);
    assert_eq!(unit_of(route, "ResponseBytes").as_deref(), Some("Bytes"));
    assert_eq!(values(route, "DbTime"), vec![180.0]);
    assert_eq!(values(route, "DbQueries"), vec![2.0]);
    assert_eq!(values(route, "SlowQueries"), vec![1.0]);

    let svc = docs_with(&docs, "ColdStart")[0];
    assert_eq!(directive(svc)["Dimensions"], json!([["Service"]]));
    assert_eq!(values(svc, "ColdStart"), vec![1.0]);
    let pct = values(svc, "MemoryUtilization")[0];
    assert_eq!(
        unit_of(svc, "MemoryUtilization").as_deref(),
        Some("Percent")
    );
    let used = values(svc, "MemoryUsed")[0];
    assert_eq!(unit_of(svc, "MemoryUsed").as_deref(), Some("Megabytes"));
    assert!(
        used > 0.0 && (pct - used / 128.0 * 100.0).abs() < 0.05,
        "{pct} {used}"
    );

    let cache = docs_with(&docs, "CacheHits")[0];
    assert_eq!(
        directive(cache)["Dimensions"],
        json!([["Service", "Cache"], ["Cache"]])
    );
    assert_eq!(cache["Cache"], "localLru");
    assert_eq!(values(cache, "CacheHits"), vec![3.0]);
    assert_eq!(values(cache, "CacheMisses"), vec![1.0]);
    assert_eq!(values(cache, "CacheErrors"), vec![0.0]);
    assert_eq!(values(cache, "CacheBypasses"), vec![1.0]);

    let jobs = docs_with(&docs, "JobDuration")[0];
    assert_eq!(jobs["Queue"], "file-processing");
    assert_eq!(
        directive(jobs)["Dimensions"],
        json!([["Service", "Queue"], ["Queue"]])
    );
    assert_eq!(
        values(jobs, "JobDuration"),
        vec![100.0, 200.0, 300.0, 50.0, 60.0]
    );
    assert_eq!(values(jobs, "JobsSucceeded"), vec![3.0]);
    assert_eq!(values(jobs, "JobsFailed"), vec![1.0]);
    assert_eq!(values(jobs, "JobsDead"), vec![1.0]);

    // The buffer is empty after a flush; the next invocation is not a cold start.
    out.clear();
    scope.flush().await;
    let docs = out.documents();
    assert_eq!(docs.len(), 1, "only the service document: {docs:?}");
    assert_eq!(values(&docs[0], "ColdStart"), vec![0.0]);
}

#[tokio::test]
async fn status_classes_and_unrouted_scopes() {
    let (m, out) = monitor(MonitorConfig::default());
    let scope = m.scope();
    for (s, route) in [(503, "/a"), (404, "/a"), (302, "/b"), (101, "/b")] {
        scope.http(&http::Method::POST, route, s, Duration::from_micros(300));
    }
    // A scope without a route (a worker): database figures go to the service document.
    scope.db_query(Duration::from_millis(5));
    scope.flush().await;
    let docs = out.documents();
    let a = docs.iter().find(|d| d["Route"] == "/a").unwrap();
    assert_eq!(values(a, "Http5xx"), vec![1.0, 0.0]);
    assert_eq!(values(a, "Http4xx"), vec![0.0, 1.0]);
    assert_eq!(values(a, "Latency"), vec![0.3, 0.3]);
    let b = docs.iter().find(|d| d["Route"] == "/b").unwrap();
    assert_eq!(values(b, "Http3xx"), vec![1.0, 0.0]);
    assert_eq!(values(b, "Http2xx"), vec![0.0, 0.0], "1xx is in no class");
    assert_eq!(values(b, "Requests"), vec![1.0, 1.0]);
    let svc = docs_with(&docs, "ColdStart")[0];
    assert_eq!(svc["Service"], "local");
    assert_eq!(directive(svc)["Namespace"], "CadPlatform");
    assert_eq!(values(svc, "DbQueries"), vec![1.0]);
    assert!(
        svc.get("MemoryUtilization").is_none(),
        "no memory limit known"
    );
}

#[tokio::test]
async fn limits_are_respected_by_splitting() {
    let (m, out) = monitor(MonitorConfig::default());
    let scope = m.scope();
    for i in 0..250u64 {
        scope.job(
            "ai-training",
            JobOutcome::Succeeded,
            Duration::from_millis(i),
        );
    }
    for i in 0..120u64 {
        scope.http(&http::Method::GET, "/x", 200, Duration::from_millis(i));
    }
    scope.flush().await;
    let docs = out.documents(); // each validated: ≤ 100 values per array, ≤ 100 metrics
    let durations: Vec<usize> = docs_with(&docs, "JobDuration")
        .iter()
        .map(|d| values(d, "JobDuration").len())
        .collect();
    assert_eq!(durations, vec![100, 100, 50]);
    let total: f64 = docs_with(&docs, "JobsSucceeded")
        .iter()
        .map(|d| values(d, "JobsSucceeded").iter().sum::<f64>())
        .sum();
    assert_eq!(total, 250.0, "the sum is written once");
    let latencies: usize = docs_with(&docs, "Latency")
        .iter()
        .map(|d| values(d, "Latency").len())
        .sum();
    assert_eq!(latencies, 120);
}

#[tokio::test]
async fn high_resolution_and_disabled_output() {
    let (m, out) = monitor(MonitorConfig {
        storage_resolution: StorageResolution::High,
        ..MonitorConfig::default()
    });
    let s = m.scope();
    s.http(&http::Method::GET, "/", 200, Duration::from_millis(1));
    s.flush().await;
    for d in out.documents() {
        for def in directive(&d)["Metrics"].as_array().unwrap() {
            assert_eq!(def["StorageResolution"], 1);
        }
    }

    let (m, out) = monitor(MonitorConfig {
        emf: false,
        ..MonitorConfig::default()
    });
    let s = m.scope();
    s.http(&http::Method::GET, "/", 200, Duration::from_millis(1));
    assert_eq!(s.flush().await.emf_lines, 0);
    assert!(out.lines().is_empty());
}

#[tokio::test]
async fn names_are_sanitised_and_bounded() {
    let (m, out) = monitor(MonitorConfig {
        service: "users api \u{1F600}|x".into(),
        ..MonitorConfig::default()
    });
    let s = m.scope();
    for i in 0..(monitoring::MAX_CACHE_NAMES + 10) {
        s.cache(&format!("cache-{i}"), CacheOutcome::Hit);
    }
    s.cache("\n", CacheOutcome::Miss);
    s.flush().await;
    let docs = out.documents(); // validates printable ASCII dimension values
    assert!(docs.iter().all(|d| d["Service"] == "users api __x"));
    let names: Vec<&str> = docs_with(&docs, "CacheHits")
        .iter()
        .map(|d| d["Cache"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), monitoring::MAX_CACHE_NAMES + 1, "plus `other`");
    let other = docs.iter().find(|d| d["Cache"] == "other").unwrap();
    assert_eq!(values(other, "CacheHits"), vec![10.0]);
    assert_eq!(values(other, "CacheMisses"), vec![1.0]);
}

#[tokio::test]
async fn cache_service_counters_become_cache_metrics() {
    let prefix = unique_prefix("emf-cache");
    let cache = cache_with_prefix(&prefix).await;
    let out = Capture::default();
    let m = Monitor::builder()
        .cache(cache.clone())
        .emf_writer(out.clone())
        .build()
        .unwrap();
    let users = cache.named("userData");
    users
        .set("u:1", &"Ada", Duration::from_secs(60))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(users.get::<String>("u:1").await.is_hit());
    }
    assert!(users.get::<String>("u:2").await.is_miss());
    let s = m.scope();
    s.flush().await;
    let docs = out.documents();
    let c = docs.iter().find(|d| d["Cache"] == "userData").unwrap();
    assert_eq!(values(c, "CacheHits"), vec![3.0]);
    assert_eq!(values(c, "CacheMisses"), vec![1.0]);
    assert!(
        docs.iter().all(|d| d["Cache"] != "monitoring"),
        "the monitor's own traffic is not a cache"
    );
    // Deltas: the next flush reports only what happened since.
    out.clear();
    assert!(users.get::<String>("u:1").await.is_hit());
    s.flush().await;
    let docs = out.documents();
    let c = docs.iter().find(|d| d["Cache"] == "userData").unwrap();
    assert_eq!(values(c, "CacheHits"), vec![1.0]);
    assert_eq!(values(c, "CacheMisses"), vec![0.0]);
    cleanup(&prefix).await;
}

/// The validator itself must reject what the specification forbids, or the tests above prove
/// nothing.
#[test]
fn validator_rejects_invalid_documents() {
    let good = json!({
        "_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{
            "Namespace": "Ns", "Dimensions": [["Service"]],
            "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}]}]},
        "Service": "s", "Latency": [1, 2]
    });
    assert!(validate_emf(&good.to_string()).is_ok());
    type Breakage = Box<dyn Fn(&mut Value)>;
    let broken: Vec<(&str, Breakage)> = vec![
        (
            "no _aws",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("_aws");
            }),
        ),
        (
            "float timestamp",
            Box::new(|v| v["_aws"]["Timestamp"] = json!(1.5)),
        ),
        (
            "old timestamp",
            Box::new(|v| v["_aws"]["Timestamp"] = json!(1000)),
        ),
        (
            "empty namespace",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")),
        ),
        (
            "long namespace",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("n".repeat(256))),
        ),
        (
            "no dimensions",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([])),
        ),
        (
            "31 dimensions",
            Box::new(|v| {
                let keys: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
                for k in &keys {
                    v[k] = json!("x");
                }
                v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([keys]);
            }),
        ),
        (
            "dimension not on root",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([["Route"]])),
        ),
        ("numeric dimension", Box::new(|v| v["Service"] = json!(3))),
        (
            "bogus unit",
            Box::new(|v| {
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Furlongs")
            }),
        ),
        (
            "bad resolution",
            Box::new(|v| {
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = json!(30)
            }),
        ),
        (
            "metric not on root",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("Latency");
            }),
        ),
        ("string metric", Box::new(|v| v["Latency"] = json!("12"))),
        (
            "101 values",
            Box::new(|v| v["Latency"] = json!(vec![1; 101])),
        ),
        (
            "101 metrics",
            Box::new(|v| {
                let defs: Vec<Value> = (0..101).map(|i| json!({"Name": format!("m{i}")})).collect();
                for i in 0..101 {
                    v[format!("m{i}")] = json!(1);
                }
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(defs);
            }),
        ),
    ];
    for (what, f) in broken {
        let mut v = good.clone();
        f(&mut v);
        assert!(validate_emf(&v.to_string()).is_err(), "accepted: {what}");
    }
    assert!(validate_emf("{} trailing").is_err());
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
