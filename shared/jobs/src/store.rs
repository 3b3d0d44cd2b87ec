//! What the worker runtime needs from storage: idempotency claims plus tracking updates.
//!
//! Two implementations: [`DynamoJobStore`] (production: the idempotency and tracking tables) and
//! [`MemoryJobStore`] (in-process, not durable: unit tests and the CPU-overhead benchmark).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

use crate::config::{Clients, JobsConfig};
use crate::envelope::Job;
use crate::error::Result;
use crate::idempotency::{Claim, IdempotencyStore, Lease};
use crate::tracking::{JobStatus, JobTracking};

/// One attempt at a job, as the runtime records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Attempt number (the message's ApproximateReceiveCount).
    pub number: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// Storage used by the worker runtime for one message's life cycle.
pub trait JobStore: Send + Sync + 'static {
    /// Claims the job for this attempt and, when the claim succeeds, records it `running`.
    fn begin<'a>(
        &'a self,
        job: &'a Job,
        attempt: &'a Attempt,
        lock_for: Duration,
    ) -> BoxFuture<'a, Result<Claim>>;
    /// Progress report of a running job; false when the job is not running.
    fn progress<'a>(
        &'a self,
        job_id: Uuid,
        pct: u8,
        message: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    /// The job succeeded: completes the claim, then records the result.
    fn succeeded<'a>(
        &'a self,
        lease: &'a Lease,
        job: &'a Job,
        attempt: &'a Attempt,
        progress_message: Option<&'a str>,
        result: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<()>>;
    /// The attempt failed: releases the claim (if held) and records `failed`, or `dead` when no
    /// attempt follows.
    fn failed<'a>(
        &'a self,
        lease: Option<&'a Lease>,
        job: &'a Job,
        attempt: u32,
        error: &'a str,
        dead: bool,
    ) -> BoxFuture<'a, Result<()>>;
}

/// Production store: idempotency and tracking tables in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    /// Idempotency table access.
    pub idempotency: IdempotencyStore,
    /// Tracking table access.
    pub tracking: JobTracking,
}

impl DynamoJobStore {
    /// Store over the tables named in `config`.
    pub fn from_config(clients: &Clients, config: &JobsConfig) -> Self {
        DynamoJobStore {
            idempotency: IdempotencyStore::new(
                clients.dynamodb.clone(),
                config.idempotency_table.clone(),
                config.idempotency_ttl,
            ),
            tracking: JobTracking::new(
                clients.dynamodb.clone(),
                config.tracking_table.clone(),
                config.tracking_ttl,
            ),
        }
    }
}

impl DynamoJobStore {
    // Two plain writes each for begin and success, not TransactWriteItems: transactions cost
    // twice the write units on AWS, and moto deep-copies whole tables per transaction, which
    // makes local runs quadratic. The idempotency write always comes first, so a failure
    // between the two can only leave tracking behind (logged), never run a job twice.
    async fn begin_attempt(
        &self,
        job: &Job,
        attempt: &Attempt,
        lock_for: Duration,
    ) -> Result<Claim> {
        let claim = self
            .idempotency
            .claim(&job.id.to_string(), lock_for)
            .await?;
        if matches!(claim, Claim::Acquired(_)) {
            let item = self
                .tracking
                .running_item(job, attempt.number, &attempt.started_at);
            if let Err(e) = self.tracking.put(item, "PutItem(running)").await {
                tracing::warn!(job_id = %job.id, error = %e, "tracking update (running) failed; running anyway");
            }
        }
        Ok(claim)
    }

    async fn complete_attempt(
        &self,
        lease: &Lease,
        job: &Job,
        attempt: &Attempt,
        progress_message: Option<&str>,
        result: Option<&Value>,
    ) -> Result<()> {
        self.idempotency.complete(lease).await?;
        let item = self.tracking.succeeded_item(
            job,
            attempt.number,
            Some(&attempt.started_at),
            progress_message,
            result,
        );
        self.tracking.put(item, "PutItem(succeeded)").await
    }
}

impl JobStore for DynamoJobStore {
    fn begin<'a>(
        &'a self,
        job: &'a Job,
        attempt: &'a Attempt,
        lock_for: Duration,
    ) -> BoxFuture<'a, Result<Claim>> {
        Box::pin(self.begin_attempt(job, attempt, lock_for))
    }

    fn progress<'a>(
        &'a self,
        job_id: Uuid,
        pct: u8,
        message: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.tracking.set_progress(job_id, pct, message))
    }

    fn succeeded<'a>(
        &'a self,
        lease: &'a Lease,
        job: &'a Job,
        attempt: &'a Attempt,
        progress_message: Option<&'a str>,
        result: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.complete_attempt(lease, job, attempt, progress_message, result))
    }

    fn failed<'a>(
        &'a self,
        lease: Option<&'a Lease>,
        job: &'a Job,
        attempt: u32,
        error: &'a str,
        dead: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let released = match lease {
                Some(l) => self.idempotency.release(l).await,
                None => Ok(()),
            };
            let tracked = self.tracking.mark_failed(job, attempt, error, dead).await;
            released.and(tracked)
        })
    }
}

/// Snapshot of a job in [`MemoryJobStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRecord {
    /// Status.
    pub status: JobStatus,
    /// Progress 0–100.
    pub progress: u8,
    /// Last progress message.
    pub progress_message: String,
    /// Latest attempt.
    pub attempts: u32,
    /// Last error.
    pub error: Option<String>,
}

impl MemoryRecord {
    fn queued() -> Self {
        MemoryRecord {
            status: JobStatus::Queued,
            progress: 0,
            progress_message: String::new(),
            attempts: 0,
            error: None,
        }
    }
}

#[derive(Debug)]
enum MemClaim {
    InProgress { token: String, until_ms: i64 },
    Succeeded,
}

#[derive(Debug, Default)]
struct MemState {
    claims: HashMap<Uuid, MemClaim>,
    records: HashMap<Uuid, MemoryRecord>,
}

/// In-memory store with the same claim semantics as [`DynamoJobStore`]; not durable and not
/// shared between processes, so only for tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryJobStore {
    state: Mutex<MemState>,
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock cannot leave the maps half-updated (single inserts).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tracking snapshot of a job.
    pub fn record(&self, job_id: Uuid) -> Option<MemoryRecord> {
        self.lock().records.get(&job_id).cloned()
    }

    /// Number of jobs per status.
    pub fn count_by_status(&self) -> HashMap<JobStatus, usize> {
        let mut counts = HashMap::new();
        for r in self.lock().records.values() {
            *counts.entry(r.status).or_insert(0) += 1;
        }
        counts
    }

    fn upsert(&self, job_id: Uuid, f: impl FnOnce(&mut MemoryRecord)) {
        let mut st = self.lock();
        let rec = st
            .records
            .entry(job_id)
            .or_insert_with(MemoryRecord::queued);
        f(rec);
    }
}

impl JobStore for MemoryJobStore {
    fn begin<'a>(
        &'a self,
        job: &'a Job,
        attempt: &'a Attempt,
        lock_for: Duration,
    ) -> BoxFuture<'a, Result<Claim>> {
        let now = Utc::now().timestamp_millis();
        let mut st = self.lock();
        let claim = match st.claims.get(&job.id) {
            Some(MemClaim::Succeeded) => Claim::AlreadySucceeded,
            Some(MemClaim::InProgress { until_ms, .. }) if *until_ms >= now => Claim::InProgress {
                lock_expires_at_ms: *until_ms,
            },
            _ => {
                let token = Uuid::new_v4().to_string();
                let until_ms = now + i64::try_from(lock_for.as_millis()).unwrap_or(i64::MAX / 4);
                st.claims.insert(
                    job.id,
                    MemClaim::InProgress {
                        token: token.clone(),
                        until_ms,
                    },
                );
                let rec = st
                    .records
                    .entry(job.id)
                    .or_insert_with(MemoryRecord::queued);
                rec.status = JobStatus::Running;
                rec.attempts = attempt.number;
                rec.progress = 0;
                rec.progress_message.clear();
                rec.error = None;
                Claim::Acquired(Lease {
                    key: job.id.to_string(),
                    token,
                })
            }
        };
        drop(st);
        Box::pin(async move { Ok(claim) })
    }

    fn progress<'a>(
        &'a self,
        job_id: Uuid,
        pct: u8,
        message: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut st = self.lock();
        let updated = match st.records.get_mut(&job_id) {
            Some(r) if r.status == JobStatus::Running => {
                r.progress = pct.min(100);
                r.progress_message = message.to_owned();
                true
            }
            _ => false,
        };
        Box::pin(async move { Ok(updated) })
    }

    fn succeeded<'a>(
        &'a self,
        _lease: &'a Lease,
        job: &'a Job,
        attempt: &'a Attempt,
        progress_message: Option<&'a str>,
        _result: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<()>> {
        self.lock().claims.insert(job.id, MemClaim::Succeeded);
        self.upsert(job.id, |r| {
            r.status = JobStatus::Succeeded;
            r.attempts = attempt.number;
            r.progress = 100;
            r.progress_message = progress_message.unwrap_or_default().to_owned();
            r.error = None;
        });
        Box::pin(async { Ok(()) })
    }

    fn failed<'a>(
        &'a self,
        lease: Option<&'a Lease>,
        job: &'a Job,
        attempt: u32,
        error: &'a str,
        dead: bool,
    ) -> BoxFuture<'a, Result<()>> {
        if let Some(lease) = lease {
            let mut st = self.lock();
            if matches!(st.claims.get(&job.id), Some(MemClaim::InProgress { token, .. }) if *token == lease.token)
            {
                st.claims.remove(&job.id);
            }
        }
        self.upsert(job.id, |r| {
            r.status = if dead {
                JobStatus::Dead
            } else {
                JobStatus::Failed
            };
            r.attempts = attempt;
            r.error = Some(error.to_owned());
        });
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::JobType;

    #[tokio::test]
    async fn memory_claims_follow_the_dynamo_rules() {
        let store = MemoryJobStore::new();
        let job = Job::new(JobType::IndexFile, Value::Null);
        let a = |number| Attempt {
            number,
            started_at: Utc::now(),
        };
        let Claim::Acquired(lease) = store
            .begin(&job, &a(1), Duration::from_secs(60))
            .await
            .unwrap()
        else {
            panic!("first claim must succeed")
        };
        assert_eq!(store.record(job.id).unwrap().status, JobStatus::Running);
        assert!(store.progress(job.id, 5, "early").await.unwrap());
        assert!(matches!(
            store
                .begin(&job, &a(1), Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::InProgress { .. }
        ));
        store
            .failed(Some(&lease), &job, 1, "boom", false)
            .await
            .unwrap();
        assert_eq!(store.record(job.id).unwrap().status, JobStatus::Failed);
        let Claim::Acquired(lease2) = store
            .begin(&job, &a(2), Duration::from_millis(0))
            .await
            .unwrap()
        else {
            panic!("released claim must be claimable")
        };
        // An expired lock can be taken over.
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            store
                .begin(&job, &a(3), Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::Acquired(_)
        ));
        store
            .succeeded(&lease2, &job, &a(3), Some("done"), None)
            .await
            .unwrap();
        assert_eq!(
            store
                .begin(&job, &a(4), Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::AlreadySucceeded
        );
        assert_eq!(store.record(job.id).unwrap().progress_message, "done");
        assert!(!store.progress(job.id, 5, "late").await.unwrap());
    }
}
