//! End-to-end tests against moto (SQS, DynamoDB, S3). One moto server per test process.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use jobs::admin::{StatsOptions, queue_counts, queue_stats, redrive};
use jobs::idempotency::{Claim, IdempotencyStore};
use jobs::local_source::{EventSourceMapping, LocalEventSource, build_event, queue_arn};
use jobs::runtime::{DLQ_ERROR_ATTRIBUTE, DLQ_REASON_ATTRIBUTE, Outcome};
use jobs::tracking::ListQuery;
use jobs::{
    Backoff, Job, JobContext, JobError, JobResult, JobStatus, JobType, JobsConfig, QueueDirectory,
    QueueName, RetryPolicy, Worker, WorkerConfig,
};
use serde_json::{Value, json};
use support::{TestEnv, eventually, start};
use tokio::sync::Notify;
use uuid::Uuid;

const FAST: Backoff = Backoff::Immediate;

type Calls = Arc<Mutex<HashMap<Uuid, u32>>>;

fn bump(calls: &Calls, id: Uuid) -> u32 {
    let mut c = calls.lock().unwrap();
    let n = c.entry(id).or_insert(0);
    *n += 1;
    *n
}

fn worker<H: jobs::JobHandler>(
    env: &TestEnv,
    queue: QueueName,
    retry: RetryPolicy,
    handler: H,
) -> Arc<Worker> {
    let cfg = WorkerConfig::new(queue, env.dir.get(queue).unwrap().clone()).with_retry(retry);
    Arc::new(Worker::new(cfg, &env.clients, env.store.clone(), handler))
}

fn source_for(env: &TestEnv, w: &Arc<Worker>, pollers: usize) -> LocalEventSource {
    LocalEventSource::new(env.clients.sqs.clone()).with_mapping(
        EventSourceMapping::for_worker(Arc::clone(w))
            .with_wait_time(Duration::from_secs(1))
            .with_pollers(pollers),
    )
}

async fn dlq_depth(env: &TestEnv, q: QueueName) -> u64 {
    let c = queue_counts(&env.clients.sqs, &env.dir.get(q).unwrap().dlq_url)
        .await
        .unwrap();
    c.visible + c.in_flight
}

async fn drained(env: &TestEnv, q: QueueName) -> bool {
    let c = queue_counts(&env.clients.sqs, &env.dir.get(q).unwrap().url)
        .await
        .unwrap();
    c.visible == 0 && c.in_flight == 0 && c.delayed == 0
}

async fn send_raw(env: &TestEnv, q: QueueName, bodies: &[String]) {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
                .unwrap()
        })
        .collect();
    let out = env
        .clients
        .sqs
        .send_message_batch()
        .queue_url(&env.dir.get(q).unwrap().url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert!(out.failed.is_empty());
}

async fn receive_all(
    env: &TestEnv,
    url: &str,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    env.clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_reaches_dlq_after_exactly_its_attempts_while_batchmates_succeed() {
    let env = TestEnv::new(30).await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let w = worker(
        &env,
        QueueName::FileProcessing,
        RetryPolicy {
            max_attempts: 3,
            backoff: FAST,
        },
        move |job: Job, _ctx: JobContext| {
            let c = c.clone();
            async move {
                bump(&c, job.id);
                if job.payload["poison"] == json!(true) {
                    Err(JobError::retryable("cannot parse STEP header"))
                } else {
                    Ok(None)
                }
            }
        },
    );
    let mut jobs: Vec<Job> = (0..4)
        .map(|i| Job::new(JobType::ProcessFile, json!({"n": i})))
        .collect();
    let poison = Job::new(JobType::ProcessFile, json!({"poison": true}));
    jobs.insert(2, poison.clone());
    let report = env.producer().send_all(jobs.clone()).await.unwrap();
    assert_eq!(report.sent.len(), 5);

    // First delivery by hand, to see the batch response itself: exactly the poison fails.
    let url = env.dir.get(QueueName::FileProcessing).unwrap().url.clone();
    let arn = queue_arn(&env.clients.sqs, &url).await.unwrap();
    let mut msgs = Vec::new();
    while msgs.len() < 5 {
        let got = receive_all(&env, &url, 30).await;
        assert!(!got.is_empty(), "messages missing");
        msgs.extend(got);
    }
    let event = build_event(&msgs, &arn, "us-east-1");
    let resp = w.handle_batch(event).await;
    let poison_msg = msgs
        .iter()
        .find(|m| m.body().unwrap().contains(&poison.id.to_string()))
        .unwrap();
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert_eq!(
        Some(resp.batch_item_failures[0].item_identifier.as_str()),
        poison_msg.message_id()
    );
    for m in &msgs {
        if m.message_id() != poison_msg.message_id() {
            env.clients
                .sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    // The rest through the local event source mapping; the redrive policy does the DLQ move.
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(30), "poison in DLQ", || async {
        dlq_depth(&env, QueueName::FileProcessing).await == 1
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls[&poison.id], 3, "exactly maxReceiveCount attempts");
    for j in jobs.iter().filter(|j| j.id != poison.id) {
        assert_eq!(calls[&j.id], 1);
        assert_eq!(
            env.tracking.get(j.id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
    }
    let rec = env.tracking.get(poison.id).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Dead);
    assert_eq!(rec.attempts, 3);
    assert!(rec.error.unwrap().contains("STEP header"));
    assert!(drained(&env, QueueName::FileProcessing).await);
    let dead = receive_all(
        &env,
        &env.dir.get(QueueName::FileProcessing).unwrap().dlq_url,
        30,
    )
    .await;
    assert_eq!(
        Job::from_json(dead[0].body().unwrap()).unwrap().id,
        poison.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_backoff_is_what_change_message_visibility_applies() {
    // file-processing with its real policy: 3 attempts, 2 s then 4 s.
    let env = TestEnv::new(30).await;
    let times: Arc<Mutex<Vec<tokio::time::Instant>>> = Arc::default();
    let t = times.clone();
    let w = worker(
        &env,
        QueueName::FileProcessing,
        QueueName::FileProcessing.spec().retry,
        move |_job: Job, _ctx: JobContext| {
            let t = t.clone();
            async move {
                t.lock().unwrap().push(tokio::time::Instant::now());
                Err::<Option<Value>, _>(JobError::retryable("flaky storage"))
            }
        },
    );
    env.producer()
        .send(Job::new(JobType::ProcessFile, json!({})))
        .await
        .unwrap();
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(30), "dead-lettered", || async {
        dlq_depth(&env, QueueName::FileProcessing).await == 1
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    let g1 = (t[1] - t[0]).as_secs_f64();
    let g2 = (t[2] - t[1]).as_secs_f64();
    // Lower bounds are the backoff itself; the upper slack is moto's 1 s long-poll tick.
    assert!(
        (1.9..4.0).contains(&g1),
        "first backoff {g1}s, expected 2 s"
    );
    assert!(
        (3.9..6.5).contains(&g2),
        "second backoff {g2}s, expected 4 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_is_dead_lettered_without_retries() {
    let env = TestEnv::new(30).await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let w = worker(
        &env,
        QueueName::FileProcessing,
        RetryPolicy {
            max_attempts: 3,
            backoff: FAST,
        },
        move |job: Job, _ctx: JobContext| {
            let c = c.clone();
            async move {
                bump(&c, job.id);
                Err::<Option<Value>, _>(JobError::permanent("unsupported CAD format .xyz"))
            }
        },
    );
    let job = Job::new(JobType::ProcessFile, json!({"file": "a.xyz"}));
    env.producer().send(job.clone()).await.unwrap();
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(20), "dead-lettered", || async {
        dlq_depth(&env, QueueName::FileProcessing).await == 1
    })
    .await;
    eventually(Duration::from_secs(10), "source drained", || async {
        drained(&env, QueueName::FileProcessing).await
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(
        calls.lock().unwrap()[&job.id],
        1,
        "no retries for a permanent failure"
    );
    let dead = receive_all(
        &env,
        &env.dir.get(QueueName::FileProcessing).unwrap().dlq_url,
        30,
    )
    .await;
    let attrs = dead[0].message_attributes().unwrap();
    assert_eq!(
        attrs[DLQ_REASON_ATTRIBUTE].string_value(),
        Some("permanent")
    );
    assert!(
        attrs[DLQ_ERROR_ATTRIBUTE]
            .string_value()
            .unwrap()
            .contains(".xyz")
    );
    assert_eq!(
        attrs["correlation-id"].string_value(),
        Some(job.correlation_id.as_str())
    );
    assert_eq!(
        dead[0].attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    let rec = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.attempts), (JobStatus::Dead, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_fails_alone() {
    let env = TestEnv::new(30).await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let w = worker(
        &env,
        QueueName::Notifications,
        RetryPolicy {
            max_attempts: 3,
            backoff: FAST,
        },
        move |job: Job, _ctx: JobContext| {
            let c = c.clone();
            async move {
                bump(&c, job.id);
                Ok(None)
            }
        },
    );
    let good: Vec<Job> = (0..3)
        .map(|_| Job::new(JobType::SendNotification, json!({"to": "a@b.c"})))
        .collect();
    let mut bodies: Vec<String> = good.iter().map(|j| j.to_json().unwrap()).collect();
    bodies.insert(1, "not json {".to_owned());
    send_raw(&env, QueueName::Notifications, &bodies).await;
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(
        Duration::from_secs(20),
        "malformed dead-lettered",
        || async { dlq_depth(&env, QueueName::Notifications).await == 1 },
    )
    .await;
    eventually(Duration::from_secs(10), "source drained", || async {
        drained(&env, QueueName::Notifications).await
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    for j in &good {
        assert_eq!(calls.lock().unwrap()[&j.id], 1);
        assert_eq!(
            env.tracking.get(j.id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
    }
    let dead = receive_all(
        &env,
        &env.dir.get(QueueName::Notifications).unwrap().dlq_url,
        30,
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("not json {"));
    assert_eq!(
        dead[0].message_attributes().unwrap()[DLQ_REASON_ATTRIBUTE].string_value(),
        Some("malformed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_payload_goes_through_s3_and_back() {
    let env = TestEnv::new(30).await;
    let big = "x".repeat(300 * 1024);
    let job = Job::new(JobType::GenerateReport, json!({"rows": big})).with_user(Uuid::new_v4());

    // Without a bucket the job is refused, not truncated.
    let no_bucket = jobs::Producer::new(&env.clients, env.dir.clone(), env.tracking.clone());
    let report = no_bucket
        .send_all(vec![job.clone().with_id(Uuid::new_v4())])
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].code, "PayloadTooLarge");

    env.producer().send(job.clone()).await.unwrap();
    let url = env.dir.get(QueueName::Reports).unwrap().url.clone();
    let peek = receive_all(&env, &url, 0).await;
    assert_eq!(peek.len(), 1);
    let body = peek[0].body().unwrap();
    assert!(
        body.len() < 2_000,
        "envelope stays small: {} bytes",
        body.len()
    );
    let wire = Job::from_json(body).unwrap();
    let reference = wire.payload_ref.clone().expect("payload_ref set");
    assert_eq!(reference.bucket, env.bucket);
    assert_eq!(wire.payload, Value::Null);

    let seen: Arc<Mutex<Option<Value>>> = Arc::default();
    let s = seen.clone();
    let w = worker(
        &env,
        QueueName::Reports,
        RetryPolicy {
            max_attempts: 2,
            backoff: FAST,
        },
        move |job: Job, _ctx: JobContext| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(job.payload);
                Ok(Some(json!({"report_key": "reports/r1.pdf"})))
            }
        },
    );
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(20), "report handled", || async {
        seen.lock().unwrap().is_some()
    })
    .await;
    eventually(Duration::from_secs(10), "source drained", || async {
        drained(&env, QueueName::Reports).await
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(seen.lock().unwrap().clone().unwrap(), job.payload);
    let rec = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Succeeded);
    assert_eq!(rec.result, Some(json!({"report_key": "reports/r1.pdf"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_of_a_succeeded_job_does_not_run_it_again() {
    let env = TestEnv::new(30).await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let w = worker(
        &env,
        QueueName::SearchIndexing,
        RetryPolicy {
            max_attempts: 2,
            backoff: FAST,
        },
        move |job: Job, _ctx: JobContext| {
            let c = c.clone();
            async move {
                bump(&c, job.id);
                Ok(None)
            }
        },
    );
    let job = Job::new(JobType::IndexFile, json!({"file_id": "f-1"}));
    env.producer().send(job.clone()).await.unwrap();
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(20), "first run", || async {
        calls.lock().unwrap().get(&job.id) == Some(&1)
    })
    .await;
    eventually(Duration::from_secs(10), "drained", || async {
        drained(&env, QueueName::SearchIndexing).await
    })
    .await;
    let first = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(first.status, JobStatus::Succeeded);
    // SQS at-least-once: the same envelope arrives twice more.
    let body = job.to_json().unwrap();
    send_raw(&env, QueueName::SearchIndexing, &[body.clone(), body]).await;
    eventually(Duration::from_secs(20), "duplicates consumed", || async {
        drained(&env, QueueName::SearchIndexing).await
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(calls.lock().unwrap()[&job.id], 1);
    assert_eq!(dlq_depth(&env, QueueName::SearchIndexing).await, 0);
    let after = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(
        after.finished_at, first.finished_at,
        "tracking untouched by duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_is_reported_failed_not_run_twice() {
    let env = TestEnv::new(30).await;
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let calls = Arc::new(AtomicU32::new(0));
    let (s, r, c) = (started.clone(), release.clone(), calls.clone());
    let cfg = WorkerConfig::new(
        QueueName::SearchIndexing,
        env.dir.get(QueueName::SearchIndexing).unwrap().clone(),
    )
    .with_lock_duration(Duration::from_secs(3));
    let w = Arc::new(Worker::new(
        cfg,
        &env.clients,
        env.store.clone(),
        move |_job: Job, _ctx: JobContext| {
            let (s, r, c) = (s.clone(), r.clone(), c.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                s.notify_one();
                r.notified().await;
                Ok(None)
            }
        },
    ));
    let job = Job::new(JobType::ReindexAll, json!({}));
    let body = job.to_json().unwrap();
    send_raw(&env, QueueName::SearchIndexing, &[body.clone(), body]).await;
    let url = env.dir.get(QueueName::SearchIndexing).unwrap().url.clone();
    let arn = queue_arn(&env.clients.sqs, &url).await.unwrap();
    let mut msgs = Vec::new();
    while msgs.len() < 2 {
        msgs.extend(receive_all(&env, &url, 30).await);
    }
    let first = build_event(&msgs[..1], &arn, "us-east-1");
    let second = build_event(&msgs[1..2], &arn, "us-east-1");
    let w1 = w.clone();
    let running = tokio::spawn(async move { w1.handle_batch(first).await });
    started.notified().await;
    let resp = w.handle_batch(second).await;
    assert_eq!(
        resp.batch_item_failures.len(),
        1,
        "duplicate in progress is a batch item failure"
    );
    assert_eq!(
        Some(resp.batch_item_failures[0].item_identifier.as_str()),
        msgs[1].message_id()
    );
    release.notify_one();
    assert!(running.await.unwrap().batch_item_failures.is_empty());
    // Redelivered later, the duplicate is acknowledged without running.
    let again = build_event(&msgs[1..2], &arn, "us-east-1");
    let outcome = w
        .process(again.records.into_iter().next().unwrap(), None)
        .await;
    assert_eq!(outcome, Outcome::Duplicate);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_lock_expires_so_a_crashed_attempt_can_be_retried() {
    let env = TestEnv::new(30).await;
    let store: &IdempotencyStore = &env.store.idempotency;
    let key = Uuid::new_v4().to_string();
    let Claim::Acquired(crashed) = store.claim(&key, Duration::from_millis(300)).await.unwrap()
    else {
        panic!("first claim")
    };
    assert!(matches!(
        store.claim(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::InProgress { .. }
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let Claim::Acquired(retry) = store.claim(&key, Duration::from_secs(60)).await.unwrap() else {
        panic!("expired lock must be claimable")
    };
    // The crashed attempt's late release must not drop the new owner's lock.
    store.release(&crashed).await.unwrap();
    assert!(matches!(
        store.claim(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::InProgress { .. }
    ));
    store.complete(&retry).await.unwrap();
    assert_eq!(
        store.claim(&key, Duration::from_secs(60)).await.unwrap(),
        Claim::AlreadySucceeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_jobs_with_ten_percent_transient_failures_all_succeed_exactly_once() {
    // Four pollers, like a Lambda ESM scaling out. moto's SQS is not thread-safe: concurrent
    // ReceiveMessage calls can hand out the same message twice and concurrent deletes can undo
    // each other, so some messages really are delivered more than once here. That makes this a
    // test of the idempotency guarantees, so it asserts what must hold under at-least-once
    // delivery rather than exact receive counts. Jobs go in rounds of 100 (see
    // `process_in_rounds` for the moto limits behind that).
    // Visibility 20 s and lock 15 s (the handler is instant): a message moto resurrects or
    // duplicates comes back within seconds instead of the catalogue's minutes.
    let env = TestEnv::new(20).await;
    let successes: Calls = Arc::default();
    let failures: Calls = Arc::default();
    let (s, f) = (successes.clone(), failures.clone());
    let cfg = WorkerConfig::new(
        QueueName::Notifications,
        env.dir.get(QueueName::Notifications).unwrap().clone(),
    )
    // Five attempts: a flaky job's first run may already carry receive count 2 or 3 when moto
    // handed its message out twice; the retry budget is not what this test is about.
    .with_retry(RetryPolicy {
        max_attempts: 5,
        backoff: FAST,
    })
    .with_lock_duration(Duration::from_secs(15));
    let runs: Calls = Arc::default();
    let handler = move |job: Job, _ctx: JobContext| {
        let (s, f, r) = (s.clone(), f.clone(), runs.clone());
        async move {
            // Fail the first run of each flaky job (by run, not by receive count, for the
            // reason above).
            if job.payload["flaky"] == json!(true) && bump(&r, job.id) == 1 {
                bump(&f, job.id);
                return Err(JobError::retryable("SMTP 421 try again"));
            }
            bump(&s, job.id);
            Ok(None)
        }
    };
    let w = Arc::new(Worker::new(cfg, &env.clients, env.store.clone(), handler));
    let jobs: Vec<Job> = (0..1000)
        .map(|i| {
            Job::new(
                JobType::SendNotification,
                json!({"i": i, "flaky": i % 10 == 0}),
            )
        })
        .collect();
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let flaky: HashSet<Uuid> = jobs
        .iter()
        .filter(|j| j.payload["flaky"] == json!(true))
        .map(|j| j.id)
        .collect();
    assert_eq!(flaky.len(), 100);
    let rounds = support::process_in_rounds(&env, w.clone(), jobs, 100, 4).await;
    eprintln!("1000 jobs: {rounds:?}");
    assert_eq!(rounds.sent, 1000);
    assert_eq!(successes.lock().unwrap().len(), 1000);

    let s = successes.lock().unwrap().clone();
    let f = failures.lock().unwrap().clone();
    assert!(s.values().all(|&n| n == 1), "a job succeeded twice");
    assert!(
        f.keys().all(|id| flaky.contains(id)),
        "only flaky jobs failed"
    );
    assert!(
        f.values().all(|&n| n == 1),
        "a flaky job failed more than once"
    );
    assert_eq!(f.len(), 100, "every flaky job failed once");
    let records = env.tracking.get_many(&ids).await.unwrap();
    assert_eq!(records.len(), 1000, "no job lost");
    let not_ok: Vec<_> = records
        .values()
        .filter(|r| r.status != JobStatus::Succeeded)
        .collect();
    assert!(
        not_ok.is_empty(),
        "{} jobs not succeeded, e.g. {:?}",
        not_ok.len(),
        not_ok.first()
    );
    assert!(
        f.keys().all(|id| records[id].attempts >= 2),
        "a retried job records its later attempt"
    );
    assert_eq!(dlq_depth(&env, QueueName::Notifications).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reported_by_a_handler_is_visible_through_the_query_api() {
    let env = TestEnv::new(30).await;
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let w = worker(
        &env,
        QueueName::AiTraining,
        RetryPolicy {
            max_attempts: 1,
            backoff: FAST,
        },
        move |_job: Job, ctx: JobContext| {
            let r = r.clone();
            async move {
                ctx.progress(10, "loading dataset").await?;
                ctx.progress(40, "epoch 2/5").await?;
                r.notified().await;
                Ok(Some(json!({"model_key": "models/m1.onnx"})))
            }
        },
    );
    let user = Uuid::new_v4();
    let job = Job::new(JobType::TrainModel, json!({"dataset": "d1"}))
        .with_user(user)
        .with_correlation_id("req-77");
    env.producer().send(job.clone()).await.unwrap();
    let (stop, handle) = start(source_for(&env, &w, 1));
    eventually(Duration::from_secs(20), "progress 40 visible", || async {
        let r = env.tracking.get(job.id).await.unwrap().unwrap();
        r.progress == 40
    })
    .await;
    let mid = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(mid.status, JobStatus::Running);
    assert_eq!(mid.progress_message.as_deref(), Some("epoch 2/5"));
    assert_eq!(mid.attempts, 1);
    assert_eq!(mid.correlation_id, "req-77");
    assert!(mid.started_at.is_some());
    let page = env
        .tracking
        .list_for_user(
            user,
            &ListQuery {
                status: Some(JobStatus::Running),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].progress, 40);
    release.notify_one();
    eventually(Duration::from_secs(20), "succeeded", || async {
        env.tracking.get(job.id).await.unwrap().unwrap().status == JobStatus::Succeeded
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    let done = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(done.progress, 100);
    assert_eq!(done.result, Some(json!({"model_key": "models/m1.onnx"})));
    assert!(done.finished_at.unwrap() >= done.started_at.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_job_listing_is_newest_first_filtered_and_paginated() {
    let env = TestEnv::new(30).await;
    let user = Uuid::new_v4();
    let base = chrono::Utc::now() - chrono::Duration::hours(1);
    let types = [
        JobType::ProcessFile,
        JobType::IndexFile,
        JobType::GenerateReport,
    ];
    let jobs: Vec<Job> = (0..7)
        .map(|i| {
            let mut j = Job::new(types[i % 3], json!({})).with_user(user);
            j.created_at = base + chrono::Duration::seconds(i as i64);
            j
        })
        .collect();
    env.tracking.record_queued(&jobs).await.unwrap();
    // Someone else's job must never show up.
    env.tracking
        .record_queued(&[Job::new(JobType::ProcessFile, json!({})).with_user(Uuid::new_v4())])
        .await
        .unwrap();
    env.tracking
        .mark_succeeded(&jobs[0], 1, None)
        .await
        .unwrap();
    env.tracking
        .mark_failed(&jobs[3], 1, "boom", true)
        .await
        .unwrap();

    let newest_first: Vec<Uuid> = jobs.iter().rev().map(|j| j.id).collect();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = env
            .tracking
            .list_for_user(
                user,
                &ListQuery {
                    limit: 3,
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|r| r.job_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    let queued = env
        .tracking
        .list_for_user(
            user,
            &ListQuery {
                status: Some(JobStatus::Queued),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(queued.items.len(), 5);
    assert!(queued.next_cursor.is_none());
    let reports = env
        .tracking
        .list_for_user(
            user,
            &ListQuery {
                job_type: Some(JobType::GenerateReport),
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reports.items.len(), 1);
    assert_eq!(reports.items[0].job_id, jobs[5].id);
    let next = env
        .tracking
        .list_for_user(
            user,
            &ListQuery {
                job_type: Some(JobType::GenerateReport),
                limit: 1,
                cursor: reports.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items[0].job_id, jobs[2].id);
    let dead = env
        .tracking
        .list_for_user(
            user,
            &ListQuery {
                status: Some(JobStatus::Dead),
                job_type: Some(JobType::ProcessFile),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        dead.items.iter().map(|r| r.job_id).collect::<Vec<_>>(),
        vec![jobs[3].id]
    );
    assert_eq!(dead.items[0].error.as_deref(), Some("boom"));
    assert!(matches!(
        env.tracking
            .list_for_user(
                Uuid::new_v4(),
                &ListQuery {
                    cursor: reports.next_cursor,
                    ..Default::default()
                }
            )
            .await,
        Err(jobs::Error::InvalidCursor)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stats_count_queues_and_redrive_moves_dlq_messages_back() {
    let env = TestEnv::new(30).await;
    let sqs = &env.clients.sqs;
    let urls = env.dir.get(QueueName::Reports).unwrap().clone();
    let mk = || Job::new(JobType::GenerateReport, json!({}));
    let visible: Vec<String> = (0..3).map(|_| mk().to_json().unwrap()).collect();
    send_raw(&env, QueueName::Reports, &visible).await;
    sqs.send_message()
        .queue_url(&urls.url)
        .message_body(mk().to_json().unwrap())
        .delay_seconds(60)
        .send()
        .await
        .unwrap();
    let taken = sqs
        .receive_message()
        .queue_url(&urls.url)
        .max_number_of_messages(1)
        .visibility_timeout(60)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.messages.unwrap_or_default().len(), 1);
    // Two dead jobs in the DLQ, tracked as dead, one with the runtime's error attributes.
    let dead: Vec<Job> = (0..2).map(|_| mk()).collect();
    env.tracking.record_queued(&dead).await.unwrap();
    for d in &dead {
        env.tracking
            .mark_failed(d, 2, "renderer crashed", true)
            .await
            .unwrap();
    }
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    sqs.send_message()
        .queue_url(&urls.dlq_url)
        .message_body(dead[0].to_json().unwrap())
        .message_attributes(DLQ_ERROR_ATTRIBUTE, attr("renderer crashed"))
        .message_attributes("correlation-id", attr("req-9"))
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&urls.dlq_url)
        .message_body(dead[1].to_json().unwrap())
        .send()
        .await
        .unwrap();

    let mut dir = QueueDirectory::new();
    dir.insert(QueueName::Reports, urls.clone());
    let stats = queue_stats(sqs, &dir, Some(&env.tracking), &StatsOptions::default())
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(
        (s.source.visible, s.source.in_flight, s.source.delayed),
        (2, 1, 1)
    );
    assert_eq!(s.dlq.visible, 2);
    assert!(s.dlq.oldest_age_secs.is_some_and(|a| a < 60));
    assert_eq!(
        s.source.oldest_age_secs, None,
        "source queues are not peeked by default"
    );
    assert_eq!(s.retry.max_attempts, 2);
    assert_eq!(s.recent_failures.len(), 2);
    assert!(
        s.recent_failures
            .iter()
            .all(|r| r.status == JobStatus::Dead && r.error.as_deref() == Some("renderer crashed"))
    );
    assert!(
        s.recent_failures[0].failed_at >= s.recent_failures[1].failed_at,
        "newest first"
    );
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json[0]["queue"], "reports");

    let report = redrive(sqs, &urls, Some(&env.tracking), 100).await.unwrap();
    assert_eq!((report.moved, report.failed), (2, 0));
    let after = queue_stats(sqs, &dir, None, &StatsOptions::default())
        .await
        .unwrap();
    assert_eq!(after[0].dlq.visible + after[0].dlq.in_flight, 0);
    assert_eq!(after[0].source.visible, 4);
    for d in &dead {
        assert_eq!(
            env.tracking.get(d.id).await.unwrap().unwrap().status,
            JobStatus::Queued
        );
    }
    let back = receive_all(&env, &urls.url, 30).await;
    let redriven = back
        .iter()
        .find(|m| m.body() == Some(dead[0].to_json().unwrap().as_str()))
        .expect("redriven message");
    let attrs = redriven.message_attributes().unwrap();
    assert_eq!(attrs["correlation-id"].string_value(), Some("req-9"));
    assert!(
        !attrs.contains_key(DLQ_ERROR_ATTRIBUTE),
        "runtime attributes are stripped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_queues_carry_the_catalogue_redrive_policy_and_resolve_by_prefix() {
    let clients = jobs::Clients::new(&support::sdk().await);
    let prefix = format!("{}-", support::unique("q"));
    let dir = jobs::local_source::create_queues(&clients.sqs, &prefix, &Default::default())
        .await
        .unwrap();
    for q in QueueName::ALL {
        let urls = dir.get(q).unwrap();
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&urls.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let redrive: Value =
            serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy])
                .unwrap();
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            q.spec().retry.max_attempts.to_string()
        );
        assert!(
            redrive["deadLetterTargetArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{prefix}{}-dlq", q.as_str()))
        );
        assert_eq!(
            attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout],
            q.spec().visibility_timeout_secs.to_string()
        );
    }
    let by_prefix = QueueDirectory::from_prefix(&clients.sqs, &prefix)
        .await
        .unwrap();
    assert_eq!(
        by_prefix.get(QueueName::Reports).unwrap(),
        dir.get(QueueName::Reports).unwrap()
    );
    // Env resolution: an explicit URL wins, the prefix fills the rest.
    let explicit = "http://example.invalid/000000000000/custom";
    let cfg = JobsConfig::from_lookup(|k| match k {
        "JOBS_TABLE" => Some("t".into()),
        "JOBS_IDEMPOTENCY_TABLE" => Some("i".into()),
        "JOBS_QUEUE_PREFIX" => Some(prefix.clone()),
        "REPORTS_QUEUE_URL" => Some(explicit.into()),
        _ => None,
    })
    .unwrap();
    let resolved = QueueDirectory::resolve(&clients.sqs, &cfg, &QueueName::ALL)
        .await
        .unwrap();
    assert_eq!(resolved.get(QueueName::Reports).unwrap().url, explicit);
    assert_eq!(
        resolved.get(QueueName::Reports).unwrap().dlq_url,
        dir.get(QueueName::Reports).unwrap().dlq_url
    );
    assert_eq!(
        resolved.get(QueueName::AiTraining).unwrap(),
        dir.get(QueueName::AiTraining).unwrap()
    );
    let no_prefix = JobsConfig::from_lookup(|k| {
        matches!(k, "JOBS_TABLE" | "JOBS_IDEMPOTENCY_TABLE").then(|| "x".to_owned())
    })
    .unwrap();
    assert!(matches!(
        QueueDirectory::resolve(&clients.sqs, &no_prefix, &[QueueName::Reports]).await,
        Err(jobs::Error::QueueNotConfigured("reports"))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_chunks_mixed_queues_and_records_queued() {
    let env = TestEnv::new(30).await;
    let jobs: Vec<Job> = (0..23)
        .map(|i| {
            let t = [
                JobType::ProcessFile,
                JobType::SendNotification,
                JobType::IndexFile,
            ][i % 3];
            Job::new(t, json!({"i": i})).with_correlation_id(format!("req-{i}"))
        })
        .collect();
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let report = env.producer().send_all(jobs).await.unwrap();
    assert_eq!(report.sent.len(), 23);
    assert_eq!(
        report.sent.iter().map(|s| s.job_id).collect::<HashSet<_>>(),
        ids.iter().copied().collect()
    );
    let recs = env.tracking.get_many(&ids).await.unwrap();
    assert!(recs.values().all(|r| r.status == JobStatus::Queued
        && r.attempts == 0
        && r.correlation_id.starts_with("req-")));
    let mut total = 0;
    for q in [
        QueueName::FileProcessing,
        QueueName::Notifications,
        QueueName::SearchIndexing,
    ] {
        let c = queue_counts(&env.clients.sqs, &env.dir.get(q).unwrap().url)
            .await
            .unwrap();
        total += c.visible;
    }
    assert_eq!(total, 23);
    // A queue missing from the directory is reported per job, not as a whole-call error.
    let mut partial = QueueDirectory::new();
    partial.insert(
        QueueName::Reports,
        env.dir.get(QueueName::Reports).unwrap().clone(),
    );
    let p = jobs::Producer::new(&env.clients, partial, env.tracking.clone());
    let r = p
        .send_all(vec![
            Job::new(JobType::TrainModel, json!({})),
            Job::new(JobType::GenerateReport, json!({})),
        ])
        .await
        .unwrap();
    assert_eq!((r.sent.len(), r.failed.len()), (1, 1));
    assert_eq!(r.failed[0].code, "QueueNotConfigured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_source_stops_promptly_on_shutdown() {
    let env = TestEnv::new(30).await;
    let w = worker(
        &env,
        QueueName::Reports,
        QueueName::Reports.spec().retry,
        |_job: Job, _ctx: JobContext| async { Ok(None) as JobResult },
    );
    let source = LocalEventSource::new(env.clients.sqs.clone()).with_mapping(
        EventSourceMapping::for_worker(w)
            .with_wait_time(Duration::from_secs(20))
            .with_pollers(3),
    );
    let (stop, handle) = start(source);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = tokio::time::Instant::now();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(3), handle)
        .await
        .expect("stopped in time")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
}
