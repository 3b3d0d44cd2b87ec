//! Lambda function on the reports queue. Wiring only: report generation lives in
//! `shared/reports`, the batch handling in `shared/jobs`.

use std::sync::Arc;

use jobs::{QueueName, Worker};
use reports::ReportsHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache)?;
    let (_, _, producer) = bootstrap::jobs(&aws).await?;
    let notifier = notifications::Notifier::new(producer);
    let handler = ReportsHandler::from_env(pool, &aws, Some(notifier))?;
    let worker = Worker::from_env(QueueName::Reports, &aws, handler)
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
