//! Lambda function on the notifications queue. Wiring only: delivery lives in
//! `shared/notifications`, the batch handling in `shared/jobs`.

use std::sync::Arc;

use jobs::{QueueName, Worker};
use notifications::NotificationsHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache)?;
    let handler = NotificationsHandler::from_env(pool, &aws).await?;
    let worker = Worker::from_env(QueueName::Notifications, &aws, handler)
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
