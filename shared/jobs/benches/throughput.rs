//! Throughput benchmarks (harness = false; prints a table).
//!
//! 1. Runtime CPU overhead per message, in process: the batch handler over synthetic SqsEvents
//!    with the in-memory store (no I/O at all, so only the runtime's own work is measured)
//!    against calling the handler directly.
//! 2. End to end against moto: N no-op jobs sent with the producer (SendMessageBatch plus
//!    tracking BatchWriteItem), then consumed through the local event source emulation
//!    (ReceiveMessage, batch handler, DeleteMessageBatch), with the DynamoDB store and with the
//!    in-memory store.
//!
//! Env: JOBS_BENCH_MESSAGES (default 20000), JOBS_BENCH_E2E_JOBS (default 2000),
//! JOBS_BENCH_ROUND (default 200), JOBS_BENCH_POLLERS (default 1), AWS_ENDPOINT_URL (else a
//! private moto is started). Jobs go in rounds (send a round, then consume it) because moto's
//! SQS slows down with queue depth and loses messages sent during a delete; see
//! `tests/support/mod.rs`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use jobs::{
    Clients, Job, JobContext, JobResult, JobStore, JobType, MemoryJobStore, QueueName, QueueUrls,
    Worker, WorkerConfig,
};
use serde_json::json;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn synthetic_events(n: usize) -> Vec<SqsEvent> {
    let msgs: Vec<SqsMessage> = (0..n)
        .map(|i| {
            let job = Job::new(
                JobType::SendNotification,
                json!({"to": "user@example.com", "template": "welcome", "i": i}),
            )
            .with_user(Uuid::new_v4())
            .with_correlation_id(format!("req-{i}"));
            let mut m = SqsMessage::default();
            m.message_id = Some(Uuid::new_v4().to_string());
            m.receipt_handle = Some(format!("rh-{i}"));
            m.body = Some(job.to_json().expect("serialise"));
            m.attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            m.attributes
                .insert("SentTimestamp".into(), "1700000000000".into());
            m.event_source = Some("aws:sqs".into());
            m.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:notifications".into());
            m
        })
        .collect();
    msgs.chunks(10)
        .map(|c| {
            let mut e = SqsEvent::default();
            e.records = c.to_vec();
            e
        })
        .collect()
}

async fn noop(_job: Job, _ctx: JobContext) -> JobResult {
    Ok(None)
}

async fn overhead(rows: &mut Vec<(String, String, String)>) {
    let n = env_usize("JOBS_BENCH_MESSAGES", 20_000);
    // Clients are never called on the success path; point them nowhere.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "k", "s", None, None, "bench",
        ))
        .endpoint_url("http://127.0.0.1:9")
        .load()
        .await;
    let clients = Clients::new(&sdk);
    let urls = QueueUrls {
        url: "http://127.0.0.1:9/q".into(),
        dlq_url: "http://127.0.0.1:9/q-dlq".into(),
    };

    // Baseline A: the handler alone on pre-parsed jobs.
    let events = synthetic_events(n);
    let parsed: Vec<Job> = events
        .iter()
        .flat_map(|e| {
            e.records
                .iter()
                .map(|m| Job::from_json(m.body.as_deref().unwrap_or("")).expect("parse"))
        })
        .collect();
    let calls = Arc::new(AtomicUsize::new(0));
    let direct = {
        let calls = calls.clone();
        move |job: Job| {
            calls.fetch_add(1, Ordering::Relaxed);
            std::hint::black_box(job);
            async { Ok::<Option<serde_json::Value>, jobs::JobError>(None) }
        }
    };
    let mut best_direct = f64::MAX;
    let mut best_parse = f64::MAX;
    for _ in 0..3 {
        let jobs = parsed.clone();
        let t = Instant::now();
        for j in jobs {
            let _ = std::hint::black_box(direct(j).await);
        }
        best_direct = best_direct.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for e in &events {
            for m in &e.records {
                let j = Job::from_json(m.body.as_deref().unwrap_or("")).expect("parse");
                let _ = std::hint::black_box(direct(j).await);
            }
        }
        best_parse = best_parse.min(t.elapsed().as_secs_f64());
    }
    let per = |secs: f64| format!("{:.2} µs", secs * 1e6 / n as f64);
    let rate = |secs: f64| format!("{:.0} msg/s", n as f64 / secs);
    rows.push((
        "handler called directly (pre-parsed job)".into(),
        per(best_direct),
        rate(best_direct),
    ));
    rows.push((
        "parse envelope + handler".into(),
        per(best_parse),
        rate(best_parse),
    ));

    for concurrency in [1usize, 10] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            // Fresh store each run so every message is a first delivery (no duplicate short-cut).
            let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::new());
            let w = Arc::new(Worker::new(
                WorkerConfig::new(QueueName::Notifications, urls.clone())
                    .with_concurrency(concurrency),
                &clients,
                store,
                noop,
            ));
            let evs = events.clone();
            let t = Instant::now();
            let mut failures = 0;
            for e in evs {
                failures += w.handle_batch(e).await.batch_item_failures.len();
            }
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!(failures, 0);
        }
        rows.push((
            format!("runtime batch handler, in-memory store, concurrency {concurrency}"),
            per(best),
            rate(best),
        ));
        if concurrency == 10 {
            rows.push((
                "=> runtime overhead per message (vs direct)".into(),
                format!("{:.2} µs", (best - best_direct) * 1e6 / n as f64),
                String::new(),
            ));
        }
    }
}

async fn end_to_end(rows: &mut Vec<(String, String, String)>, dynamo: bool) {
    let n = env_usize("JOBS_BENCH_E2E_JOBS", 2_000);
    // One poller: with several, moto's thread-unsafe SQS hands out duplicates and resurrects
    // deleted messages (each then waits out the visibility timeout), which measures moto, not us.
    let pollers = env_usize("JOBS_BENCH_POLLERS", 1);
    let round = env_usize("JOBS_BENCH_ROUND", 200);
    let env = support::TestEnv::new(60).await;
    let label = if dynamo {
        "DynamoDB idempotency + tracking"
    } else {
        "in-memory store (SQS only)"
    };
    let urls = env.dir.get(QueueName::Notifications).expect("urls").clone();
    let jobs: Vec<Job> = (0..n)
        .map(|i| {
            Job::new(JobType::SendNotification, json!({"i": i}))
                .with_correlation_id(format!("bench-{i}"))
        })
        .collect();
    let done = Arc::new(Mutex::new(HashSet::new()));
    let d = done.clone();
    let handler = move |job: Job, _ctx: JobContext| {
        let d = d.clone();
        async move {
            d.lock().unwrap_or_else(|p| p.into_inner()).insert(job.id);
            Ok(None)
        }
    };
    let store: Arc<dyn JobStore> = if dynamo {
        env.store.clone()
    } else {
        Arc::new(MemoryJobStore::new())
    };
    let w = Arc::new(Worker::new(
        WorkerConfig::new(QueueName::Notifications, urls),
        &env.clients,
        store,
        handler,
    ));
    let rounds = support::process_in_rounds(&env, w, jobs, round, pollers).await;
    assert_eq!(
        done.lock().unwrap_or_else(|p| p.into_inner()).len(),
        n,
        "every job handled"
    );
    let send = rounds.send.as_secs_f64();
    let process = rounds.process.as_secs_f64();
    // "retried" counts moto's duplicate deliveries caught as in progress (see the 1000-job test).
    let (batches, received, deleted, failed) = rounds.stats;
    rows.push((
        format!(
            "e2e send {n} jobs in rounds of {round} (tracking BatchWriteItem + SendMessageBatch)"
        ),
        format!("{send:.2} s"),
        format!("{:.0} jobs/s", n as f64 / send),
    ));
    rows.push((
        format!("e2e receive+handle+delete {n} jobs, {pollers} pollers, {label}"),
        format!(
            "{process:.2} s ({batches} batches, {received} recv, {deleted} del, {failed} retried)"
        ),
        format!("{:.0} jobs/s", n as f64 / process),
    ));
    rows.push((
        format!("e2e total (send + process), {label}"),
        format!("{:.2} s", send + process),
        format!("{:.0} jobs/s", n as f64 / (send + process)),
    ));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    rt.block_on(async {
        overhead(&mut rows).await;
        end_to_end(&mut rows, false).await;
        end_to_end(&mut rows, true).await;
    });
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(10);
    println!("\n{:<w0$}  {:<w1$}  rate", "benchmark", "time");
    println!("{}", "-".repeat(w0 + w1 + 16));
    for (a, b, c) in rows {
        println!("{a:<w0$}  {b:<w1$}  {c}");
    }
}
