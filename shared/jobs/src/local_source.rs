//! Local emulation of Lambda's SQS event source mapping, plus creation of the five queues and
//! their DLQs (for local set-ups and tests).
//!
//! Each mapping runs `pollers` loops that long-poll ReceiveMessage, build an [`SqsEvent`] the
//! way Lambda does, invoke the batch handler, and delete the messages not reported in
//! `batchItemFailures` (DeleteMessageBatch). Reported failures are left alone: their backoff was
//! applied by the worker runtime (ChangeMessageVisibility), and the queue's own redrive policy
//! moves them to the DLQ after `maxReceiveCount` receives — exactly as on AWS. As on Lambda, a
//! response naming an unknown or empty message id fails the whole batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::catalogue::{DLQ_RETENTION_SECS, QueueDirectory, QueueName, QueueUrls};
use crate::error::{Error, Result};
use crate::runtime::Worker;

/// A batch handler as the event source invokes it.
pub type BatchHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// One queue → handler binding, like an AWS::Lambda::EventSourceMapping.
#[derive(Clone)]
pub struct EventSourceMapping {
    /// Queue polled.
    pub queue_url: String,
    /// Messages per batch (1..=10; one ReceiveMessage call per batch).
    pub batch_size: u32,
    /// Long-poll wait per ReceiveMessage (0..=20 s).
    pub wait_time: Duration,
    /// Concurrent poll loops (Lambda scales these; here it is fixed).
    pub pollers: usize,
    /// Handler invoked with each batch.
    pub handler: BatchHandler,
}

impl std::fmt::Debug for EventSourceMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSourceMapping")
            .field("queue_url", &self.queue_url)
            .field("batch_size", &self.batch_size)
            .field("wait_time", &self.wait_time)
            .field("pollers", &self.pollers)
            .finish_non_exhaustive()
    }
}

impl EventSourceMapping {
    /// A mapping with Lambda's defaults: batch size 10, 20 s long poll, one poller.
    pub fn new(queue_url: impl Into<String>, handler: BatchHandler) -> Self {
        EventSourceMapping {
            queue_url: queue_url.into(),
            batch_size: 10,
            wait_time: Duration::from_secs(20),
            pollers: 1,
            handler,
        }
    }

    /// A mapping invoking `worker` on its own queue, with the catalogue's batch size.
    pub fn for_worker(worker: Arc<Worker>) -> Self {
        let url = worker.config().urls.url.clone();
        let batch = worker.config().queue.spec().batch_size;
        let handler: BatchHandler = Arc::new(move |event| {
            let w = Arc::clone(&worker);
            Box::pin(async move { w.handle_batch(event).await })
        });
        let mut m = EventSourceMapping::new(url, handler);
        m.batch_size = batch;
        m
    }

    /// Sets the batch size (clamped to 1..=10).
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.clamp(1, 10);
        self
    }

    /// Sets the long-poll wait (clamped to 20 s).
    pub fn with_wait_time(mut self, d: Duration) -> Self {
        self.wait_time = d.min(Duration::from_secs(20));
        self
    }

    /// Sets the number of poll loops (at least 1).
    pub fn with_pollers(mut self, n: usize) -> Self {
        self.pollers = n.max(1);
        self
    }
}

/// Counters of a [`LocalEventSource`] run.
#[derive(Debug, Default)]
pub struct PollStats {
    /// Batches handed to handlers.
    pub batches: AtomicU64,
    /// Messages received.
    pub received: AtomicU64,
    /// Messages deleted after success.
    pub deleted: AtomicU64,
    /// Messages reported as failures (left for redelivery).
    pub failed: AtomicU64,
}

impl PollStats {
    /// (batches, received, deleted, failed) as plain numbers.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.deleted.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Runs event source mappings against real SQS (or moto) until cancelled.
pub struct LocalEventSource {
    sqs: aws_sdk_sqs::Client,
    mappings: Vec<EventSourceMapping>,
    stats: Arc<PollStats>,
}

impl LocalEventSource {
    /// An event source with no mappings.
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        LocalEventSource {
            sqs,
            mappings: Vec::new(),
            stats: Arc::default(),
        }
    }

    /// Adds a mapping.
    pub fn with_mapping(mut self, mapping: EventSourceMapping) -> Self {
        self.mappings.push(mapping);
        self
    }

    /// Live counters (shared with the running pollers).
    pub fn stats(&self) -> Arc<PollStats> {
        Arc::clone(&self.stats)
    }

    /// Polls until `shutdown` is cancelled, then returns once every in-flight batch has been
    /// handled and deleted. A ReceiveMessage in flight at shutdown is abandoned; messages it had
    /// already taken reappear after the queue's visibility timeout (at-least-once, as on AWS).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for m in self.mappings {
            let arn = queue_arn(&self.sqs, &m.queue_url).await?;
            let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
            let m = Arc::new(m);
            for _ in 0..m.pollers {
                let poller = Poller {
                    sqs: self.sqs.clone(),
                    mapping: Arc::clone(&m),
                    arn: arn.clone(),
                    region: region.clone(),
                    stats: Arc::clone(&self.stats),
                };
                let token = shutdown.clone();
                tasks.spawn(async move { poller.run(token).await });
            }
        }
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                tracing::error!(error = %e, "poller task ended abnormally");
            }
        }
        Ok(())
    }
}

struct Poller {
    sqs: aws_sdk_sqs::Client,
    mapping: Arc<EventSourceMapping>,
    arn: String,
    region: String,
    stats: Arc<PollStats>,
}

impl Poller {
    async fn run(self, shutdown: CancellationToken) {
        let m = &self.mapping;
        let wait = i32::try_from(m.wait_time.as_secs()).unwrap_or(20);
        let mut failures: u32 = 0;
        loop {
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&m.queue_url)
                .max_number_of_messages(i32::try_from(m.batch_size.clamp(1, 10)).unwrap_or(10))
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            let out = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = receive => r,
            };
            let messages = match out {
                Ok(o) => {
                    failures = 0;
                    o.messages.unwrap_or_default()
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis(200u64 << failures.min(5));
                    tracing::warn!(error = %Error::aws("sqs", "ReceiveMessage", e), ?pause, "receive failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            };
            if messages.is_empty() {
                continue;
            }
            self.dispatch(messages).await;
        }
    }

    async fn dispatch(&self, messages: Vec<Message>) {
        let event = build_event(&messages, &self.arn, &self.region);
        let n = messages.len() as u64;
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.received.fetch_add(n, Ordering::Relaxed);
        let response = (self.mapping.handler)(event).await;
        let failed = failed_ids(&response, &messages);
        let to_delete: Vec<&Message> = messages
            .iter()
            .filter(|m| {
                m.message_id
                    .as_deref()
                    .is_some_and(|id| !failed.contains(id))
            })
            .collect();
        self.stats
            .failed
            .fetch_add(n - to_delete.len() as u64, Ordering::Relaxed);
        if to_delete.is_empty() {
            return;
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = to_delete
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        match self
            .sqs
            .delete_message_batch()
            .queue_url(&self.mapping.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                self.stats
                    .deleted
                    .fetch_add(out.successful.len() as u64, Ordering::Relaxed);
                for f in out.failed {
                    tracing::warn!(
                        id = f.id,
                        code = f.code,
                        "delete failed; message will be redelivered"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %Error::aws("sqs", "DeleteMessageBatch", e), "delete failed; batch will be redelivered")
            }
        }
    }
}

/// Message ids to keep in the queue. Like Lambda, an empty or unknown identifier in the
/// response fails the whole batch.
fn failed_ids(response: &SqsBatchResponse, messages: &[Message]) -> HashSet<String> {
    let ids: HashSet<&str> = messages
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect();
    let mut failed = HashSet::new();
    for f in &response.batch_item_failures {
        if f.item_identifier.is_empty() || !ids.contains(f.item_identifier.as_str()) {
            tracing::warn!(id = %f.item_identifier, "invalid batchItemFailures entry; failing the whole batch");
            return ids.into_iter().map(str::to_owned).collect();
        }
        failed.insert(f.item_identifier.clone());
    }
    failed
}

/// Builds the Lambda SQS event for received messages: the same fields, names and formats as
/// the event Lambda delivers (`eventSource` `aws:sqs`, `eventSourceARN`, `awsRegion`,
/// `receiptHandle`, `md5OfBody`, system attributes by name, message attributes with base64
/// binary values).
pub fn build_event(messages: &[Message], queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut rec = SqsMessage::default();
        rec.message_id = m.message_id.clone();
        rec.receipt_handle = m.receipt_handle.clone();
        rec.body = m.body.clone();
        rec.md5_of_body = m.md5_of_body.clone();
        rec.md5_of_message_attributes = m.md5_of_message_attributes.clone();
        rec.attributes = m
            .attributes
            .as_ref()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        rec.message_attributes = m
            .message_attributes
            .as_ref()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, v)| {
                        let mut a = SqsMessageAttribute::default();
                        a.string_value = v.string_value.clone();
                        a.binary_value = v.binary_value.as_ref().map(|b| base64_data(b.as_ref()));
                        a.string_list_values = v.string_list_values.clone().unwrap_or_default();
                        a.binary_list_values = v
                            .binary_list_values
                            .as_ref()
                            .map(|l| l.iter().map(|b| base64_data(b.as_ref())).collect())
                            .unwrap_or_default();
                        a.data_type = Some(v.data_type.clone());
                        (k.clone(), a)
                    })
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        rec.event_source_arn = Some(queue_arn.to_owned());
        rec.event_source = Some("aws:sqs".to_owned());
        rec.aws_region = Some(region.to_owned());
        event.records.push(rec);
    }
    event
}

fn base64_data(bytes: &[u8]) -> Base64Data {
    let mut d = Base64Data::default();
    d.extend_from_slice(bytes);
    d
}

/// The ARN of a queue (GetQueueAttributes QueueArn).
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "GetQueueAttributes", e))?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::Config(format!("no QueueArn for {queue_url}")))
}

/// Options of [`create_queues`].
#[derive(Debug, Clone, Default)]
pub struct QueueSetup {
    /// Visibility timeout for every source queue instead of the catalogue's (tests use a short
    /// one so a crashed attempt comes back quickly).
    pub visibility_timeout_secs: Option<u32>,
}

/// Creates the five queues `<prefix><slug>` and their DLQs `<prefix><slug>-dlq`, each source
/// queue with the catalogue's visibility timeout and retention and a redrive policy whose
/// `maxReceiveCount` is the queue's attempts. Existing queues with the same attributes are
/// accepted (CreateQueue is idempotent).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    setup: &QueueSetup,
) -> Result<QueueDirectory> {
    let mut dir = QueueDirectory::new();
    for q in QueueName::ALL {
        dir.insert(q, create_queue_pair(sqs, prefix, q, setup).await?);
    }
    Ok(dir)
}

async fn create_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    queue: QueueName,
    setup: &QueueSetup,
) -> Result<QueueUrls> {
    let spec = queue.spec();
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}{}", queue.dlq_slug()))
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_string(),
        )
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::Config("CreateQueue returned no URL".into()))?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.retry.max_attempts,
    })
    .to_string();
    let visibility = setup
        .visibility_timeout_secs
        .unwrap_or(spec.visibility_timeout_secs);
    let url = sqs
        .create_queue()
        .queue_name(format!("{prefix}{}", queue.as_str()))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            spec.retention_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::Config("CreateQueue returned no URL".into()))?;
    Ok(QueueUrls { url, dlq_url })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::BatchItemFailure;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body("hello")
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1520621625029")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("x")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "bin",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"1100".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn event_has_lambdas_shape() {
        let ev = build_event(
            &[message("m1")],
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "eu-west-1",
        );
        let json = serde_json::to_value(&ev).unwrap();
        let r = &json["Records"][0];
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["receiptHandle"], "rh-m1");
        assert_eq!(r["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:eu-west-1:123456789012:q");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["attributes"]["SentTimestamp"], "1520621625029");
        assert_eq!(r["messageAttributes"]["kind"]["stringValue"], "x");
        assert_eq!(r["messageAttributes"]["kind"]["dataType"], "String");
        assert_eq!(r["messageAttributes"]["bin"]["binaryValue"], "MTEwMA==");
        // And it parses back as the event type Lambda hands to functions.
        let back: SqsEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn invalid_failure_ids_fail_the_whole_batch() {
        let msgs = [message("a"), message("b"), message("c")];
        let mut resp = SqsBatchResponse::default();
        resp.add_failure("b");
        assert_eq!(failed_ids(&resp, &msgs), HashSet::from(["b".to_owned()]));
        resp.add_failure("zzz");
        assert_eq!(failed_ids(&resp, &msgs).len(), 3);
        let mut empty = SqsBatchResponse::default();
        empty.batch_item_failures.push(BatchItemFailure::default());
        assert_eq!(failed_ids(&empty, &msgs).len(), 3);
        assert!(failed_ids(&SqsBatchResponse::default(), &msgs).is_empty());
    }
}
