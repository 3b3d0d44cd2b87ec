//! Background jobs on AWS SQS for the CAD AI Platform (the guide's `JobQueueService`).
//!
//! - [`envelope`]: the JSON job envelope ([`Job`], [`JobType`]).
//! - [`catalogue`]: the five queues with their retry policies ([`CATALOGUE`]) and where they
//!   live ([`QueueDirectory`]).
//! - [`producer`]: SendMessageBatch with per-entry retries, S3 for oversize payloads.
//! - [`runtime`]: a per-job handler becomes a Lambda SQS batch handler with partial batch
//!   failures, backoff via visibility, DLQ for permanent failures.
//! - [`idempotency`], [`tracking`], [`store`]: DynamoDB tables for exactly-once effects and
//!   job status/progress queries.
//! - [`local_source`]: Lambda's SQS event source mapping emulated locally; queue creation.
//! - [`admin`]: queue statistics and DLQ redrive.

pub mod admin;
pub mod catalogue;
pub mod config;
mod ddb;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod local_source;
pub mod payload;
pub mod producer;
pub mod runtime;
pub mod store;
pub mod tracking;

pub use catalogue::{
    Backoff, CATALOGUE, QueueDirectory, QueueName, QueueSpec, QueueUrls, RetryPolicy,
};
pub use config::{Clients, JobsConfig};
pub use envelope::{Job, JobType, PayloadRef};
pub use error::{Error, JobError, Result};
pub use producer::{Producer, SendReport};
pub use runtime::{
    JobContext, JobHandler, JobResult, Worker, WorkerConfig, not_implemented, run_lambda,
};
pub use store::{DynamoJobStore, JobStore, MemoryJobStore};
pub use tracking::{JobRecord, JobStatus, JobTracking};
