//! Queue administration: per-queue statistics (for `GET /api/admin/queues`) and DLQ redrive
//! (for `POST /api/admin/queues/{name}/redrive`).
//!
//! Age of the oldest message: `ApproximateAgeOfOldestMessage` is a CloudWatch metric, not a
//! queue attribute, so GetQueueAttributes cannot return it (and moto has no CloudWatch SQS
//! metrics). It is computed from the `SentTimestamp` of a peeked sample of up to 10 messages
//! (ReceiveMessage with VisibilityTimeout 0). Peeking counts as a receive, so it is done on DLQs
//! always (they have no redrive policy) and on source queues only when asked, because there it
//! would use up attempts of waiting jobs. The figure is the oldest of the sample, a lower bound.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use chrono::Utc;
use serde::Serialize;

use crate::catalogue::{QueueDirectory, QueueName, QueueUrls, RetryPolicy};
use crate::envelope::Job;
use crate::error::{Error, Result};
use crate::runtime::RUNTIME_ATTRIBUTE_PREFIX;
use crate::tracking::{JobRecord, JobTracking};

/// Options of [`queue_stats`].
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// Peek source queues for the oldest message's age (uses up one attempt of each peeked
    /// message; off by default).
    pub peek_source_queues: bool,
    /// Peek DLQs for the oldest dead message's age (harmless; on by default).
    pub peek_dlqs: bool,
    /// Recent failures listed per queue (from job tracking).
    pub recent_failures: usize,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            peek_source_queues: false,
            peek_dlqs: true,
            recent_failures: 10,
        }
    }
}

/// Message counts of one SQS queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// ApproximateNumberOfMessages (visible).
    pub visible: u64,
    /// ApproximateNumberOfMessagesNotVisible (in flight).
    pub in_flight: u64,
    /// ApproximateNumberOfMessagesDelayed.
    pub delayed: u64,
    /// Age in seconds of the oldest peeked message, when peeked and not empty.
    pub oldest_age_secs: Option<u64>,
}

/// Statistics of one queue and its DLQ.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStats {
    /// Queue.
    pub queue: QueueName,
    /// Retry policy from the catalogue.
    pub retry: RetryPolicy,
    /// Source queue counts.
    pub source: QueueCounts,
    /// Dead-letter queue counts (`visible` is the DLQ depth).
    pub dlq: QueueCounts,
    /// Latest failed or dead jobs, newest first, with their errors.
    pub recent_failures: Vec<JobRecord>,
}

/// Result of [`redrive`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages sent back to the source queue and deleted from the DLQ.
    pub moved: usize,
    /// Messages that could not be sent back (they stay in the DLQ).
    pub failed: usize,
}

/// Statistics of every configured queue (GetQueueAttributes, optional peeks, tracking query).
pub async fn queue_stats(
    sqs: &aws_sdk_sqs::Client,
    directory: &QueueDirectory,
    tracking: Option<&JobTracking>,
    options: &StatsOptions,
) -> Result<Vec<QueueStats>> {
    let mut all = Vec::new();
    for (queue, urls) in directory.iter() {
        let mut source = counts(sqs, &urls.url).await?;
        if options.peek_source_queues {
            source.oldest_age_secs = oldest_age(sqs, &urls.url).await?;
        }
        let mut dlq = counts(sqs, &urls.dlq_url).await?;
        if options.peek_dlqs {
            dlq.oldest_age_secs = oldest_age(sqs, &urls.dlq_url).await?;
        }
        let recent_failures = match tracking {
            Some(t) if options.recent_failures > 0 => {
                t.recent_failures(queue, options.recent_failures).await?
            }
            _ => Vec::new(),
        };
        all.push(QueueStats {
            queue,
            retry: queue.spec().retry,
            source,
            dlq,
            recent_failures,
        });
    }
    Ok(all)
}

async fn counts(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueCounts> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "GetQueueAttributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    let num = |k: QueueAttributeName| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueCounts {
        visible: num(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: num(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: num(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        oldest_age_secs: None,
    })
}

/// Age of the oldest of up to 10 peeked messages (they stay visible).
async fn oldest_age(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Option<u64>> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "ReceiveMessage(peek)", e))?;
    let oldest_ms = out
        .messages
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            m.attributes
                .as_ref()?
                .get(&MessageSystemAttributeName::SentTimestamp)?
                .parse::<i64>()
                .ok()
        })
        .min();
    let now_ms = Utc::now().timestamp_millis();
    Ok(oldest_ms.map(|t| u64::try_from((now_ms - t).max(0) / 1000).unwrap_or(0)))
}

/// Moves up to `max_messages` messages from the queue's DLQ back to the queue: receive from the
/// DLQ, SendMessageBatch to the source (body and original attributes; the runtime's `jobs-*`
/// attributes are dropped), then delete from the DLQ only what was sent. Redriven jobs are set
/// back to `queued` in tracking when `tracking` is given. A crash between send and delete can
/// duplicate a message; idempotency makes that harmless.
///
/// This is not StartMessageMoveTask: moto 5.2 does not implement it, and the manual move works
/// the same on AWS and locally.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    urls: &QueueUrls,
    tracking: Option<&JobTracking>,
    max_messages: usize,
) -> Result<RedriveReport> {
    let mut report = RedriveReport::default();
    let mut empty_polls = 0;
    while report.moved + report.failed < max_messages && empty_polls < 2 {
        let want = (max_messages - report.moved - report.failed).min(10);
        let out = sqs
            .receive_message()
            .queue_url(&urls.dlq_url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "ReceiveMessage(dlq)", e))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let attrs: HashMap<_, _> = m
                    .message_attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with(RUNTIME_ATTRIBUTE_PREFIX))
                    .collect();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes((!attrs.is_empty()).then_some(attrs))
                    .build()
                    .ok()
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(&urls.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "SendMessageBatch(redrive)", e))?;
        report.failed += sent.failed.len();
        let sent_idx: Vec<usize> = sent
            .successful
            .iter()
            .filter_map(|s| s.id.parse::<usize>().ok())
            .filter(|i| *i < messages.len())
            .collect();
        if sent_idx.is_empty() {
            // Nothing could be sent; stop instead of spinning on the same messages.
            break;
        }
        let deletes: Vec<DeleteMessageBatchRequestEntry> = sent_idx
            .iter()
            .filter_map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(messages[i].receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        let deleted = sqs
            .delete_message_batch()
            .queue_url(&urls.dlq_url)
            .set_entries(Some(deletes))
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "DeleteMessageBatch(dlq)", e))?;
        for f in &deleted.failed {
            tracing::warn!(
                id = f.id,
                code = f.code,
                "DLQ delete failed after redrive; the message may be redriven twice"
            );
        }
        report.moved += sent_idx.len();
        if let Some(t) = tracking {
            for &i in &sent_idx {
                let Some(job) = messages[i]
                    .body
                    .as_deref()
                    .and_then(|b| Job::from_json(b).ok())
                else {
                    continue;
                };
                if let Err(e) = t.mark_requeued(job.id).await {
                    tracing::warn!(job_id = %job.id, error = %e, "tracking update after redrive failed");
                }
            }
        }
    }
    Ok(report)
}

/// Polls a queue's counts until `pred` holds or `timeout` passes; returns the last counts.
/// Handy for tests and scripts that wait for a queue to drain.
pub async fn wait_for_counts(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    timeout: Duration,
    pred: impl Fn(&QueueCounts) -> bool,
) -> Result<QueueCounts> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let c = counts(sqs, url).await?;
        if pred(&c) || tokio::time::Instant::now() >= deadline {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts of one queue URL (GetQueueAttributes).
pub async fn queue_counts(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueCounts> {
    counts(sqs, url).await
}
