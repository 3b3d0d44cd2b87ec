//! The job queues, tables and workers of the template, locally: the five queues with their DLQs
//! and the two DynamoDB tables created in moto, and every worker function's handler run by the
//! jobs crate's emulation of Lambda's SQS event source mapping (batch size, visibility timeout,
//! delete on success, partial batch failures left for redelivery, redrive to the DLQ).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jobs::local_source::{EventSourceMapping, LocalEventSource, QueueSetup, create_queues};
use jobs::{
    Clients, DynamoJobStore, JobTracking, JobsConfig, Producer, QueueDirectory, QueueName, Worker,
    WorkerConfig,
};
use response_pipeline::Invalidator;
use tokio_util::sync::CancellationToken;

use crate::{LocalError, Services};

/// Job clients, settings, queue URLs and the producer of the local system.
#[derive(Clone)]
pub struct LocalJobs {
    /// SQS, DynamoDB and S3 clients.
    pub clients: Clients,
    /// Tables and limits.
    pub config: JobsConfig,
    /// The five queues and their DLQs.
    pub directory: QueueDirectory,
    /// Sends jobs and records them as queued.
    pub producer: Producer,
    /// Job status records.
    pub tracking: JobTracking,
}

impl std::fmt::Debug for LocalJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJobs")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

fn jobs_err(e: jobs::Error) -> LocalError {
    LocalError::Aws(e.to_string())
}

/// Creates (idempotently) the queues `<prefix><queue>` with DLQs and the tables
/// `<prefix>jobs` and `<prefix>job-idempotency`. `visibility_timeout` overrides the catalogue's
/// (tests use a short one so an abandoned message comes back quickly).
pub async fn setup(
    aws: &aws_config::SdkConfig,
    prefix: &str,
    visibility_timeout: Option<u32>,
) -> Result<LocalJobs, LocalError> {
    let clients = Clients::new(aws);
    let directory = create_queues(
        &clients.sqs,
        prefix,
        &QueueSetup {
            visibility_timeout_secs: visibility_timeout,
        },
    )
    .await
    .map_err(jobs_err)?;
    let tracking_table = format!("{prefix}jobs");
    let idempotency_table = format!("{prefix}job-idempotency");
    jobs::tracking::create_tracking_table(&clients.dynamodb, &tracking_table)
        .await
        .map_err(jobs_err)?;
    jobs::idempotency::create_idempotency_table(&clients.dynamodb, &idempotency_table)
        .await
        .map_err(jobs_err)?;
    let env: HashMap<&str, String> = HashMap::from([
        ("JOBS_TABLE", tracking_table),
        ("JOBS_IDEMPOTENCY_TABLE", idempotency_table),
    ]);
    let config = JobsConfig::from_lookup(|k| {
        env.get(k)
            .cloned()
            .or_else(|| std::env::var(k).ok().filter(|_| k.starts_with("JOBS_")))
    })
    .map_err(jobs_err)?;
    let tracking = JobTracking::new(
        clients.dynamodb.clone(),
        config.tracking_table.clone(),
        config.tracking_ttl,
    );
    let producer = Producer::new(&clients, directory.clone(), tracking.clone());
    Ok(LocalJobs {
        clients,
        config,
        directory,
        producer,
        tracking,
    })
}

/// How the local event source polls.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// Long-poll wait per ReceiveMessage (Lambda uses 20 s; tests use less so shutdown is quick).
    pub wait_time: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            wait_time: Duration::from_secs(20),
        }
    }
}

/// The five workers, built as their Lambda `main.rs` builds them, over the local clients.
pub fn workers(services: &Services) -> Result<Vec<Arc<Worker>>, LocalError> {
    let lj = &services.jobs;
    let invalidator = Invalidator::new(services.cache.clone());
    let notifier = notifications::Notifier::new(lj.producer.clone());
    let store = Arc::new(DynamoJobStore::from_config(&lj.clients, &lj.config));
    let config = |q: QueueName| -> Result<WorkerConfig, LocalError> {
        Ok(
            WorkerConfig::new(q, lj.directory.get(q).map_err(jobs_err)?.clone())
                .with_concurrency(lj.config.worker_concurrency),
        )
    };
    let processing = processing::ProcessingHandler::new(
        services.pool.clone(),
        services.store.clone(),
        invalidator.clone(),
        files::FileJobs::new(lj.producer.clone()),
        notifier.clone(),
        processing::ProcessingConfig::from_env().map_err(LocalError::Config)?,
    );
    let indexing = search::IndexingHandler::new(services.pool.clone(), invalidator);
    let notifications = services.notifications.clone();
    let reports = reports::ReportsHandler::new(
        services.pool.clone(),
        services.store.clone(),
        Some(notifier),
        reports::ReportsConfig::from_lookup(|k| match k {
            "REPORTS_BUCKET" | "UPLOADS_BUCKET" => Some(services.store.bucket().to_owned()),
            _ => std::env::var(k).ok(),
        })
        .map_err(|e| LocalError::Config(e.to_string()))?,
    );
    let out = vec![
        Worker::new(
            config(QueueName::FileProcessing)?,
            &lj.clients,
            store.clone(),
            processing,
        ),
        Worker::new(
            config(QueueName::AiTraining)?,
            &lj.clients,
            store.clone(),
            jobs::not_implemented("model training is not available yet"),
        ),
        Worker::new(
            config(QueueName::SearchIndexing)?,
            &lj.clients,
            store.clone(),
            indexing,
        ),
        Worker::new(
            config(QueueName::Notifications)?,
            &lj.clients,
            store.clone(),
            notifications,
        ),
        Worker::new(config(QueueName::Reports)?, &lj.clients, store, reports),
    ];
    Ok(out
        .into_iter()
        .map(|w| Arc::new(w.with_monitor(services.monitor.clone())))
        .collect())
}

/// Starts polling every queue into its worker; stops when `shutdown` is cancelled.
pub fn spawn_workers(
    services: &Services,
    poll: PollSettings,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, LocalError> {
    let mut source = LocalEventSource::new(services.jobs.clients.sqs.clone());
    for worker in workers(services)? {
        source = source
            .with_mapping(EventSourceMapping::for_worker(worker).with_wait_time(poll.wait_time));
    }
    Ok(tokio::spawn(async move {
        if let Err(e) = source.run(shutdown).await {
            tracing::error!(error = %e, "the local event source stopped");
        }
    }))
}
