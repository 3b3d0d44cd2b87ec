//! The report behind `GET /api/admin/performance`: windows of the real-time view, summarised, and
//! the guide's alerts evaluated on the most recent window.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::histogram::{self, Histogram};
use crate::store::{Agg, CacheCounts, HttpAgg, JobAgg, ServiceAgg};

/// Window the alerts are evaluated on (the first of [`WINDOWS`]).
pub const ALERT_WINDOW: &str = "5m";

/// The report's windows: label and length in minutes (the current, partial minute included).
pub const WINDOWS: [(&str, u32); 4] = [("5m", 5), ("15m", 15), ("60m", 60), ("24h", 1440)];

/// The guide's "Performance Alerts", as numbers. Comparisons are strict (`>` / `<`), as worded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertThresholds {
    /// "Response times > 2 seconds", compared with the window's p95 latency (ms).
    pub response_time_p95_ms: f64,
    /// "Memory usage > 90%": highest sample of a service in the window (percent).
    pub memory_percent: f64,
    /// "Cache hit ratio < 80%": hits / (hits + misses), 0..=1.
    pub cache_hit_ratio: f64,
    /// "Queue length > 1000 jobs": the depth the caller passes in.
    pub queue_length: u64,
    /// "Failed job rate > 5%": (failed + dead) / attempts, 0..=1.
    pub failed_job_rate: f64,
    /// Fewer requests / lookups / job attempts than this in the window: ratio and latency alerts
    /// are not evaluated (one slow request on an idle route is not an incident).
    pub min_samples: u64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            response_time_p95_ms: 2000.0,
            memory_percent: 90.0,
            cache_hit_ratio: 0.80,
            queue_length: 1000,
            failed_job_rate: 0.05,
            min_samples: 20,
        }
    }
}

/// Which of the guide's alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// p95 latency above the threshold.
    ResponseTime,
    /// Memory use above the threshold.
    Memory,
    /// Cache hit ratio below the threshold.
    CacheHitRatio,
    /// Queue depth above the threshold.
    QueueLength,
    /// Job failure rate above the threshold.
    FailedJobRate,
}

/// A breached alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Which alert.
    pub kind: AlertKind,
    /// What breached it: `*` for everything, a route ("service METHOD /route"), cache, queue or
    /// service name.
    pub subject: String,
    /// The observed value (ms, percent, ratio or jobs).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The window it was evaluated on.
    pub window: String,
    /// A sentence for humans.
    pub message: String,
}

/// Latency (or duration) figures from the merged histogram, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median estimate.
    pub p50: Option<f64>,
    /// 95th percentile estimate.
    pub p95: Option<f64>,
    /// 99th percentile estimate.
    pub p99: Option<f64>,
    /// Exact mean (from the stored sum).
    pub mean: Option<f64>,
}

impl LatencySummary {
    fn from(h: &Histogram, sum_us: u64) -> Self {
        let n = h.count();
        LatencySummary {
            p50: h.percentile(0.50).map(round3),
            p95: h.percentile(0.95).map(round3),
            p99: h.percentile(0.99).map(round3),
            mean: (n > 0).then(|| round3(sum_us as f64 / 1000.0 / n as f64)),
        }
    }
}

/// Requests per status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// 1xx.
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub redirect: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 5xx.
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

/// HTTP figures of a window (all routes, or one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpSummary {
    /// Requests in the window.
    pub requests: u64,
    /// Requests per second over the covered time.
    pub requests_per_second: f64,
    /// Requests per minute over the covered time.
    pub requests_per_minute: f64,
    /// Latency in ms.
    pub latency_ms: LatencySummary,
    /// Requests per status class.
    pub status: StatusCounts,
    /// Share of 5xx responses (0..=1).
    pub error_rate_5xx: Option<f64>,
    /// Share of 4xx responses (0..=1), reported separately: mostly the clients' doing.
    pub error_rate_4xx: Option<f64>,
}

impl HttpSummary {
    fn from(a: &HttpAgg, covered_secs: f64) -> Self {
        let n = a.requests;
        let rate = |k: usize| (n > 0).then(|| round6(a.classes[k] as f64 / n as f64));
        let per_sec = if covered_secs > 0.0 {
            n as f64 / covered_secs
        } else {
            0.0
        };
        HttpSummary {
            requests: n,
            requests_per_second: round6(per_sec),
            requests_per_minute: round6(per_sec * 60.0),
            latency_ms: LatencySummary::from(&a.latency, a.latency_sum_us),
            status: StatusCounts {
                informational: a.classes[0],
                success: a.classes[1],
                redirect: a.classes[2],
                client_error: a.classes[3],
                server_error: a.classes[4],
            },
            error_rate_5xx: rate(4),
            error_rate_4xx: rate(3),
        }
    }
}

/// One route's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSummary {
    /// The service (function) that served it.
    pub service: String,
    /// HTTP method.
    pub method: String,
    /// Route template (`/users/{id}`), or `unmatched`.
    pub route: String,
    /// Its figures.
    #[serde(flatten)]
    pub http: HttpSummary,
}

/// One cache name's figures (or `*` for all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheSummary {
    /// Cache name.
    pub name: String,
    /// Lookups that hit.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// Failed operations.
    pub errors: u64,
    /// Operations skipped by the circuit breaker.
    pub bypasses: u64,
    /// hits / (hits + misses).
    pub hit_ratio: Option<f64>,
}

impl CacheSummary {
    fn from(name: &str, c: &CacheCounts) -> Self {
        let lookups = c.hits.saturating_add(c.misses);
        CacheSummary {
            name: name.to_owned(),
            hits: c.hits,
            misses: c.misses,
            errors: c.errors,
            bypasses: c.bypasses,
            hit_ratio: (lookups > 0).then(|| round6(c.hits as f64 / lookups as f64)),
        }
    }
}

/// One queue's job figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// Queue name.
    pub queue: String,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and will be retried.
    pub failed: u64,
    /// Attempts that failed for good (dead-lettered).
    pub dead: u64,
    /// All attempts.
    pub attempts: u64,
    /// (failed + dead) / attempts.
    pub failure_rate: Option<f64>,
    /// Attempts per minute over the covered time.
    pub jobs_per_minute: f64,
    /// Duration in ms.
    pub duration_ms: LatencySummary,
    /// Depth passed in by the caller (from SQS), if any.
    pub depth: Option<u64>,
}

impl QueueSummary {
    fn from(name: &str, j: &JobAgg, covered_secs: f64, depth: Option<u64>) -> Self {
        let attempts = j.succeeded.saturating_add(j.failed).saturating_add(j.dead);
        let bad = j.failed.saturating_add(j.dead);
        QueueSummary {
            queue: name.to_owned(),
            succeeded: j.succeeded,
            failed: j.failed,
            dead: j.dead,
            attempts,
            failure_rate: (attempts > 0).then(|| round6(bad as f64 / attempts as f64)),
            jobs_per_minute: if covered_secs > 0.0 {
                round6(attempts as f64 * 60.0 / covered_secs)
            } else {
                0.0
            },
            duration_ms: LatencySummary::from(&j.duration, j.duration_sum_us),
            depth,
        }
    }
}

/// One service's process figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// Service name.
    pub service: String,
    /// Highest memory use of any invocation, percent of the configured size (0.1 % steps).
    pub memory_max_percent: Option<f64>,
    /// Memory samples (invocations that measured it).
    pub memory_samples: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Database queries.
    pub db_queries: u64,
    /// Queries slower than the slow-query threshold.
    pub slow_queries: u64,
    /// Mean database time per query (ms).
    pub db_mean_query_ms: Option<f64>,
}

impl ServiceSummary {
    fn from(name: &str, s: &ServiceAgg) -> Self {
        ServiceSummary {
            service: name.to_owned(),
            memory_max_percent: s
                .memory_permille
                .keys()
                .next_back()
                .map(|&p| f64::from(p) / 10.0),
            memory_samples: s.memory_permille.values().sum(),
            cold_starts: s.cold_starts,
            db_queries: s.db_queries,
            slow_queries: s.slow_queries,
            db_mean_query_ms: (s.db_queries > 0)
                .then(|| round3(s.db_time_us as f64 / 1000.0 / s.db_queries as f64)),
        }
    }
}

/// One window of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// `5m`, `15m`, `60m` or `24h`.
    pub window: String,
    /// Length in minutes, the current (partial) minute included.
    pub minutes: u32,
    /// Start of the first minute.
    pub from: DateTime<Utc>,
    /// The report's "now".
    pub to: DateTime<Utc>,
    /// Seconds from `from` to `to`: the denominator of the rates.
    pub covered_seconds: f64,
    /// All routes of all services together.
    pub http: HttpSummary,
    /// Per route, busiest first.
    pub routes: Vec<RouteSummary>,
    /// All caches together (`*`).
    pub cache_total: CacheSummary,
    /// Per cache name.
    pub caches: Vec<CacheSummary>,
    /// Per queue (queues with only a depth passed in appear too).
    pub queues: Vec<QueueSummary>,
    /// Per service.
    pub services: Vec<ServiceSummary>,
}

impl WindowReport {
    /// Summarises an aggregate covering `[from, to]`.
    pub(crate) fn build(
        label: &str,
        minutes: u32,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        agg: &Agg,
        depths: &BTreeMap<String, u64>,
    ) -> Self {
        let covered = ((to - from).num_milliseconds().max(1000)) as f64 / 1000.0;
        let mut all = HttpAgg::default();
        let mut routes: Vec<RouteSummary> = agg
            .routes
            .iter()
            .filter(|(_, r)| r.requests > 0)
            .map(|((service, key), r)| {
                all.merge(r);
                let (method, route) = key.split_once(' ').unwrap_or(("OTHER", key.as_str()));
                RouteSummary {
                    service: service.clone(),
                    method: method.to_owned(),
                    route: route.to_owned(),
                    http: HttpSummary::from(r, covered),
                }
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.http.requests));
        let mut total = CacheCounts::default();
        let caches: Vec<CacheSummary> = agg
            .caches
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(name, c)| {
                total.add(c);
                CacheSummary::from(name, c)
            })
            .collect();
        let mut queues: Vec<QueueSummary> = agg
            .queues
            .iter()
            .map(|(q, j)| QueueSummary::from(q, j, covered, depths.get(q).copied()))
            .collect();
        for (q, &d) in depths {
            if !agg.queues.contains_key(q) {
                queues.push(QueueSummary::from(q, &JobAgg::default(), covered, Some(d)));
            }
        }
        queues.sort_by(|a, b| a.queue.cmp(&b.queue));
        WindowReport {
            window: label.to_owned(),
            minutes,
            from,
            to,
            covered_seconds: round3(covered),
            http: HttpSummary::from(&all, covered),
            routes,
            cache_total: CacheSummary::from("*", &total),
            caches,
            queues,
            services: agg
                .services
                .iter()
                .map(|(s, a)| ServiceSummary::from(s, a))
                .collect(),
        }
    }
}

/// How the figures were computed (so a reader of the JSON knows what p95 means here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMethod {
    /// The percentile method.
    pub percentiles: String,
    /// Largest relative error of a percentile at or above 1 ms.
    pub percentile_relative_error: f64,
    /// Window the alerts are evaluated on.
    pub alert_window: String,
}

impl Default for ReportMethod {
    fn default() -> Self {
        ReportMethod {
            percentiles: "nearest-rank on merged log-scale histograms (4 buckets per doubling, \
                          geometric bucket middle)"
                .to_owned(),
            percentile_relative_error: round6(histogram::RELATIVE_ERROR),
            alert_window: ALERT_WINDOW.to_owned(),
        }
    }
}

/// The whole report for `GET /api/admin/performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceReport {
    /// The instant the report describes.
    pub generated_at: DateTime<Utc>,
    /// The windows, shortest first.
    pub windows: Vec<WindowReport>,
    /// Alerts breached right now (evaluated on [`ALERT_WINDOW`] and the queue depths given).
    pub alerts: Vec<Alert>,
    /// The thresholds used.
    pub thresholds: AlertThresholds,
    /// Queue depths passed in by the caller.
    pub queue_depths: BTreeMap<String, u64>,
    /// How percentiles and alerts are computed.
    pub method: ReportMethod,
}

impl PerformanceReport {
    /// The window with this label (`5m`, `15m`, `60m`, `24h`).
    pub fn window(&self, label: &str) -> Option<&WindowReport> {
        self.windows.iter().find(|w| w.window == label)
    }
}

/// Evaluates the guide's alerts on one window plus the queue depths read by the caller.
pub fn evaluate_alerts(
    w: &WindowReport,
    depths: &BTreeMap<String, u64>,
    t: &AlertThresholds,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let window = w.window.clone();
    let mut push = |kind, subject: String, value: f64, threshold: f64, message: String| {
        alerts.push(Alert {
            kind,
            subject,
            value,
            threshold,
            window: window.clone(),
            message,
        });
    };
    let mut latency = |subject: String, h: &HttpSummary| {
        if h.requests >= t.min_samples
            && let Some(p95) = h.latency_ms.p95
            && p95 > t.response_time_p95_ms
        {
            push(
                AlertKind::ResponseTime,
                subject.clone(),
                p95,
                t.response_time_p95_ms,
                format!(
                    "p95 response time of {subject} is {p95:.0} ms (> {:.0} ms) over {} requests",
                    t.response_time_p95_ms, h.requests
                ),
            );
        }
    };
    latency("*".to_owned(), &w.http);
    for r in &w.routes {
        latency(format!("{} {} {}", r.service, r.method, r.route), &r.http);
    }
    for s in &w.services {
        if let Some(m) = s.memory_max_percent
            && m > t.memory_percent
        {
            push(
                AlertKind::Memory,
                s.service.clone(),
                m,
                t.memory_percent,
                format!(
                    "memory use of {} reached {m:.1} % (> {:.0} %)",
                    s.service, t.memory_percent
                ),
            );
        }
    }
    for c in std::iter::once(&w.cache_total).chain(&w.caches) {
        if c.hits.saturating_add(c.misses) >= t.min_samples
            && let Some(r) = c.hit_ratio
            && r < t.cache_hit_ratio
        {
            push(
                AlertKind::CacheHitRatio,
                c.name.clone(),
                r,
                t.cache_hit_ratio,
                format!(
                    "cache hit ratio of {} is {:.1} % (< {:.0} %)",
                    c.name,
                    r * 100.0,
                    t.cache_hit_ratio * 100.0
                ),
            );
        }
    }
    for (q, &d) in depths {
        if d > t.queue_length {
            push(
                AlertKind::QueueLength,
                q.clone(),
                d as f64,
                t.queue_length as f64,
                format!("queue {q} holds {d} jobs (> {})", t.queue_length),
            );
        }
    }
    for q in &w.queues {
        if q.attempts >= t.min_samples
            && let Some(r) = q.failure_rate
            && r > t.failed_job_rate
        {
            push(
                AlertKind::FailedJobRate,
                q.queue.clone(),
                r,
                t.failed_job_rate,
                format!(
                    "{:.1} % of {} job attempts on {} failed (> {:.0} %)",
                    r * 100.0,
                    q.attempts,
                    q.queue,
                    t.failed_job_rate * 100.0
                ),
            );
        }
    }
    alerts
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
