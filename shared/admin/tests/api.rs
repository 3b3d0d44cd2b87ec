//! The admin API against real PostgreSQL, Redis and moto.

mod common;

use std::time::Duration;

use auth::Role;
use common::{Options, TestEnv, closed_port};
use http::{Method, StatusCode};
use jobs::{Job, JobType, QueueName};
use monitoring::{CacheOutcome, JobOutcome, RedisWrite};
use serde_json::{Value, json};

const QUEUES: [&str; 5] = [
    "file-processing",
    "ai-training",
    "search-indexing",
    "notifications",
    "reports",
];

fn job(t: JobType) -> Job {
    Job::new(t, json!({"n": 1}))
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_lists_all_five_with_dlq_depth_age_and_recent_failures() {
    let env = TestEnv::new(Options::default()).await;
    let reports = env.dir.get(QueueName::Reports).unwrap().clone();
    let fp = env.dir.get(QueueName::FileProcessing).unwrap().clone();
    for _ in 0..2 {
        env.send(&fp.url, &job(JobType::ProcessFile).to_json().unwrap())
            .await;
    }
    let dead = job(JobType::GenerateReport);
    env.tracking
        .record_queued(std::slice::from_ref(&dead))
        .await
        .unwrap();
    env.tracking
        .mark_failed(&dead, 2, "renderer crashed", true)
        .await
        .unwrap();
    env.send(&reports.dlq_url, &dead.to_json().unwrap()).await;

    let v = env.get_json("/api/admin/queues").await;
    let queues = v["queues"].as_array().unwrap();
    let names: Vec<&str> = queues
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(names, QUEUES);
    for q in queues {
        assert!(q["error"].is_null(), "{q}");
        assert!(
            q["source"]["visible"].is_u64() && q["dlq"]["visible"].is_u64(),
            "{q}"
        );
    }
    assert_eq!(queues[0]["source"]["visible"], 2);
    assert_eq!(queues[0]["depth"], 2);
    assert_eq!(queues[0]["dlq_depth"], 0);
    assert_eq!(queues[0]["retry"]["max_attempts"], 3);
    let r = &queues[4];
    assert_eq!(r["dlq_depth"], 1);
    assert!(
        r["dlq"]["oldest_age_secs"]
            .as_u64()
            .is_some_and(|a| a < 120),
        "{r}"
    );
    assert!(
        r["source"]["oldest_age_secs"].is_null(),
        "source queues are never peeked"
    );
    let failures = r["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["job_id"], dead.id.to_string());
    assert_eq!(failures[0]["status"], "dead");
    assert_eq!(failures[0]["error"], "renderer crashed");
    assert!(v["generated_at"].is_string());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_are_admin_only() {
    let env = TestEnv::new(Options::default()).await;
    let routes = [
        (Method::GET, "/api/admin/queues"),
        (Method::GET, "/api/admin/performance"),
        (Method::POST, "/api/admin/queues/reports/redrive"),
    ];
    for (m, path) in routes {
        let (s, h, b) = env.call(m.clone(), path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(h[http::header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(error_code(&b), "unauthorized");
        for role in [Role::Viewer, Role::Engineer] {
            let (s, h, b) = env.call(m.clone(), path, Some(role), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path} as {role}");
            assert_eq!(h[http::header::CONTENT_TYPE], "application/json");
            assert_eq!(error_code(&b), "forbidden");
        }
    }
    // Nothing was redriven by the refused calls (the DLQ message is still there).
    let reports = env.dir.get(QueueName::Reports).unwrap().clone();
    env.send(
        &reports.dlq_url,
        &job(JobType::GenerateReport).to_json().unwrap(),
    )
    .await;
    let (s, _, _) = env
        .call(
            Method::POST,
            "/api/admin/queues/reports/redrive",
            Some(Role::Engineer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let c = jobs::admin::queue_counts(&env.sqs, &reports.dlq_url)
        .await
        .unwrap();
    assert_eq!(c.visible, 1);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_moves_dlq_messages_back_and_rejects_unknown_queues_and_bad_bodies() {
    let env = TestEnv::new(Options::default()).await;
    let urls = env.dir.get(QueueName::Notifications).unwrap().clone();
    let dead: Vec<Job> = (0..3).map(|_| job(JobType::SendNotification)).collect();
    env.tracking.record_queued(&dead).await.unwrap();
    for d in &dead {
        env.tracking
            .mark_failed(d, 3, "smtp refused", true)
            .await
            .unwrap();
        env.send(&urls.dlq_url, &d.to_json().unwrap()).await;
    }

    let (s, _, b) = env
        .call(
            Method::POST,
            "/api/admin/queues/notifications/redrive",
            Some(Role::Admin),
            Some(&json!({"max_messages": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["queue"], "notifications");
    assert_eq!(
        (v["moved"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(v["max_messages"], 1);

    // No body at all: the default limit, which drains the rest.
    let (s, _, b) = env
        .call(
            Method::POST,
            "/api/admin/queues/notifications/redrive",
            Some(Role::Admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["moved"], 2);

    let src = jobs::admin::queue_counts(&env.sqs, &urls.url)
        .await
        .unwrap();
    let dlq = jobs::admin::queue_counts(&env.sqs, &urls.dlq_url)
        .await
        .unwrap();
    assert_eq!(src.visible, 3, "all three are back in the source queue");
    assert_eq!(dlq.visible + dlq.in_flight, 0);
    for d in &dead {
        let rec = env.tracking.get(d.id).await.unwrap().unwrap();
        assert_eq!(rec.status, jobs::JobStatus::Queued);
    }

    let (s, _, b) = env
        .call(
            Method::POST,
            "/api/admin/queues/no-such-queue/redrive",
            Some(Role::Admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&b), "not_found");

    for bad in [
        json!({"max_messages": 0}),
        json!({"max_messages": 1_000_000}),
        json!({"max": 3}),
    ] {
        let (s, _, b) = env
            .call(
                Method::POST,
                "/api/admin/queues/reports/redrive",
                Some(Role::Admin),
                Some(&bad),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(&b), "bad_request");
    }
    env.cleanup().await;
}

/// Records traffic the way the HTTP layer and the workers do: one scope, flushed into Redis.
async fn record_traffic(env: &TestEnv) {
    let scope = env.monitor.scope();
    for i in 0..37u64 {
        scope.http(
            &Method::GET,
            "/api/files/{id}",
            200,
            Duration::from_millis(20 + i),
        );
    }
    for _ in 0..3 {
        scope.http(
            &Method::GET,
            "/api/search",
            500,
            Duration::from_millis(2600),
        );
    }
    for _ in 0..5 {
        scope.cache("userData", CacheOutcome::Hit);
    }
    for _ in 0..20 {
        scope.cache("userData", CacheOutcome::Miss);
    }
    for _ in 0..18 {
        scope.job("reports", JobOutcome::Succeeded, Duration::from_millis(300));
    }
    for _ in 0..2 {
        scope.job("reports", JobOutcome::Dead, Duration::from_millis(900));
    }
    assert_eq!(scope.flush().await.redis, RedisWrite::Written);
}

fn alert_kinds(v: &Value) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_reports_windows_database_queues_and_breached_alerts() {
    let env = TestEnv::new(Options {
        queue_length: Some(1),
        ..Options::default()
    })
    .await;
    record_traffic(&env).await;
    let fp = env.dir.get(QueueName::FileProcessing).unwrap().clone();
    for _ in 0..2 {
        env.send(&fp.url, &job(JobType::ProcessFile).to_json().unwrap())
            .await;
    }
    let ai = env.dir.get(QueueName::AiTraining).unwrap().clone();
    env.send(&ai.dlq_url, &job(JobType::TrainModel).to_json().unwrap())
        .await;
    // A slow statement, explained on the test database.
    env.queries.explain_with(&env.pool);
    env.queries.observe(
        "SELECT id, email FROM users WHERE email = 'nobody@example.com'",
        Duration::from_millis(450),
        0,
        0,
    );
    assert!(
        env.queries.settle(Duration::from_secs(10)).await,
        "EXPLAIN finished"
    );

    let v = env.get_json("/api/admin/performance").await;
    assert!(v["generated_at"].is_string());

    // Monitoring windows.
    assert!(v["metrics"]["error"].is_null(), "{}", v["metrics"]);
    let windows = v["metrics"]["windows"].as_array().unwrap();
    let labels: Vec<&str> = windows
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["5m", "15m", "60m", "24h"]);
    for w in windows {
        assert_eq!(w["requests"], 40, "{w}");
        assert!(w["requests_per_second"].as_f64().unwrap() > 0.0);
        let p50 = w["latency_ms"]["p50"].as_f64().unwrap();
        let p95 = w["latency_ms"]["p95"].as_f64().unwrap();
        let p99 = w["latency_ms"]["p99"].as_f64().unwrap();
        assert!(p50 > 20.0 && p50 < 70.0, "p50 {p50}");
        assert!(p95 > 2000.0 && p99 >= p95, "p95 {p95} p99 {p99}");
        assert!(
            (w["error_rate"].as_f64().unwrap() - 0.075).abs() < 1e-9,
            "{w}"
        );
        assert!(
            (w["cache_hit_ratio"].as_f64().unwrap() - 0.2).abs() < 1e-9,
            "{w}"
        );
        assert_eq!(w["job_attempts"], 20);
        assert!((w["job_failure_rate"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    }
    assert_eq!(v["metrics"]["routes"][0]["route"], "/api/files/{id}");

    // Database.
    let db = &v["database"];
    assert!(db["error"].is_null(), "{db}");
    assert!(
        db["pools"]["writer"]["max_connections"].as_u64().unwrap() > 0,
        "{db}"
    );
    let slow = db["slow_queries"].as_array().unwrap();
    assert_eq!(slow.len(), 1, "{db}");
    assert!(slow[0]["fingerprint"].as_str().unwrap().contains("users"));
    assert!(slow[0]["recommendations"].is_array());
    assert_eq!(slow[0]["plan_status"], "explained", "{}", slow[0]);
    assert_eq!(db["top_statements"][0]["calls"], 1);
    assert!(db["pg_stat_statements"]["status"].is_string());

    // Live queue depths.
    assert!(v["queues"]["error"].is_null(), "{}", v["queues"]);
    let items = v["queues"]["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|q| q["queue"].as_str().unwrap()).collect();
    assert_eq!(names, QUEUES);
    assert_eq!(items[0]["depth"], 2);
    assert_eq!(items[1]["dlq_depth"], 1);

    // Alerts: every kind of the guide except memory (not measured here), plus the DLQ.
    assert_eq!(
        alert_kinds(&v),
        [
            ("cache_hit_ratio".to_owned(), "*".to_owned()),
            ("cache_hit_ratio".to_owned(), "userData".to_owned()),
            ("dead_letters".to_owned(), "ai-training".to_owned()),
            ("failed_job_rate".to_owned(), "reports".to_owned()),
            ("queue_length".to_owned(), "file-processing".to_owned()),
            ("response_time".to_owned(), "*".to_owned()),
        ]
    );
    assert_eq!(v["alerts_unavailable"], json!([]));
    assert_eq!(v["thresholds"]["queue_length"], 1);
    assert_eq!(v["thresholds"]["response_time_p95_ms"], 2000.0);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_system_has_no_alerts_and_null_figures() {
    let env = TestEnv::new(Options::default()).await;
    let v = env.get_json("/api/admin/performance").await;
    assert!(v["metrics"]["error"].is_null());
    let w = &v["metrics"]["windows"][0];
    assert_eq!(w["requests"], 0);
    assert!(w["latency_ms"]["p95"].is_null());
    assert_eq!(v["alerts"], json!([]));
    assert_eq!(v["queues"]["items"].as_array().unwrap().len(), 5);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_answers_with_redis_down() {
    let env = TestEnv::new(Options {
        redis_url: Some(format!("redis://127.0.0.1:{}", closed_port())),
        ..Options::default()
    })
    .await;
    let ai = env.dir.get(QueueName::AiTraining).unwrap().clone();
    env.send(&ai.dlq_url, &job(JobType::TrainModel).to_json().unwrap())
        .await;
    let started = std::time::Instant::now();
    let v = env.get_json("/api/admin/performance").await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let err = v["metrics"]["error"]
        .as_str()
        .expect("metrics section carries the error");
    assert!(err.contains("real-time view"), "{err}");
    assert_eq!(v["metrics"]["windows"], json!([]));
    // The other sections are still there, and the live queue alerts still evaluated.
    assert!(v["database"]["error"].is_null());
    assert!(v["database"]["pools"]["writer"].is_object());
    assert!(v["queues"]["error"].is_null());
    assert_eq!(v["queues"]["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        alert_kinds(&v),
        [("dead_letters".to_owned(), "ai-training".to_owned())]
    );
    let unavailable = v["alerts_unavailable"].as_array().unwrap();
    assert_eq!(unavailable.len(), 1);
    assert!(unavailable[0].as_str().unwrap().contains("cache hit ratio"));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_down_degrades_the_queue_sections_only() {
    let env = TestEnv::new(Options {
        sqs_endpoint: Some(format!("http://127.0.0.1:{}", closed_port())),
        ..Options::default()
    })
    .await;
    record_traffic(&env).await;
    let v = env.get_json("/api/admin/performance").await;
    let err = v["queues"]["error"]
        .as_str()
        .expect("queue section carries the error");
    assert!(err.starts_with("5 of 5 queues could not be read"), "{err}");
    for q in v["queues"]["items"].as_array().unwrap() {
        assert!(q["error"].is_string() && q["depth"].is_null(), "{q}");
    }
    assert!(v["metrics"]["error"].is_null());
    assert_eq!(v["metrics"]["windows"][0]["requests"], 40);
    assert!(alert_kinds(&v).iter().any(|(k, _)| k == "response_time"));
    assert!(
        v["alerts_unavailable"][0]
            .as_str()
            .unwrap()
            .contains("dead letters")
    );

    // The queues route has nothing else to show: 503 JSON.
    let (s, _, b) = env
        .call(Method::GET, "/api/admin/queues", Some(Role::Admin), None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&b), "unavailable");
    env.cleanup().await;
}
