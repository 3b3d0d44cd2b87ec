//! The worker runtime: turns a per-job async handler into an SQS batch handler
//! (`SqsEvent -> SqsBatchResponse`, for an event source mapping with
//! `FunctionResponseTypes: [ReportBatchItemFailures]`).
//!
//! Per message: parse the envelope (malformed → DLQ), claim the job in the idempotency table
//! and mark it `running` in tracking (already succeeded → acknowledge; in progress elsewhere →
//! retry once the lock expires), load an S3 payload, run the handler under a time limit, then:
//! - success → idempotency `succeeded`, tracking `succeeded`, acknowledged;
//! - retryable error → tracking `failed`, visibility set to the queue's backoff, reported as a
//!   batch item failure; on the final attempt tracking `dead`, visibility 0, and the queue's
//!   redrive policy (`maxReceiveCount` = attempts) moves it to the DLQ on its next receive;
//! - permanent error → tracking `dead`, the message is sent to the DLQ by the runtime and
//!   acknowledged, so no attempt is wasted.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, field::Empty};
use uuid::Uuid;

use crate::catalogue::{MAX_VISIBILITY_SECS, QueueDirectory, QueueName, QueueUrls, RetryPolicy};
use crate::config::{Clients, JobsConfig};
use crate::envelope::{Job, now_micros};
use crate::error::{Error, JobError, Result};
use crate::idempotency::{Claim, Lease};
use crate::payload::{DEFAULT_MAX_PAYLOAD_BYTES, load_payload};
use crate::store::{Attempt, DynamoJobStore, JobStore};

/// What a handler returns: an optional small result reference (S3 key, URL, JSON) on success.
pub type JobResult = Result<Option<Value>, JobError>;

/// Message attribute names the runtime adds to messages it dead-letters itself.
pub const DLQ_ERROR_ATTRIBUTE: &str = "jobs-error";
/// Why the runtime dead-lettered a message: `permanent`, `malformed` or `exhausted`.
pub const DLQ_REASON_ATTRIBUTE: &str = "jobs-dead-reason";
/// Queue the message was dead-lettered from.
pub const DLQ_SOURCE_ATTRIBUTE: &str = "jobs-source-queue";
/// Prefix shared by the attributes above (stripped again on redrive).
pub const RUNTIME_ATTRIBUTE_PREFIX: &str = "jobs-";
/// Time kept back from the Lambda deadline to report results.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// A per-job handler. Implemented for any `Fn(Job, JobContext) -> impl Future<Output = JobResult>`.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one job.
    fn handle(&self, job: Job, ctx: JobContext) -> impl Future<Output = JobResult> + Send;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(Job, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send,
{
    fn handle(&self, job: Job, ctx: JobContext) -> impl Future<Output = JobResult> + Send {
        self(job, ctx)
    }
}

/// The handler of a queue whose work does not exist yet: every job fails permanently with
/// `not implemented: <what>`, so it waits in the DLQ (visible to operators, redrivable later)
/// instead of being reported as a success.
pub fn not_implemented(what: &'static str) -> impl JobHandler {
    move |job: Job, _ctx: JobContext| async move {
        Err(JobError::permanent(format!(
            "not implemented: {what} (job {} kept in the DLQ for redrive)",
            job.id
        )))
    }
}

type ErasedHandler = Arc<dyn Fn(Job, JobContext) -> BoxFuture<'static, JobResult> + Send + Sync>;

struct ContextInner {
    job_id: Uuid,
    queue: QueueName,
    attempt: u32,
    max_attempts: u32,
    message_id: String,
    deadline: Instant,
    store: Arc<dyn JobStore>,
    last_message: Mutex<Option<String>>,
}

/// What a handler knows about its run, and its way to report progress.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job_id", &self.inner.job_id)
            .field("queue", &self.inner.queue)
            .field("attempt", &self.inner.attempt)
            .finish()
    }
}

impl JobContext {
    /// Reports progress (0–100, clamped) with a message, visible through the tracking API.
    /// Returns false when the job is no longer `running`. Handlers usually ignore errors here:
    /// progress is informative and must not fail the job.
    pub async fn progress(&self, pct: u8, message: impl AsRef<str>) -> Result<bool> {
        let message = message.as_ref();
        *self
            .inner
            .last_message
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(message.to_owned());
        self.inner
            .store
            .progress(self.inner.job_id, pct.min(100), message)
            .await
    }

    fn last_message(&self) -> Option<String> {
        self.inner
            .last_message
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Attempt number (the message's ApproximateReceiveCount).
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Attempts the queue allows.
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// True when a retryable failure now would dead-letter the job.
    pub fn is_final_attempt(&self) -> bool {
        self.inner.attempt >= self.inner.max_attempts
    }

    /// Queue being served.
    pub fn queue(&self) -> QueueName {
        self.inner.queue
    }

    /// SQS message id.
    pub fn message_id(&self) -> &str {
        &self.inner.message_id
    }

    /// Time left before the runtime abandons this attempt as timed out.
    pub fn remaining(&self) -> Duration {
        self.inner
            .deadline
            .saturating_duration_since(Instant::now())
    }
}

/// Settings of a [`Worker`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queue served.
    pub queue: QueueName,
    /// Its URLs (for ChangeMessageVisibility and dead-lettering).
    pub urls: QueueUrls,
    /// Attempts and backoff (the catalogue's, unless a test shortens them).
    pub retry: RetryPolicy,
    /// Messages of one batch processed at once.
    pub concurrency: usize,
    /// Longest one handler run may take (also bounded by the Lambda deadline).
    pub handler_timeout: Duration,
    /// Lifetime of the idempotency lock; must not exceed the queue's visibility timeout so a
    /// crashed attempt's lock has expired when SQS redelivers the message.
    pub lock_duration: Duration,
    /// Largest S3 payload loaded.
    pub max_payload_bytes: u64,
}

impl WorkerConfig {
    /// Defaults from the catalogue: the queue's retry policy, its function timeout as handler
    /// timeout, lock = function timeout + 30 s, concurrency 10.
    pub fn new(queue: QueueName, urls: QueueUrls) -> Self {
        let spec = queue.spec();
        let timeout = Duration::from_secs(u64::from(spec.function_timeout_secs));
        WorkerConfig {
            queue,
            urls,
            retry: spec.retry,
            concurrency: 10,
            handler_timeout: timeout,
            lock_duration: timeout + Duration::from_secs(30),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Replaces the retry policy (tests use short backoffs; production keeps the catalogue's).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the per-batch concurrency (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the handler time limit.
    pub fn with_handler_timeout(mut self, d: Duration) -> Self {
        self.handler_timeout = d;
        self
    }

    /// Sets the idempotency lock lifetime.
    pub fn with_lock_duration(mut self, d: Duration) -> Self {
        self.lock_duration = d;
        self
    }
}

/// How one message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handler succeeded.
    Succeeded,
    /// The job had already succeeded: acknowledged without running.
    Duplicate,
    /// Another attempt holds the job's lock: retried after `delay_secs`.
    Busy {
        /// Visibility set.
        delay_secs: u32,
    },
    /// Retryable failure: retried after `delay_secs`.
    Retry {
        /// Visibility set.
        delay_secs: u32,
    },
    /// Retryable failure on the final attempt: left for the redrive policy to dead-letter.
    Exhausted,
    /// Sent to the DLQ by the runtime (permanent failure, malformed body, over budget).
    DeadLettered,
}

impl Outcome {
    /// True when the message is deleted from the source queue (not a batch item failure).
    pub fn acknowledged(&self) -> bool {
        matches!(
            self,
            Outcome::Succeeded | Outcome::Duplicate | Outcome::DeadLettered
        )
    }
}

/// The worker runtime for one queue.
pub struct Worker {
    config: WorkerConfig,
    handler: ErasedHandler,
    store: Arc<dyn JobStore>,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    monitor: Option<monitoring::Monitor>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum DeadReason {
    Malformed,
    Permanent,
    Exhausted,
}

impl DeadReason {
    fn as_str(&self) -> &'static str {
        match self {
            DeadReason::Malformed => "malformed",
            DeadReason::Permanent => "permanent",
            DeadReason::Exhausted => "exhausted",
        }
    }
}

impl Worker {
    /// A worker running `handler` for the queue in `config`.
    pub fn new<H: JobHandler>(
        config: WorkerConfig,
        clients: &Clients,
        store: Arc<dyn JobStore>,
        handler: H,
    ) -> Self {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |job, ctx| {
            let h = Arc::clone(&handler);
            Box::pin(async move { h.handle(job, ctx).await })
        });
        Worker {
            config,
            handler: erased,
            store,
            sqs: clients.sqs.clone(),
            s3: clients.s3.clone(),
            monitor: None,
        }
    }

    /// Records each job's duration and outcome (and the database time it spent) as metrics of
    /// this queue: EMF lines, and the real-time view in Redis.
    pub fn with_monitor(mut self, monitor: monitoring::Monitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// Builds a production worker from env vars (see the README): queue URLs, tables,
    /// concurrency. For the Lambda `main`.
    pub async fn from_env<H: JobHandler>(
        queue: QueueName,
        sdk: &SdkConfig,
        handler: H,
    ) -> Result<Self> {
        let cfg = JobsConfig::from_env()?;
        let clients = Clients::new(sdk);
        let dir = QueueDirectory::resolve(&clients.sqs, &cfg, &[queue]).await?;
        let store = Arc::new(DynamoJobStore::from_config(&clients, &cfg));
        let config = WorkerConfig::new(queue, dir.get(queue)?.clone())
            .with_concurrency(cfg.worker_concurrency);
        Ok(Worker::new(config, &clients, store, handler))
    }

    /// The worker's settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Handles a batch with no outer deadline (local event source, tests).
    pub async fn handle_batch(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(event, None).await
    }

    /// Handles a batch, messages concurrently (up to `concurrency`), each in its own task so a
    /// panicking or slow handler affects only its message. Returns the failed message ids.
    pub async fn handle_batch_until(
        self: &Arc<Self>,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        let deadline = deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d));
        let results: Vec<(Option<String>, Option<Outcome>)> =
            futures::stream::iter(event.records.into_iter().map(|msg| {
                let worker = Arc::clone(self);
                let id = msg.message_id.clone();
                async move {
                    let task = tokio::spawn(async move { worker.process(msg, deadline).await });
                    (id, task.await.ok())
                }
            }))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        let (mut ok, mut failed) = (0usize, 0usize);
        for (id, outcome) in results {
            if outcome.as_ref().is_some_and(Outcome::acknowledged) {
                ok += 1;
                continue;
            }
            failed += 1;
            match id {
                Some(id) => response.add_failure(id),
                None => tracing::error!("message without messageId failed; cannot report it"),
            }
        }
        tracing::debug!(queue = %self.config.queue, ok, failed, "batch handled");
        response
    }

    /// Processes one message and returns its outcome (visibility changes and dead-lettering
    /// already done).
    pub async fn process(&self, msg: SqsMessage, deadline: Option<Instant>) -> Outcome {
        let receive_count = msg
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let span = tracing::info_span!(
            "job",
            queue = %self.config.queue,
            message_id = msg.message_id.as_deref().unwrap_or(""),
            attempt = receive_count,
            job_id = Empty,
            job_type = Empty,
            correlation_id = Empty,
        );
        let run = self
            .process_inner(msg, receive_count, deadline, span.clone())
            .instrument(span);
        let Some(monitor) = &self.monitor else {
            return run.await;
        };
        let scope = monitor.scope();
        let started = Instant::now();
        let outcome = scope.run(run).await;
        let metric = match outcome {
            Outcome::Succeeded => Some(monitoring::JobOutcome::Succeeded),
            Outcome::Retry { .. } => Some(monitoring::JobOutcome::Failed),
            Outcome::Exhausted | Outcome::DeadLettered => Some(monitoring::JobOutcome::Dead),
            // Not an attempt of the job's work.
            Outcome::Duplicate | Outcome::Busy { .. } => None,
        };
        if let Some(m) = metric {
            scope.job(self.config.queue.as_str(), m, started.elapsed());
        }
        scope.flush().await;
        outcome
    }

    async fn process_inner(
        &self,
        msg: SqsMessage,
        receive_count: u32,
        deadline: Option<Instant>,
        span: tracing::Span,
    ) -> Outcome {
        let body = msg.body.as_deref().unwrap_or("");
        let mut job = match Job::from_json(body) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "malformed message");
                return self
                    .dead_letter(&msg, DeadReason::Malformed, &e.to_string())
                    .await;
            }
        };
        span.record("job_id", tracing::field::display(job.id));
        span.record("job_type", tracing::field::display(job.job_type));
        span.record(
            "correlation_id",
            tracing::field::display(&job.correlation_id),
        );
        job.attempt = receive_count;
        let retry = self.config.retry;

        if job.queue() != self.config.queue {
            let err = format!("{} jobs belong to queue {}", job.job_type, job.queue());
            self.track_failure(None, &job, &err, true).await;
            return self.dead_letter(&msg, DeadReason::Permanent, &err).await;
        }
        let attempt = Attempt {
            number: receive_count,
            started_at: now_micros(),
        };
        let lease = match self
            .store
            .begin(&job, &attempt, self.config.lock_duration)
            .await
        {
            Ok(Claim::Acquired(lease)) => lease,
            Ok(Claim::AlreadySucceeded) => {
                tracing::info!("duplicate delivery of a succeeded job; acknowledged");
                return Outcome::Duplicate;
            }
            Ok(Claim::InProgress { lock_expires_at_ms }) => {
                // Come back when the other attempt has finished or its lock has expired.
                let left_ms = lock_expires_at_ms - chrono::Utc::now().timestamp_millis();
                let delay = u32::try_from(left_ms.max(0) / 1000 + 1)
                    .unwrap_or(MAX_VISIBILITY_SECS)
                    .min(MAX_VISIBILITY_SECS);
                tracing::info!(delay, "job in progress elsewhere; retry later");
                self.change_visibility(&msg, delay).await;
                return Outcome::Busy { delay_secs: delay };
            }
            Err(e) => {
                tracing::warn!(error = %e, "idempotency claim failed");
                return self.fail_retryable(&msg, None, &job, &e.to_string()).await;
            }
        };

        if receive_count > retry.max_attempts {
            // More receives than allowed (a redrive policy looser than the catalogue, or a
            // crashed last attempt): do not run it again. Checked after the claim so a late
            // duplicate of a job that succeeded is acknowledged, not declared dead.
            let err = format!(
                "attempt {receive_count} exceeds the {} allowed",
                retry.max_attempts
            );
            self.track_failure(Some(&lease), &job, &err, true).await;
            return self.dead_letter(&msg, DeadReason::Exhausted, &err).await;
        }

        // After the claim, so a duplicate of a finished job costs no S3 read.
        if let Some(reference) = job.payload_ref.clone() {
            match load_payload(&self.s3, &reference, self.config.max_payload_bytes).await {
                Ok(p) => job.payload = p,
                Err(e) => return self.fail(&msg, &lease, &job, e).await,
            }
        }

        let now = Instant::now();
        let mut limit = self.config.handler_timeout;
        if let Some(d) = deadline {
            limit = limit.min(d.saturating_duration_since(now));
        }
        let ctx = JobContext {
            inner: Arc::new(ContextInner {
                job_id: job.id,
                queue: self.config.queue,
                attempt: receive_count,
                max_attempts: retry.max_attempts,
                message_id: msg.message_id.clone().unwrap_or_default(),
                deadline: now + limit,
                store: Arc::clone(&self.store),
                last_message: Mutex::new(None),
            }),
        };
        // Keep a payload-free copy for bookkeeping; the handler gets the job by value.
        let payload = std::mem::take(&mut job.payload);
        let header = job.clone();
        job.payload = payload;

        let run = AssertUnwindSafe((self.handler)(job, ctx.clone())).catch_unwind();
        let result = match tokio::time::timeout(limit, run).await {
            Err(_) => Err(JobError::retryable(format!(
                "timed out after {} ms",
                limit.as_millis()
            ))),
            Ok(Err(panic)) => Err(JobError::retryable(format!(
                "handler panicked: {}",
                panic_text(panic.as_ref())
            ))),
            Ok(Ok(r)) => r,
        };
        match result {
            Ok(value) => {
                let message = ctx.last_message();
                let recorded = self
                    .store
                    .succeeded(
                        &lease,
                        &header,
                        &attempt,
                        message.as_deref(),
                        value.as_ref(),
                    )
                    .await;
                if let Err(e) = recorded {
                    // The work is done; retrying would only repeat it.
                    tracing::error!(error = %e, "recording success failed; acknowledging anyway");
                }
                tracing::info!("job succeeded");
                Outcome::Succeeded
            }
            Err(e) => self.fail(&msg, &lease, &header, e).await,
        }
    }

    async fn fail(&self, msg: &SqsMessage, lease: &Lease, job: &Job, err: JobError) -> Outcome {
        match err {
            JobError::Retryable(e) => self.fail_retryable(msg, Some(lease), job, &e).await,
            JobError::Permanent(e) => {
                tracing::warn!(error = %e, "permanent failure; dead-lettering");
                self.track_failure(Some(lease), job, &e, true).await;
                self.dead_letter(msg, DeadReason::Permanent, &e).await
            }
        }
    }

    async fn fail_retryable(
        &self,
        msg: &SqsMessage,
        lease: Option<&Lease>,
        job: &Job,
        err: &str,
    ) -> Outcome {
        let retry = self.config.retry;
        let dead = retry.is_final_attempt(job.attempt);
        tracing::warn!(error = %err, dead, "attempt failed");
        self.track_failure(lease, job, err, dead).await;
        let delay = retry.visibility_after_failure(job.attempt);
        self.change_visibility(msg, delay).await;
        if dead {
            Outcome::Exhausted
        } else {
            Outcome::Retry { delay_secs: delay }
        }
    }

    async fn track_failure(&self, lease: Option<&Lease>, job: &Job, err: &str, dead: bool) {
        if let Err(e) = self.store.failed(lease, job, job.attempt, err, dead).await {
            tracing::warn!(error = %e, "tracking update (failed) failed");
        }
    }

    async fn change_visibility(&self, msg: &SqsMessage, secs: u32) {
        let Some(handle) = msg.receipt_handle.as_deref() else {
            return;
        };
        let res = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.urls.url)
            .receipt_handle(handle)
            .visibility_timeout(i32::try_from(secs.min(MAX_VISIBILITY_SECS)).unwrap_or(0))
            .send()
            .await;
        if let Err(e) = res {
            // The message still comes back after the queue's visibility timeout.
            tracing::warn!(error = %Error::aws("sqs", "ChangeMessageVisibility", e), "backoff not applied");
        }
    }

    /// Sends the message to the DLQ with the reason as attributes and acknowledges it; if that
    /// fails, falls back to visibility 0 so the redrive policy dead-letters it eventually.
    async fn dead_letter(&self, msg: &SqsMessage, reason: DeadReason, err: &str) -> Outcome {
        let body = match msg.body.as_deref() {
            Some(b) if !b.is_empty() => b,
            _ => "(empty body)",
        };
        let mut req = self
            .sqs
            .send_message()
            .queue_url(&self.config.urls.dlq_url)
            .message_body(body);
        // SQS allows 10 attributes per message; keep room for the runtime's three.
        let mut kept = 0;
        for (name, attr) in &msg.message_attributes {
            if kept == 7 || name.starts_with(RUNTIME_ATTRIBUTE_PREFIX) {
                continue;
            }
            if let Some(v) = lambda_attr_to_sqs(attr) {
                req = req.message_attributes(name, v);
                kept += 1;
            }
        }
        let error_text: String = err.chars().take(1000).collect();
        for (name, value) in [
            (DLQ_ERROR_ATTRIBUTE, error_text.as_str()),
            (DLQ_REASON_ATTRIBUTE, reason.as_str()),
            (DLQ_SOURCE_ATTRIBUTE, self.config.queue.as_str()),
        ] {
            if let Some(v) = string_attr(if value.is_empty() { "-" } else { value }) {
                req = req.message_attributes(name, v);
            }
        }
        match req.send().await {
            Ok(_) => Outcome::DeadLettered,
            Err(e) => {
                tracing::error!(error = %Error::aws("sqs", "SendMessage(dlq)", e), "dead-lettering failed");
                self.change_visibility(msg, 0).await;
                Outcome::Exhausted
            }
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

pub(crate) fn string_attr(v: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .ok()
}

/// Converts a Lambda event message attribute back to an SQS one (string or binary values).
pub(crate) fn lambda_attr_to_sqs(
    a: &aws_lambda_events::event::sqs::SqsMessageAttribute,
) -> Option<MessageAttributeValue> {
    let data_type = a.data_type.clone()?;
    let mut b = MessageAttributeValue::builder().data_type(data_type);
    if let Some(s) = &a.string_value {
        b = b.string_value(s);
    } else if let Some(bin) = &a.binary_value {
        b = b.binary_value(aws_sdk_sqs::primitives::Blob::new(bin.to_vec()));
    } else {
        return None;
    }
    b.build().ok()
}

/// Runs `worker` as a Lambda function (SQS event source with ReportBatchItemFailures).
pub async fn run_lambda(worker: Arc<Worker>) -> std::result::Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let worker = Arc::clone(&worker);
            async move {
                let left = event
                    .context
                    .deadline()
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                let deadline = Instant::now() + left;
                Ok::<_, lambda_runtime::Error>(
                    worker
                        .handle_batch_until(event.payload, Some(deadline))
                        .await,
                )
            }
        },
    ))
    .await
}
