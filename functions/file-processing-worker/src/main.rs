//! Lambda function on the file-processing queue. Wiring only: the work lives in
//! `shared/processing`, the batch handling in `shared/jobs`.

use std::sync::Arc;

use jobs::{QueueName, Worker};
use processing::{ProcessingConfig, ProcessingHandler};
use response_pipeline::Invalidator;
use storage::ObjectStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let (_, _, producer) = bootstrap::jobs(&aws).await?;
    let handler = ProcessingHandler::new(
        pool,
        ObjectStore::new(
            storage::s3_client(&aws),
            bootstrap::required_env("UPLOADS_BUCKET")?,
        ),
        Invalidator::new(cache),
        files::FileJobs::new(producer.clone()),
        notifications::Notifier::new(producer),
        ProcessingConfig::from_env()?,
    );
    let worker = Worker::from_env(QueueName::FileProcessing, &aws, handler)
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
