//! Lambda function on the ai-training queue. Model training is not built yet: every job fails
//! permanently with that reason, so it lands in the DLQ (visible in GET /api/admin/queues and
//! redrivable once training exists) instead of being reported as a success.

use std::sync::Arc;

use jobs::{Job, JobContext, JobError, JobResult, QueueName, Worker};

async fn train(job: Job, _ctx: JobContext) -> JobResult {
    Err(JobError::permanent(format!(
        "not implemented: model training is not available yet (job {} kept in the DLQ for redrive)",
        job.id
    )))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache)?;
    let worker = Worker::from_env(QueueName::AiTraining, &aws, train)
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
