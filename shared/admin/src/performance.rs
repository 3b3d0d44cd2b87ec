//! The document behind `GET /api/admin/performance`: the monitoring windows, the database
//! report, live queue depths and the guide's alerts breached right now.
//!
//! The three sources are read concurrently, each bounded by the source timeout. A source that
//! fails leaves its section with an `error` and no figures; the others are still answered, and
//! `alerts_unavailable` says which alerts could not be evaluated.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use db::QueryReport;
use monitoring::{AlertThresholds, LatencySummary, PerformanceReport, RouteSummary, WindowReport};
use serde::Serialize;

use crate::AdminState;
use crate::queues::{QueueView, ReadOptions, bounded, read_queues};

/// Window the alerts are evaluated on (monitoring's alert window).
pub const ALERT_WINDOW: &str = "5m";

/// Which of the guide's alerts (monitoring's five, plus messages in a dead-letter queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// "Response times > 2 seconds" (p95 of the window).
    ResponseTime,
    /// "Memory usage > 90%".
    Memory,
    /// "Cache hit ratio < 80%".
    CacheHitRatio,
    /// "Queue length > 1000 jobs", from the live SQS counts.
    QueueLength,
    /// "Failed job rate > 5%".
    FailedJobRate,
    /// Any message in a dead-letter queue: a job failed for good and waits for a human.
    DeadLetters,
}

impl From<monitoring::AlertKind> for AlertKind {
    fn from(k: monitoring::AlertKind) -> Self {
        match k {
            monitoring::AlertKind::ResponseTime => AlertKind::ResponseTime,
            monitoring::AlertKind::Memory => AlertKind::Memory,
            monitoring::AlertKind::CacheHitRatio => AlertKind::CacheHitRatio,
            monitoring::AlertKind::QueueLength => AlertKind::QueueLength,
            monitoring::AlertKind::FailedJobRate => AlertKind::FailedJobRate,
        }
    }
}

/// A threshold breached right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Which alert.
    pub kind: AlertKind,
    /// What breached it: `*`, a route, cache, service or queue name.
    pub subject: String,
    /// The observed value (ms, percent, ratio or messages).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The metrics window it was evaluated on, or `live` for queue counts.
    pub window: String,
    /// A sentence for humans.
    pub message: String,
}

impl From<monitoring::Alert> for ActiveAlert {
    fn from(a: monitoring::Alert) -> Self {
        ActiveAlert {
            kind: a.kind.into(),
            subject: a.subject,
            value: a.value,
            threshold: a.threshold,
            window: a.window,
            message: a.message,
        }
    }
}

/// The headline figures of one monitoring window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowFigures {
    /// `5m`, `15m`, `60m` or `24h`.
    pub window: String,
    /// Start of the window.
    pub from: DateTime<Utc>,
    /// End of the window (the report's "now").
    pub to: DateTime<Utc>,
    /// Requests in the window, all routes of all services.
    pub requests: u64,
    /// Throughput in requests per second.
    pub requests_per_second: f64,
    /// Throughput in requests per minute.
    pub requests_per_minute: f64,
    /// Latency p50/p95/p99/mean in ms (null without requests).
    pub latency_ms: LatencySummary,
    /// Share of 5xx responses (0..=1).
    pub error_rate: Option<f64>,
    /// Share of 4xx responses (0..=1).
    pub client_error_rate: Option<f64>,
    /// Cache hits / (hits + misses), all caches (0..=1).
    pub cache_hit_ratio: Option<f64>,
    /// Cache hits.
    pub cache_hits: u64,
    /// Cache misses.
    pub cache_misses: u64,
    /// Job attempts on all queues.
    pub job_attempts: u64,
    /// (failed + dead) / attempts over all queues (0..=1).
    pub job_failure_rate: Option<f64>,
    /// Highest memory use of any service, percent of its configured size.
    pub memory_max_percent: Option<f64>,
}

impl WindowFigures {
    fn from_window(w: &WindowReport) -> Self {
        let (attempts, bad) = w.queues.iter().fold((0u64, 0u64), |(a, b), q| {
            (
                a.saturating_add(q.attempts),
                b.saturating_add(q.failed).saturating_add(q.dead),
            )
        });
        WindowFigures {
            window: w.window.clone(),
            from: w.from,
            to: w.to,
            requests: w.http.requests,
            requests_per_second: w.http.requests_per_second,
            requests_per_minute: w.http.requests_per_minute,
            latency_ms: w.http.latency_ms.clone(),
            error_rate: w.http.error_rate_5xx,
            client_error_rate: w.http.error_rate_4xx,
            cache_hit_ratio: w.cache_total.hit_ratio,
            cache_hits: w.cache_total.hits,
            cache_misses: w.cache_total.misses,
            job_attempts: attempts,
            job_failure_rate: (attempts > 0).then(|| bad as f64 / attempts as f64),
            memory_max_percent: w
                .services
                .iter()
                .filter_map(|s| s.memory_max_percent)
                .reduce(f64::max),
        }
    }
}

/// The monitoring section (Redis real-time view).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSection {
    /// Why the section is empty (Redis down, no Redis attached, timeout).
    pub error: Option<String>,
    /// 5m, 15m, 60m and 24h, shortest first.
    pub windows: Vec<WindowFigures>,
    /// Busiest routes of the 5-minute window.
    pub routes: Vec<RouteSummary>,
}

/// The database section (statement statistics, slow queries, pools).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseSection {
    /// Why the section is empty.
    pub error: Option<String>,
    /// The query monitor's report: `top_statements`, `slow_queries` (with plans and
    /// recommendations), `pools`, `pg_stat_statements`, …
    #[serde(flatten)]
    pub report: Option<QueryReport>,
}

/// Live depth of one queue, without peeking (a peek would use up an attempt).
#[derive(Debug, Clone, Serialize)]
pub struct QueueDepth {
    /// Queue name.
    pub queue: String,
    /// Visible messages.
    pub visible: Option<u64>,
    /// Messages being processed.
    pub in_flight: Option<u64>,
    /// Delayed messages.
    pub delayed: Option<u64>,
    /// visible + in flight + delayed.
    pub depth: Option<u64>,
    /// Messages in the dead-letter queue.
    pub dlq_depth: Option<u64>,
    /// Why this queue could not be read.
    pub error: Option<String>,
}

impl From<QueueView> for QueueDepth {
    fn from(v: QueueView) -> Self {
        QueueDepth {
            queue: v.queue.as_str().to_owned(),
            visible: v.source.as_ref().map(|c| c.visible),
            in_flight: v.source.as_ref().map(|c| c.in_flight),
            delayed: v.source.as_ref().map(|c| c.delayed),
            depth: v.depth,
            dlq_depth: v.dlq_depth,
            error: v.error,
        }
    }
}

/// The queue section (SQS).
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueuesSection {
    /// Set when at least one queue could not be read (each item says why).
    pub error: Option<String>,
    /// The five queues, in catalogue order.
    pub items: Vec<QueueDepth>,
}

/// The whole answer of `GET /api/admin/performance`.
#[derive(Debug, Clone, Serialize)]
pub struct PerformanceDocument {
    /// When the document was assembled.
    pub generated_at: DateTime<Utc>,
    /// Latency, throughput, error rate and cache figures per window.
    pub metrics: MetricsSection,
    /// Query statistics and pools.
    pub database: DatabaseSection,
    /// Live queue depths.
    pub queues: QueuesSection,
    /// Thresholds breached right now.
    pub alerts: Vec<ActiveAlert>,
    /// Alerts that could not be evaluated, and why (a failed source).
    pub alerts_unavailable: Vec<String>,
    /// The thresholds in use (the guide's values unless configured otherwise).
    pub thresholds: AlertThresholds,
}

/// Alerts from the live queue counts: depth over the threshold, and any dead-lettered message.
pub fn queue_alerts(items: &[QueueDepth], t: &AlertThresholds) -> Vec<ActiveAlert> {
    let mut alerts = Vec::new();
    for q in items {
        if let Some(d) = q.depth
            && d > t.queue_length
        {
            alerts.push(ActiveAlert {
                kind: AlertKind::QueueLength,
                subject: q.queue.clone(),
                value: d as f64,
                threshold: t.queue_length as f64,
                window: "live".to_owned(),
                message: format!("queue {} holds {d} jobs (> {})", q.queue, t.queue_length),
            });
        }
        if let Some(d) = q.dlq_depth
            && d > 0
        {
            alerts.push(ActiveAlert {
                kind: AlertKind::DeadLetters,
                subject: q.queue.clone(),
                value: d as f64,
                threshold: 0.0,
                window: "live".to_owned(),
                message: format!(
                    "{d} message(s) in the dead-letter queue of {}: inspect, then redrive",
                    q.queue
                ),
            });
        }
    }
    alerts
}

fn metrics_section(
    report: &PerformanceReport,
    top_routes: usize,
    thresholds: &AlertThresholds,
) -> (MetricsSection, Vec<ActiveAlert>) {
    let alerts = match report.window(ALERT_WINDOW) {
        // Depths are left out here: queue alerts come from the live counts read alongside.
        Some(w) => monitoring::evaluate_alerts(w, &BTreeMap::new(), thresholds)
            .into_iter()
            .map(ActiveAlert::from)
            .collect(),
        None => Vec::new(),
    };
    let section = MetricsSection {
        error: None,
        windows: report
            .windows
            .iter()
            .map(WindowFigures::from_window)
            .collect(),
        routes: report
            .window(ALERT_WINDOW)
            .map(|w| w.routes.iter().take(top_routes).cloned().collect())
            .unwrap_or_default(),
    };
    (section, alerts)
}

/// Assembles the document; never fails as a whole.
pub(crate) async fn performance(state: &AdminState) -> PerformanceDocument {
    let inner = &state.inner;
    let thresholds = inner.monitor.config().thresholds.clone();
    let metrics = bounded(state, "redis", async {
        Ok(inner.monitor.report(&BTreeMap::new()).await?)
    });
    let database = bounded(state, "postgresql", async {
        Ok(inner
            .queries
            .report(&inner.db, inner.config.top_statements)
            .await)
    });
    let queues = read_queues(
        state,
        ReadOptions {
            peek_dlqs: false,
            recent_failures: 0,
        },
    );
    let (metrics, database, queues) = tokio::join!(metrics, database, queues);

    let mut alerts = Vec::new();
    let mut alerts_unavailable = Vec::new();
    let metrics = match metrics {
        Ok(report) => {
            let (section, a) = metrics_section(&report, inner.config.top_routes, &thresholds);
            alerts.extend(a);
            section
        }
        Err(e) => {
            let error = e.to_string();
            tracing::warn!(%error, "performance report: metrics unavailable");
            alerts_unavailable.push(format!(
                "response time, memory, cache hit ratio, failed job rate: {error}"
            ));
            MetricsSection {
                error: Some(error),
                ..MetricsSection::default()
            }
        }
    };
    let database = match database {
        Ok(report) => DatabaseSection {
            error: None,
            report: Some(report),
        },
        Err(e) => DatabaseSection {
            error: Some(e.to_string()),
            report: None,
        },
    };
    let items: Vec<QueueDepth> = queues.into_iter().map(QueueDepth::from).collect();
    let failed: Vec<String> = items
        .iter()
        .filter_map(|q| q.error.as_ref().map(|e| format!("{}: {e}", q.queue)))
        .collect();
    let queues_error = (!failed.is_empty()).then(|| {
        format!(
            "{} of {} queues could not be read ({})",
            failed.len(),
            items.len(),
            failed.join("; ")
        )
    });
    if let Some(e) = &queues_error {
        tracing::warn!(error = %e, "performance report: queues unavailable");
        alerts_unavailable.push(format!("queue length, dead letters: {e}"));
    }
    alerts.extend(queue_alerts(&items, &thresholds));
    PerformanceDocument {
        generated_at: Utc::now(),
        metrics,
        database,
        queues: QueuesSection {
            error: queues_error,
            items,
        },
        alerts,
        alerts_unavailable,
        thresholds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(queue: &str, depth: Option<u64>, dlq: Option<u64>) -> QueueDepth {
        QueueDepth {
            queue: queue.to_owned(),
            visible: depth,
            in_flight: Some(0),
            delayed: Some(0),
            depth,
            dlq_depth: dlq,
            error: None,
        }
    }

    #[test]
    fn queue_length_is_strictly_over_the_threshold_and_any_dead_letter_counts() {
        let t = AlertThresholds::default();
        let items = [
            depth("file-processing", Some(1000), Some(0)),
            depth("reports", Some(1001), Some(0)),
            depth("notifications", Some(0), Some(1)),
            depth("ai-training", None, None),
        ];
        let alerts = queue_alerts(&items, &t);
        let got: Vec<(AlertKind, &str)> = alerts
            .iter()
            .map(|a| (a.kind, a.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (AlertKind::QueueLength, "reports"),
                (AlertKind::DeadLetters, "notifications")
            ]
        );
        assert_eq!(alerts[0].value, 1001.0);
        assert_eq!(alerts[0].threshold, 1000.0);
        assert_eq!(alerts[1].window, "live");
    }

    #[test]
    fn alert_kinds_serialise_in_snake_case() {
        let v = serde_json::to_value([AlertKind::DeadLetters, AlertKind::CacheHitRatio]).unwrap();
        assert_eq!(v, serde_json::json!(["dead_letters", "cache_hit_ratio"]));
        assert_eq!(
            AlertKind::from(monitoring::AlertKind::FailedJobRate),
            AlertKind::FailedJobRate
        );
    }
}
