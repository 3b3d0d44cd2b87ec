//! The guide's alert thresholds at their boundaries: equal does not breach, beyond does.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use monitoring::{
    AlertKind, AlertThresholds, CacheSummary, HttpSummary, LatencySummary, QueueSummary,
    ServiceSummary, WindowReport, evaluate_alerts,
};

fn window() -> WindowReport {
    WindowReport {
        window: "5m".into(),
        minutes: 5,
        from: Utc.timestamp_opt(0, 0).unwrap(),
        to: Utc.timestamp_opt(300, 0).unwrap(),
        covered_seconds: 300.0,
        http: HttpSummary::default(),
        routes: Vec::new(),
        cache_total: cache("*", 0, 0),
        caches: Vec::new(),
        queues: Vec::new(),
        services: Vec::new(),
    }
}

fn cache(name: &str, hits: u64, misses: u64) -> CacheSummary {
    let n = hits + misses;
    CacheSummary {
        name: name.into(),
        hits,
        misses,
        errors: 0,
        bypasses: 0,
        hit_ratio: (n > 0).then(|| hits as f64 / n as f64),
    }
}

fn http(requests: u64, p95: f64) -> HttpSummary {
    HttpSummary {
        requests,
        latency_ms: LatencySummary {
            p95: Some(p95),
            ..LatencySummary::default()
        },
        ..HttpSummary::default()
    }
}

fn queue(name: &str, succeeded: u64, failed: u64, dead: u64) -> QueueSummary {
    let attempts = succeeded + failed + dead;
    QueueSummary {
        queue: name.into(),
        succeeded,
        failed,
        dead,
        attempts,
        failure_rate: Some((failed + dead) as f64 / attempts as f64),
        jobs_per_minute: 0.0,
        duration_ms: LatencySummary::default(),
        depth: None,
    }
}

fn memory(service: &str, pct: f64) -> ServiceSummary {
    ServiceSummary {
        service: service.into(),
        memory_max_percent: Some(pct),
        memory_samples: 1,
        cold_starts: 0,
        db_queries: 0,
        slow_queries: 0,
        db_mean_query_ms: None,
    }
}

fn kinds(w: &WindowReport, depths: &BTreeMap<String, u64>) -> Vec<AlertKind> {
    evaluate_alerts(w, depths, &AlertThresholds::default())
        .into_iter()
        .map(|a| a.kind)
        .collect()
}

#[test]
fn defaults_are_the_guides_values() {
    let t = AlertThresholds::default();
    assert_eq!(t.response_time_p95_ms, 2000.0);
    assert_eq!(t.memory_percent, 90.0);
    assert_eq!(t.cache_hit_ratio, 0.80);
    assert_eq!(t.queue_length, 1000);
    assert_eq!(t.failed_job_rate, 0.05);
}

#[test]
fn response_time() {
    let none = BTreeMap::new();
    let mut w = window();
    w.http = http(100, 2000.0);
    assert!(kinds(&w, &none).is_empty());
    w.http = http(100, 2000.5);
    assert_eq!(kinds(&w, &none), vec![AlertKind::ResponseTime]);
    // Too few requests to judge.
    w.http = http(19, 9000.0);
    assert!(kinds(&w, &none).is_empty());
}

#[test]
fn memory_use() {
    let none = BTreeMap::new();
    let mut w = window();
    w.services = vec![memory("users-api", 90.0), memory("files-api", 12.0)];
    assert!(kinds(&w, &none).is_empty());
    w.services[0] = memory("users-api", 90.1);
    let a = evaluate_alerts(&w, &none, &AlertThresholds::default());
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].kind, a[0].subject.as_str()),
        (AlertKind::Memory, "users-api")
    );
}

#[test]
fn cache_hit_ratio() {
    let none = BTreeMap::new();
    let mut w = window();
    w.caches = vec![cache("userData", 80, 20)];
    assert!(kinds(&w, &none).is_empty(), "exactly 80 % is fine");
    w.caches = vec![cache("userData", 79, 21)];
    assert_eq!(kinds(&w, &none), vec![AlertKind::CacheHitRatio]);
    w.caches = vec![cache("userData", 1, 18)];
    assert!(kinds(&w, &none).is_empty(), "19 lookups: too few");
}

#[test]
fn queue_length() {
    let mut w = window();
    w.queues = vec![queue("file-processing", 10, 0, 0)];
    let at: BTreeMap<String, u64> = [("file-processing".to_owned(), 1000)].into();
    assert!(kinds(&w, &at).is_empty());
    let over: BTreeMap<String, u64> = [("file-processing".to_owned(), 1001)].into();
    assert_eq!(kinds(&w, &over), vec![AlertKind::QueueLength]);
}

#[test]
fn failed_job_rate() {
    let none = BTreeMap::new();
    let mut w = window();
    w.queues = vec![queue("ai-training", 95, 4, 1)];
    assert!(kinds(&w, &none).is_empty(), "exactly 5 %");
    w.queues = vec![queue("ai-training", 94, 5, 1)];
    let a = evaluate_alerts(&w, &none, &AlertThresholds::default());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::FailedJobRate);
    assert!((a[0].value - 0.06).abs() < 1e-9);
    assert!(a[0].message.contains("ai-training"));
}
