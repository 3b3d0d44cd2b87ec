//! The real-time view on the shared Redis (unique prefix per test, nothing flushed): merging
//! across processes and minutes, percentile accuracy, windows, TTLs, alerts.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use monitoring::histogram::RELATIVE_ERROR;
use monitoring::store::BUCKET_TTL;
use monitoring::{
    AlertKind, CacheOutcome, JobOutcome, ManualClock, Monitor, MonitorConfig, PerformanceReport,
    RedisWrite,
};

const GET: http::Method = http::Method::GET;

/// Deterministic xorshift, so the "known distribution" is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-normal latency around 80 ms (σ = 1.2), like an API with a long tail.
    fn latency_ms(&mut self) -> f64 {
        let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (80f64.ln() + 1.2 * z).exp()
    }
}

fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn whole_micros(ms: f64) -> Duration {
    Duration::from_micros((ms * 1000.0).round() as u64)
}

async fn report(m: &Monitor, minute: u64, second: u64) -> PerformanceReport {
    m.report_at(at(minute, second), &BTreeMap::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn several_processes_merge() {
    let prefix = unique_prefix("merge");
    let minute = this_minute();
    let clock = clock_at(minute, 5);
    let (p1, _, _) = process(&prefix, "users-api", clock.clone()).await;
    let (p2, _, _) = process(&prefix, "users-api", clock.clone()).await;
    let (p3, _, _) = process(&prefix, "files-api", clock.clone()).await;

    let s = p1.scope();
    for _ in 0..10 {
        s.http(&GET, "/a", 200, Duration::from_millis(10));
    }
    s.cache("thumbs", CacheOutcome::Hit);
    assert_eq!(s.flush().await.redis, RedisWrite::Written);
    let s = p2.scope();
    for _ in 0..5 {
        s.http(&GET, "/a", 503, Duration::from_millis(20));
    }
    for _ in 0..5 {
        s.http(&GET, "/a", 404, Duration::from_millis(30));
    }
    s.cache("thumbs", CacheOutcome::Miss);
    s.job("reports", JobOutcome::Dead, Duration::from_secs(2));
    s.flush().await;
    let s = p3.scope();
    s.http(
        &http::Method::DELETE,
        "/files/{id}",
        204,
        Duration::from_millis(40),
    );
    s.cache("thumbs", CacheOutcome::Hit);
    s.job("reports", JobOutcome::Succeeded, Duration::from_secs(1));
    s.flush().await;

    // Any process can read the merged view.
    let r = report(&p3, minute, 30).await;
    let w = r.window("5m").unwrap();
    assert_eq!(w.http.requests, 21);
    assert_eq!(w.http.status.success, 11, "ten 200s and one 204");
    assert_eq!(w.http.status.server_error, 5);
    assert_eq!(w.http.status.client_error, 5);
    assert_eq!(w.http.status.redirect + w.http.status.informational, 0);
    // 204 counts as 2xx
    let a = w
        .routes
        .iter()
        .find(|r| r.service == "users-api" && r.route == "/a")
        .unwrap();
    assert_eq!(a.http.requests, 20);
    assert_eq!(a.http.error_rate_5xx, Some(0.25));
    assert_eq!(a.http.error_rate_4xx, Some(0.25));
    assert_eq!(a.http.latency_ms.mean, Some(17.5));
    let d = w.routes.iter().find(|r| r.service == "files-api").unwrap();
    assert_eq!(
        (d.method.as_str(), d.route.as_str()),
        ("DELETE", "/files/{id}")
    );
    let thumbs = w.caches.iter().find(|c| c.name == "thumbs").unwrap();
    assert_eq!((thumbs.hits, thumbs.misses), (2, 1));
    assert!((thumbs.hit_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-6);
    let q = w.queues.iter().find(|q| q.queue == "reports").unwrap();
    assert_eq!((q.succeeded, q.dead, q.attempts), (1, 1, 2));
    assert_eq!(q.failure_rate, Some(0.5));
    let cold: u64 = w.services.iter().map(|s| s.cold_starts).sum();
    assert_eq!(cold, 3, "one cold start per process");
    // Every window holds the same data here.
    for win in &r.windows {
        assert_eq!(win.http.requests, 21, "{}", win.window);
    }
    cleanup(&prefix).await;
}

#[tokio::test]
async fn percentiles_of_a_known_distribution_are_within_the_bound() {
    let prefix = unique_prefix("percentiles");
    let minute = this_minute();
    let clock = clock_at(minute - 2, 0);
    let mut procs = Vec::new();
    for _ in 0..4 {
        procs.push(process(&prefix, "users-api", clock.clone()).await.0);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut samples = Vec::new();
    let mut jobs = Vec::new();
    // 3 minutes × 4 processes × 250 requests, flushed in batches of 50.
    for m in 0..3 {
        clock.set(at(minute - 2 + m, 10));
        for p in &procs {
            for _ in 0..5 {
                let s = p.scope();
                for _ in 0..50 {
                    let ms = (rng.latency_ms() * 1000.0).round() / 1000.0;
                    samples.push(ms);
                    s.http(&GET, "/search", 200, whole_micros(ms));
                }
                let job_ms = (rng.latency_ms() * 20.0).round();
                jobs.push(job_ms);
                s.job(
                    "file-processing",
                    JobOutcome::Succeeded,
                    whole_micros(job_ms),
                );
                assert_eq!(s.flush().await.redis, RedisWrite::Written);
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    jobs.sort_by(f64::total_cmp);
    let r = report(&procs[0], minute, 40).await;
    let w = r.window("5m").unwrap();
    assert_eq!(w.http.requests, 3000);
    let check = |what: &str, est: Option<f64>, exact: f64| {
        let est = est.unwrap();
        let err = (est - exact).abs() / exact;
        // +0.001 ms: the report rounds to microseconds.
        assert!(
            err <= RELATIVE_ERROR + 0.001 / exact,
            "{what}: estimate {est} vs exact {exact}: error {err:.4} > {RELATIVE_ERROR:.4}"
        );
        println!(
            "{what}: estimate {est:.3} ms, exact {exact:.3} ms, error {:.2} %",
            err * 100.0
        );
    };
    check("p50", w.http.latency_ms.p50, nearest_rank(&samples, 0.50));
    check("p95", w.http.latency_ms.p95, nearest_rank(&samples, 0.95));
    check("p99", w.http.latency_ms.p99, nearest_rank(&samples, 0.99));
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    assert!((w.http.latency_ms.mean.unwrap() - mean).abs() < 0.002);
    let q = &w.queues[0];
    check("job p50", q.duration_ms.p50, nearest_rank(&jobs, 0.50));
    check("job p95", q.duration_ms.p95, nearest_rank(&jobs, 0.95));
    // The same figures from the 24-hour window (read through the hour hashes where whole).
    let day = r.window("24h").unwrap();
    assert_eq!(day.http.latency_ms, w.http.latency_ms);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn windows_pick_the_right_minutes() {
    let prefix = unique_prefix("windows");
    // Minute :17 of the current hour, so the 24 h window starts at :18 of an hour and has
    // partial hours at both ends.
    let now = this_minute() / 60 * 60 + 17;
    let clock = clock_at(now, 30);
    let (m, _, _) = process(&prefix, "users-api", clock.clone()).await;
    // (minutes ago, requests): powers of two so every window sum is unambiguous.
    let writes: [(u64, u32); 9] = [
        (0, 1),
        (4, 2),
        (5, 4),
        (14, 8),
        (15, 16),
        (59, 32),
        (60, 64),
        (1439, 128),
        (1440, 256),
    ];
    for (ago, n) in writes {
        clock.set(at(now - ago, 59));
        let s = m.scope();
        for _ in 0..n {
            s.http(&GET, "/w", 200, Duration::from_millis(5));
        }
        assert_eq!(s.flush().await.redis, RedisWrite::Written);
    }
    let r = report(&m, now, 30).await;
    let got: Vec<(String, u64)> = r
        .windows
        .iter()
        .map(|w| (w.window.clone(), w.http.requests))
        .collect();
    assert_eq!(
        got,
        vec![
            ("5m".into(), 1 + 2),
            ("15m".into(), 3 + 4 + 8),
            ("60m".into(), 15 + 16 + 32),
            ("24h".into(), 63 + 64 + 128),
        ]
    );
    let w5 = r.window("5m").unwrap();
    assert_eq!(w5.covered_seconds, 270.0);
    assert!((w5.http.requests_per_second - 3.0 / 270.0).abs() < 1e-6);
    assert!((w5.http.requests_per_minute - 3.0 * 60.0 / 270.0).abs() < 1e-5);
    assert_eq!(w5.from.timestamp() as u64, (now - 4) * 60);
    assert_eq!(r.window("24h").unwrap().minutes, 1440);
    // A minute later, the oldest minute has left the 24 h window and the others moved on.
    let r = report(&m, now + 1, 0).await;
    assert_eq!(r.window("24h").unwrap().http.requests, 127);
    assert_eq!(r.window("60m").unwrap().http.requests, 1 + 2 + 4 + 8 + 16);
    assert_eq!(r.window("15m").unwrap().http.requests, 1 + 2 + 4);
    assert_eq!(r.window("5m").unwrap().http.requests, 1);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn every_bucket_key_expires_after_a_day() {
    let prefix = unique_prefix("ttl");
    let now = this_minute();
    let clock = clock_at(now, 0);
    let (m, _, _) = process(&prefix, "users-api", clock.clone()).await;
    for ago in [0u64, 1, 61, 600] {
        clock.set(at(now - ago, 0));
        let s = m.scope();
        s.http(&GET, "/t", 200, Duration::from_millis(1));
        s.flush().await;
    }
    let keys = keys_under(&prefix).await;
    let minutes = keys.iter().filter(|k| k.contains("{mon}:m:")).count();
    let hours = keys.iter().filter(|k| k.contains("{mon}:h:")).count();
    assert_eq!(minutes, 4, "{keys:?}");
    assert!((2..=4).contains(&hours), "{keys:?}");
    let mut c = raw_redis().await;
    for k in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(k).query_async(&mut c).await.unwrap();
        assert!(
            ttl > 24 * 3600 && ttl <= BUCKET_TTL.as_secs() as i64,
            "{k}: TTL {ttl}"
        );
    }
    cleanup(&prefix).await;
}

async fn scenario(prefix: &str, bad: bool) -> (Monitor, u64) {
    let minute = this_minute();
    let clock: Arc<ManualClock> = clock_at(minute, 20);
    let cache = cache_with_prefix(prefix).await;
    let m = Monitor::builder()
        .config(MonitorConfig {
            service: "users-api".into(),
            // 1 MB: any process is far above 90 %; 1 TB: far below.
            memory_limit_mb: Some(if bad { 1 } else { 1_000_000 }),
            ..MonitorConfig::default()
        })
        .cache(cache)
        .clock(clock)
        .emf_writer(Capture::default())
        .build()
        .unwrap();
    let s = m.scope();
    for i in 0..30u64 {
        let ms = if bad { 2500 + i * 30 } else { 50 + i * 3 };
        s.http(&GET, "/search", 200, Duration::from_millis(ms));
    }
    let (hits, misses) = if bad { (10, 20) } else { (90, 10) };
    for _ in 0..hits {
        s.cache("thumbnails", CacheOutcome::Hit);
    }
    for _ in 0..misses {
        s.cache("thumbnails", CacheOutcome::Miss);
    }
    let (ok, failed) = if bad { (27, 3) } else { (99, 1) };
    for _ in 0..ok {
        s.job(
            "file-processing",
            JobOutcome::Succeeded,
            Duration::from_millis(100),
        );
    }
    for _ in 0..failed {
        s.job(
            "file-processing",
            JobOutcome::Failed,
            Duration::from_millis(100),
        );
    }
    assert_eq!(s.flush().await.redis, RedisWrite::Written);
    (m, minute)
}

#[tokio::test]
async fn alerts_breach_at_the_guides_thresholds() {
    let prefix = unique_prefix("alerts-bad");
    let (m, minute) = scenario(&prefix, true).await;
    let depths: BTreeMap<String, u64> = [("file-processing".to_owned(), 1500)].into();
    let r = m.report_at(at(minute, 40), &depths).await.unwrap();
    let mut kinds: Vec<(AlertKind, String)> = r
        .alerts
        .iter()
        .map(|a| (a.kind, a.subject.clone()))
        .collect();
    kinds.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        kinds,
        vec![
            (AlertKind::CacheHitRatio, "*".into()),
            (AlertKind::CacheHitRatio, "thumbnails".into()),
            (AlertKind::FailedJobRate, "file-processing".into()),
            (AlertKind::Memory, "users-api".into()),
            (AlertKind::QueueLength, "file-processing".into()),
            (AlertKind::ResponseTime, "*".into()),
            (AlertKind::ResponseTime, "users-api GET /search".into()),
        ]
    );
    let rt = r
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::ResponseTime)
        .unwrap();
    assert!(rt.value > 2000.0 && rt.threshold == 2000.0 && rt.window == "5m");
    let mem = r
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::Memory)
        .unwrap();
    assert_eq!(mem.value, 100.0, "clamped at 100 %");
    let q = r
        .window("5m")
        .unwrap()
        .queues
        .iter()
        .find(|q| q.queue == "file-processing")
        .unwrap();
    assert_eq!(q.depth, Some(1500));
    assert_eq!(q.failure_rate, Some(0.1));
    // Serialises for the admin route, and reads back.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["alerts"].as_array().unwrap().len(), 7);
    assert_eq!(json["windows"][0]["http"]["status"]["2xx"], 30);
    assert_eq!(json["thresholds"]["response_time_p95_ms"], 2000.0);
    let back: PerformanceReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
    cleanup(&prefix).await;

    let prefix = unique_prefix("alerts-good");
    let (m, minute) = scenario(&prefix, false).await;
    let depths: BTreeMap<String, u64> = [("file-processing".to_owned(), 1000)].into();
    let r = m.report_at(at(minute, 40), &depths).await.unwrap();
    assert!(r.alerts.is_empty(), "{:#?}", r.alerts);
    let w = r.window("5m").unwrap();
    assert_eq!(w.cache_total.hit_ratio, Some(0.9));
    assert!(w.services[0].memory_max_percent.unwrap() < 1.0);
    cleanup(&prefix).await;
}
