//! The correlation id and job id are fields of the span around a handler, so every log line a
//! handler writes carries them. Alone in its test binary: a thread-local subscriber in a
//! process where other tests log concurrently would race with tracing's callsite cache.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::config::Credentials;
use jobs::runtime::Outcome;
use jobs::{
    Clients, Job, JobContext, JobType, MemoryJobStore, QueueName, QueueUrls, Worker, WorkerConfig,
};
use serde_json::json;

/// Captures formatted log output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn correlation_id_is_a_field_of_the_handlers_span() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = Arc::new(Worker::new(
        WorkerConfig::new(
            QueueName::Reports,
            QueueUrls {
                url: "http://127.0.0.1:9/q".into(),
                dlq_url: "http://127.0.0.1:9/q-dlq".into(),
            },
        ),
        &Clients::new(
            &aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("k", "s", None, None, "tests"))
                .endpoint_url("http://127.0.0.1:9")
                .load()
                .await,
        ),
        Arc::new(MemoryJobStore::new()),
        |_job: Job, _ctx: JobContext| async {
            tracing::info!("rendering report");
            Ok(None)
        },
    ));
    let job = Job::new(JobType::GenerateReport, json!({})).with_correlation_id("req-abc-123");
    let mut msg = SqsMessage::default();
    msg.message_id = Some("m".into());
    msg.body = Some(job.to_json().unwrap());
    let out = w.process(msg, None).await;
    assert_eq!(out, Outcome::Succeeded);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("rendering report"))
        .expect("handler log line");
    assert!(line.contains("correlation_id=req-abc-123"), "{line}");
    assert!(line.contains(&format!("job_id={}", job.id)), "{line}");
    assert!(line.contains("job_type=generate-report"), "{line}");
}
