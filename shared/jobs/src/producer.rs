//! The producer: records jobs as `queued`, then sends them with SendMessageBatch (≤ 10 entries
//! and ≤ the message-size limit per call), retrying only failed entries a bounded number of
//! times. Payloads that would make a message exceed the limit go to S3 first.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use crate::catalogue::{QueueDirectory, QueueName};
use crate::config::{Clients, DEFAULT_MAX_MESSAGE_BYTES, JobsConfig};
use crate::envelope::Job;
use crate::error::{Error, Result};
use crate::payload::store_payload;
use crate::runtime::string_attr;
use crate::tracking::JobTracking;

/// Message attribute carrying the job type (lets consumers and tooling filter without parsing).
pub const JOB_TYPE_ATTRIBUTE: &str = "job-type";
/// Message attribute carrying the correlation id.
pub const CORRELATION_ATTRIBUTE: &str = "correlation-id";
/// SQS's maximum entries per SendMessageBatch.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Chunks sent at once.
const SEND_CONCURRENCY: usize = 4;

/// A job that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentJob {
    /// Job id.
    pub job_id: Uuid,
    /// Queue it went to.
    pub queue: QueueName,
    /// SQS message id.
    pub message_id: String,
}

/// A job that could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedJob {
    /// Job id.
    pub job_id: Uuid,
    /// Intended queue.
    pub queue: QueueName,
    /// SQS error code (or a local reason such as `PayloadTooLarge`).
    pub code: String,
    /// Error message.
    pub message: String,
    /// SQS says the request itself was wrong (not retried).
    pub sender_fault: bool,
}

/// Outcome of [`Producer::send_all`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    /// Sent jobs.
    pub sent: Vec<SentJob>,
    /// Jobs not sent after the allowed retries.
    pub failed: Vec<FailedJob>,
}

/// Sends jobs to their queues.
#[derive(Debug, Clone)]
pub struct Producer {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    directory: QueueDirectory,
    tracking: JobTracking,
    payload_bucket: Option<String>,
    max_message_bytes: usize,
    max_retries: u32,
}

/// A job ready to send: its body and attributes, and their SQS-counted size.
struct Prepared {
    job: Job,
    queue_url: String,
    body: String,
    size: usize,
}

impl Producer {
    /// A producer using `directory` for queue URLs and `tracking` for the `queued` records.
    pub fn new(clients: &Clients, directory: QueueDirectory, tracking: JobTracking) -> Self {
        Producer {
            sqs: clients.sqs.clone(),
            s3: clients.s3.clone(),
            directory,
            tracking,
            payload_bucket: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_retries: 3,
        }
    }

    /// A producer configured from env vars (queue URLs, tracking table, payload bucket, limit).
    pub async fn from_config(clients: &Clients, config: &JobsConfig) -> Result<Self> {
        let directory = QueueDirectory::resolve_available(&clients.sqs, config).await?;
        let tracking = JobTracking::new(
            clients.dynamodb.clone(),
            config.tracking_table.clone(),
            config.tracking_ttl,
        );
        let mut p = Producer::new(clients, directory, tracking)
            .with_max_message_bytes(config.max_message_bytes);
        p.payload_bucket = config.payload_bucket.clone();
        Ok(p)
    }

    /// Bucket for oversize payloads.
    pub fn with_payload_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.payload_bucket = Some(bucket.into());
        self
    }

    /// Message-size limit (bytes, body plus attributes).
    pub fn with_max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit.max(1024);
        self
    }

    /// Retries of failed entries after the first try.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n.min(10);
        self
    }

    /// Sends one job; an error if it was not sent.
    pub async fn send(&self, job: Job) -> Result<SentJob> {
        let id = job.id;
        let mut report = self.send_all(vec![job]).await?;
        if let Some(sent) = report.sent.pop() {
            return Ok(sent);
        }
        let reason = report
            .failed
            .pop()
            .map(|f| format!("{}: {}", f.code, f.message))
            .unwrap_or_else(|| "no result".to_owned());
        Err(Error::Aws {
            service: "sqs",
            op: "SendMessageBatch",
            message: format!("job {id}: {reason}"),
        })
    }

    /// Sends jobs (any number, any queues). Records them as `queued` first (an error there
    /// aborts before anything is sent); jobs that still fail to send are marked `dead` in
    /// tracking with the SQS error and listed in the report.
    pub async fn send_all(&self, jobs: Vec<Job>) -> Result<SendReport> {
        let mut report = SendReport::default();
        let mut prepared = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.prepare(job).await {
                Ok(p) => prepared.push(p),
                Err((job, e)) => report.failed.push(FailedJob {
                    job_id: job.id,
                    queue: job.queue(),
                    code: match e {
                        Error::PayloadTooLarge { .. } => "PayloadTooLarge".into(),
                        Error::QueueNotConfigured(_) => "QueueNotConfigured".into(),
                        _ => "PrepareFailed".into(),
                    },
                    message: e.to_string(),
                    sender_fault: true,
                }),
            }
        }
        let jobs: Vec<Job> = prepared.iter().map(|p| p.job.clone()).collect();
        self.tracking.record_queued(&jobs).await?;

        let mut by_queue: BTreeMap<String, Vec<Prepared>> = BTreeMap::new();
        for p in prepared {
            by_queue.entry(p.queue_url.clone()).or_default().push(p);
        }
        let chunks: Vec<Vec<Prepared>> = by_queue
            .into_values()
            .flat_map(|v| chunk_by_limits(v, self.max_message_bytes))
            .collect();
        let results: Vec<(Vec<SentJob>, Vec<FailedJob>)> = futures::stream::iter(chunks)
            .map(|chunk| self.send_chunk(chunk))
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        for (sent, failed) in results {
            report.sent.extend(sent);
            report.failed.extend(failed);
        }
        for f in &report.failed {
            let Some(job) = jobs.iter().find(|j| j.id == f.job_id) else {
                continue;
            };
            let err = format!("not enqueued: {}: {}", f.code, f.message);
            if let Err(e) = self.tracking.mark_failed(job, 0, &err, true).await {
                tracing::warn!(job_id = %f.job_id, error = %e, "tracking update after send failure failed");
            }
        }
        Ok(report)
    }

    async fn prepare(&self, mut job: Job) -> std::result::Result<Prepared, (Job, Error)> {
        let queue_url = match self.directory.get(job.queue()) {
            Ok(u) => u.url.clone(),
            Err(e) => return Err((job, e)),
        };
        let attrs_size = attributes_size(&job);
        let body = match job.to_json() {
            Ok(b) => b,
            Err(e) => return Err((job, e)),
        };
        let mut size = body.len() + attrs_size;
        let body = if size <= self.max_message_bytes {
            body
        } else {
            let Some(bucket) = self.payload_bucket.clone() else {
                let e = Error::PayloadTooLarge {
                    job_id: job.id,
                    size,
                    limit: self.max_message_bytes,
                };
                return Err((job, e));
            };
            let reference = match store_payload(&self.s3, &bucket, &job).await {
                Ok(r) => r,
                Err(e) => return Err((job, e)),
            };
            job.payload = serde_json::Value::Null;
            job.payload_ref = Some(reference);
            let body = match job.to_json() {
                Ok(b) => b,
                Err(e) => return Err((job, e)),
            };
            size = body.len() + attrs_size;
            if size > self.max_message_bytes {
                // Only possible with an absurdly long correlation id or a tiny limit.
                let e = Error::PayloadTooLarge {
                    job_id: job.id,
                    size,
                    limit: self.max_message_bytes,
                };
                return Err((job, e));
            }
            body
        };
        Ok(Prepared {
            job,
            queue_url,
            body,
            size,
        })
    }

    /// Sends one chunk, retrying the failed entries (not sender faults) up to `max_retries`.
    async fn send_chunk(&self, chunk: Vec<Prepared>) -> (Vec<SentJob>, Vec<FailedJob>) {
        let mut sent = Vec::with_capacity(chunk.len());
        let mut failed: Vec<FailedJob> = Vec::new();
        let Some(queue_url) = chunk.first().map(|p| p.queue_url.clone()) else {
            return (sent, failed);
        };
        // Entry ids are indexes into `chunk`.
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut last_error: BTreeMap<usize, (String, String, bool)> = BTreeMap::new();
        for attempt in 0..=self.max_retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << (attempt - 1).min(6))).await;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .filter_map(|&i| entry(i, &chunk[i]))
                .collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    let msg = Error::aws("sqs", "SendMessageBatch", e).to_string();
                    for &i in &pending {
                        last_error.insert(i, ("RequestFailed".into(), msg.clone(), false));
                    }
                    continue;
                }
            };
            for ok in out.successful {
                if let Some(i) = ok.id.parse::<usize>().ok().filter(|i| *i < chunk.len()) {
                    sent.push(SentJob {
                        job_id: chunk[i].job.id,
                        queue: chunk[i].job.queue(),
                        message_id: ok.message_id,
                    });
                    last_error.remove(&i);
                }
            }
            let mut retry = Vec::new();
            for f in out.failed {
                let Some(i) = f.id.parse::<usize>().ok().filter(|i| *i < chunk.len()) else {
                    continue;
                };
                let msg = f.message.unwrap_or_default();
                if f.sender_fault {
                    failed.push(FailedJob {
                        job_id: chunk[i].job.id,
                        queue: chunk[i].job.queue(),
                        code: f.code,
                        message: msg,
                        sender_fault: true,
                    });
                    last_error.remove(&i);
                } else {
                    last_error.insert(i, (f.code, msg, false));
                    retry.push(i);
                }
            }
            pending = retry;
        }
        for (i, (code, message, sender_fault)) in last_error {
            failed.push(FailedJob {
                job_id: chunk[i].job.id,
                queue: chunk[i].job.queue(),
                code,
                message,
                sender_fault,
            });
        }
        (sent, failed)
    }
}

fn entry(i: usize, p: &Prepared) -> Option<SendMessageBatchRequestEntry> {
    let mut b = SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(&p.body);
    if let Some(v) = string_attr(p.job.job_type.as_str()) {
        b = b.message_attributes(JOB_TYPE_ATTRIBUTE, v);
    }
    if !p.job.correlation_id.is_empty()
        && let Some(v) = string_attr(&p.job.correlation_id)
    {
        b = b.message_attributes(CORRELATION_ATTRIBUTE, v);
    }
    b.build().ok()
}

/// Size SQS counts for the attributes the producer adds (name + type + value).
fn attributes_size(job: &Job) -> usize {
    let mut size = JOB_TYPE_ATTRIBUTE.len() + "String".len() + job.job_type.as_str().len();
    if !job.correlation_id.is_empty() {
        size += CORRELATION_ATTRIBUTE.len() + "String".len() + job.correlation_id.len();
    }
    size
}

/// Splits one queue's messages into SendMessageBatch calls of at most 10 entries whose total
/// size stays within `max_bytes` (SQS limits a whole batch request to the message limit).
fn chunk_by_limits(items: Vec<Prepared>, max_bytes: usize) -> Vec<Vec<Prepared>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Prepared> = Vec::new();
    let mut current_size = 0;
    for p in items {
        if !current.is_empty()
            && (current.len() == MAX_BATCH_ENTRIES || current_size + p.size > max_bytes)
        {
            chunks.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current_size += p.size;
        current.push(p);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::JobType;
    use serde_json::json;

    fn prepared(size: usize) -> Prepared {
        let job = Job::new(JobType::SendNotification, json!({}));
        Prepared {
            job,
            queue_url: "q".into(),
            body: String::new(),
            size,
        }
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let sizes = |c: &Vec<Vec<Prepared>>| c.iter().map(Vec::len).collect::<Vec<_>>();
        let c = chunk_by_limits((0..25).map(|_| prepared(100)).collect(), 262_144);
        assert_eq!(sizes(&c), vec![10, 10, 5]);
        let c = chunk_by_limits((0..5).map(|_| prepared(100_000)).collect(), 262_144);
        assert_eq!(sizes(&c), vec![2, 2, 1]);
        for chunk in &c {
            assert!(chunk.iter().map(|p| p.size).sum::<usize>() <= 262_144);
        }
        assert!(chunk_by_limits(Vec::new(), 10).is_empty());
    }

    #[test]
    fn entries_carry_type_and_correlation_attributes() {
        let mut p = prepared(10);
        p.job.correlation_id = "req-1".into();
        p.body = p.job.to_json().unwrap();
        let e = entry(3, &p).unwrap();
        assert_eq!(e.id(), "3");
        let attrs = e.message_attributes().unwrap();
        assert_eq!(
            attrs[JOB_TYPE_ATTRIBUTE].string_value(),
            Some("send-notification")
        );
        assert_eq!(attrs[CORRELATION_ATTRIBUTE].string_value(), Some("req-1"));
        assert_eq!(
            attributes_size(&p.job),
            "job-type".len() + 6 + "send-notification".len() + "correlation-id".len() + 6 + 5
        );
    }
}
