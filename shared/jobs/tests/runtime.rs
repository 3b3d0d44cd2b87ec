//! Worker runtime behaviour that needs no AWS service: the in-memory store stands in for
//! DynamoDB, and SQS calls (only made on failure paths) go to a closed local port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::config::Credentials;
use jobs::runtime::Outcome;
use jobs::{
    Clients, Job, JobContext, JobError, JobStatus, JobType, MemoryJobStore, QueueName, QueueUrls,
    Worker, WorkerConfig,
};
use serde_json::json;

async fn offline_clients() -> Clients {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "tests"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    Clients::new(&sdk)
}

fn urls() -> QueueUrls {
    QueueUrls {
        url: "http://127.0.0.1:9/000000000000/q".into(),
        dlq_url: "http://127.0.0.1:9/000000000000/q-dlq".into(),
    }
}

fn message(id: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.receipt_handle = Some(format!("rh-{id}"));
    m.body = Some(body.to_owned());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn event(msgs: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = msgs;
    e
}

#[tokio::test]
async fn succeeded_job_is_not_run_again_and_tracking_follows() {
    let store = Arc::new(MemoryJobStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let w = Arc::new(Worker::new(
        WorkerConfig::new(QueueName::Notifications, urls()),
        &offline_clients().await,
        store.clone(),
        move |_job: Job, ctx: JobContext| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                assert!(ctx.progress(50, "half").await.unwrap());
                Ok(None)
            }
        },
    ));
    let job = Job::new(JobType::SendNotification, json!({}));
    let body = job.to_json().unwrap();
    let resp = w.handle_batch(event(vec![message("a", &body, 1)])).await;
    assert!(resp.batch_item_failures.is_empty());
    let resp = w
        .handle_batch(event(vec![message("b", &body, 1), message("c", &body, 2)]))
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let rec = store.record(job.id).unwrap();
    assert_eq!(
        (rec.status, rec.progress, rec.attempts),
        (JobStatus::Succeeded, 100, 1)
    );
}

#[tokio::test]
async fn messages_of_a_batch_run_concurrently_up_to_the_limit() {
    for limit in [1usize, 4] {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let w = Arc::new(Worker::new(
            WorkerConfig::new(QueueName::SearchIndexing, urls()).with_concurrency(limit),
            &offline_clients().await,
            Arc::new(MemoryJobStore::new()),
            move |_job: Job, _ctx: JobContext| {
                let (r, p) = (r.clone(), p.clone());
                async move {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    r.fetch_sub(1, Ordering::SeqCst);
                    Ok(None)
                }
            },
        ));
        let msgs = (0..10)
            .map(|i| {
                message(
                    &i.to_string(),
                    &Job::new(JobType::IndexFile, json!({})).to_json().unwrap(),
                    1,
                )
            })
            .collect();
        assert!(
            w.handle_batch(event(msgs))
                .await
                .batch_item_failures
                .is_empty()
        );
        assert_eq!(peak.load(Ordering::SeqCst), limit);
    }
}

#[tokio::test]
async fn panics_and_timeouts_fail_only_their_own_message() {
    let store = Arc::new(MemoryJobStore::new());
    let w = Arc::new(Worker::new(
        WorkerConfig::new(QueueName::FileProcessing, urls())
            .with_handler_timeout(Duration::from_millis(200)),
        &offline_clients().await,
        store.clone(),
        |job: Job, _ctx: JobContext| async move {
            match job.payload["mode"].as_str() {
                Some("panic") => panic!("corrupt mesh"),
                Some("hang") => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(None)
                }
                _ => Ok(None),
            }
        },
    ));
    let jobs: Vec<Job> = ["ok", "panic", "hang", "ok"]
        .iter()
        .map(|m| Job::new(JobType::ProcessFile, json!({"mode": m})))
        .collect();
    let msgs = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| message(&format!("m{i}"), &j.to_json().unwrap(), 1))
        .collect();
    let t0 = std::time::Instant::now();
    let resp = w.handle_batch(event(msgs)).await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    let mut failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, vec!["m1", "m2"]);
    let panicked = store.record(jobs[1].id).unwrap();
    assert_eq!(
        panicked.status,
        JobStatus::Failed,
        "attempt 1 of 3: will be retried"
    );
    let err = panicked.error.unwrap();
    assert!(err.contains("corrupt mesh"), "{err}");
    assert!(
        store
            .record(jobs[2].id)
            .unwrap()
            .error
            .unwrap()
            .contains("timed out")
    );
    assert_eq!(
        store.record(jobs[0].id).unwrap().status,
        JobStatus::Succeeded
    );
}

#[tokio::test]
async fn final_attempt_failure_is_dead_and_over_budget_is_not_run() {
    let store = Arc::new(MemoryJobStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let w = Arc::new(Worker::new(
        WorkerConfig::new(QueueName::SearchIndexing, urls()),
        &offline_clients().await,
        store.clone(),
        move |_job: Job, _ctx: JobContext| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err::<Option<serde_json::Value>, _>(JobError::retryable("index busy")) }
        },
    ));
    let first = Job::new(JobType::IndexFile, json!({}));
    let out = w
        .process(message("a", &first.to_json().unwrap(), 1), None)
        .await;
    assert_eq!(out, Outcome::Retry { delay_secs: 5 });
    let out = w
        .process(message("a", &first.to_json().unwrap(), 2), None)
        .await;
    assert_eq!(out, Outcome::Exhausted);
    assert_eq!(store.record(first.id).unwrap().status, JobStatus::Dead);
    // A third receive (looser redrive policy than the catalogue) must not run the handler; the
    // DLQ here is unreachable, so it falls back to leaving the message for the redrive policy.
    let out = w
        .process(message("a", &first.to_json().unwrap(), 3), None)
        .await;
    assert_eq!(out, Outcome::Exhausted);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn late_redelivery_of_a_succeeded_job_past_its_attempts_is_a_duplicate_not_dead() {
    let store = Arc::new(MemoryJobStore::new());
    let w = Arc::new(Worker::new(
        WorkerConfig::new(QueueName::AiTraining, urls()),
        &offline_clients().await,
        store.clone(),
        |_job: Job, _ctx: JobContext| async { Ok(None) },
    ));
    let job = Job::new(JobType::TrainModel, json!({}));
    let body = job.to_json().unwrap();
    assert_eq!(
        w.process(message("a", &body, 1), None).await,
        Outcome::Succeeded
    );
    // ai-training allows one attempt; a lost delete brings the message back with count 2.
    assert_eq!(
        w.process(message("a", &body, 2), None).await,
        Outcome::Duplicate
    );
    assert_eq!(store.record(job.id).unwrap().status, JobStatus::Succeeded);
}
