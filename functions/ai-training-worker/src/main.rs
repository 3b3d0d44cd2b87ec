//! Lambda function on the ai-training queue. Model training is not built yet: every job fails
//! permanently with that reason, so it lands in the DLQ (visible in GET /api/admin/queues and
//! redrivable once training exists) instead of being reported as a success.

use std::sync::Arc;

use jobs::{QueueName, Worker};

/// What the DLQ reason says until training exists.
const TRAINING: &str = "model training is not available yet";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache)?;
    let worker = Worker::from_env(QueueName::AiTraining, &aws, jobs::not_implemented(TRAINING))
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
