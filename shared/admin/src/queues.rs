//! Queue figures for `GET /api/admin/queues` and the performance report, and DLQ redrive.
//!
//! Each queue is read on its own (concurrently, each bounded by the source timeout), so one
//! queue that cannot be read shows its error while the others still show their counts.

use std::future::Future;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use jobs::admin::{QueueCounts, RedriveReport, StatsOptions};
use jobs::{JobRecord, QueueDirectory, QueueName, RetryPolicy};
use serde::Serialize;

use crate::{AdminError, AdminState};

/// One queue and its dead-letter queue as the admin API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// Queue name, e.g. `file-processing`.
    pub queue: QueueName,
    /// Attempts and backoff from the catalogue.
    pub retry: RetryPolicy,
    /// Source queue counts (absent when the queue could not be read).
    pub source: Option<QueueCounts>,
    /// Dead-letter queue counts (`visible` is the DLQ depth).
    pub dlq: Option<QueueCounts>,
    /// Jobs in the queue: visible + in flight + delayed (the guide's "queue length").
    pub depth: Option<u64>,
    /// Messages in the dead-letter queue (visible + in flight).
    pub dlq_depth: Option<u64>,
    /// Latest failed or dead jobs, newest first, with their errors (empty when not asked for).
    pub recent_failures: Vec<JobRecord>,
    /// Why the queue could not be read.
    pub error: Option<String>,
    /// Why recent failures could not be listed (the counts may still be there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_failures_error: Option<String>,
}

/// Answer of `GET /api/admin/queues`.
#[derive(Debug, Clone, Serialize)]
pub struct QueuesReport {
    /// When the figures were read.
    pub generated_at: DateTime<Utc>,
    /// All five queues, in catalogue order.
    pub queues: Vec<QueueView>,
}

/// What to read besides the counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// Peek DLQs for the oldest dead message's age (never source queues: a peek there would use
    /// up an attempt of a waiting job).
    pub(crate) peek_dlqs: bool,
    /// Recent failures per queue from job tracking (0: none).
    pub(crate) recent_failures: usize,
}

/// Bounds `fut` by the configured source timeout.
pub(crate) async fn bounded<T>(
    state: &AdminState,
    source_name: &'static str,
    fut: impl Future<Output = Result<T, AdminError>>,
) -> Result<T, AdminError> {
    let timeout = state.inner.config.source_timeout;
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(AdminError::Timeout {
            source_name,
            timeout,
        }))
}

/// Reads all five queues; the result always has five entries, in catalogue order.
pub(crate) async fn read_queues(state: &AdminState, options: ReadOptions) -> Vec<QueueView> {
    join_all(QueueName::ALL.map(|q| read_queue(state, q, options))).await
}

async fn read_queue(state: &AdminState, queue: QueueName, options: ReadOptions) -> QueueView {
    let mut view = QueueView {
        queue,
        retry: queue.spec().retry,
        source: None,
        dlq: None,
        depth: None,
        dlq_depth: None,
        recent_failures: Vec::new(),
        error: None,
        recent_failures_error: None,
    };
    let inner = &state.inner;
    let counts = async {
        let urls = inner
            .queues
            .get(queue)
            .map_err(|_| AdminError::QueueNotConfigured(queue.as_str()))?;
        let mut one = QueueDirectory::new();
        one.insert(queue, urls.clone());
        let stats_options = StatsOptions {
            peek_source_queues: false,
            peek_dlqs: options.peek_dlqs,
            recent_failures: 0,
        };
        let mut stats = jobs::admin::queue_stats(&inner.sqs, &one, None, &stats_options).await?;
        stats
            .pop()
            .ok_or(AdminError::QueueNotConfigured(queue.as_str()))
    };
    let failures = async {
        match &inner.tracking {
            Some(t) if options.recent_failures > 0 => Some(
                bounded(state, "job tracking", async {
                    Ok(t.recent_failures(queue, options.recent_failures).await?)
                })
                .await,
            ),
            _ => None,
        }
    };
    let (counts, failures) = tokio::join!(bounded(state, "sqs", counts), failures);
    match counts {
        Ok(stats) => {
            view.depth = Some(
                stats
                    .source
                    .visible
                    .saturating_add(stats.source.in_flight)
                    .saturating_add(stats.source.delayed),
            );
            view.dlq_depth = Some(stats.dlq.visible.saturating_add(stats.dlq.in_flight));
            view.source = Some(stats.source);
            view.dlq = Some(stats.dlq);
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    match failures {
        Some(Ok(list)) => view.recent_failures = list,
        Some(Err(e)) => view.recent_failures_error = Some(e.to_string()),
        None => {}
    }
    view
}

/// The queues report; an error only when not a single queue could be read.
pub(crate) async fn queues_report(state: &AdminState) -> Result<QueuesReport, AdminError> {
    let queues = read_queues(
        state,
        ReadOptions {
            peek_dlqs: true,
            recent_failures: state.inner.config.recent_failures,
        },
    )
    .await;
    if queues.iter().all(|q| q.error.is_some()) {
        let first = queues
            .iter()
            .find_map(|q| q.error.clone())
            .unwrap_or_default();
        return Err(AdminError::QueuesUnavailable(first));
    }
    Ok(QueuesReport {
        generated_at: Utc::now(),
        queues,
    })
}

/// Answer of `POST /api/admin/queues/{name}/redrive`.
#[derive(Debug, Clone, Serialize)]
pub struct RedriveResult {
    /// The queue whose DLQ was drained.
    pub queue: QueueName,
    /// The most messages this request was allowed to move.
    pub max_messages: usize,
    /// Messages moved back and removed from the DLQ, and those that could not be sent.
    #[serde(flatten)]
    pub report: RedriveReport,
}

/// Moves up to `max_messages` messages from `name`'s DLQ back to the queue.
pub(crate) async fn redrive(
    state: &AdminState,
    name: &str,
    max_messages: usize,
) -> Result<RedriveResult, AdminError> {
    let queue: QueueName = name
        .parse()
        .map_err(|_| AdminError::UnknownQueue(name.to_owned()))?;
    let urls = state
        .inner
        .queues
        .get(queue)
        .map_err(|_| AdminError::QueueNotConfigured(queue.as_str()))?;
    // Not bounded by the source timeout: cancelling between the send and the delete would
    // duplicate messages. Its size is bounded instead (`AdminConfig::max_redrive`).
    let report = jobs::admin::redrive(
        &state.inner.sqs,
        urls,
        state.inner.tracking.as_ref(),
        max_messages,
    )
    .await?;
    tracing::info!(queue = %queue, moved = report.moved, failed = report.failed, "DLQ redriven");
    Ok(RedriveResult {
        queue,
        max_messages,
        report,
    })
}
