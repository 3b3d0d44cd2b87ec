//! Lambda function on the search-indexing queue. Wiring only: the work lives in
//! `shared/search` (indexing), the batch handling in `shared/jobs`.

use std::sync::Arc;

use jobs::{QueueName, Worker};
use response_pipeline::Invalidator;
use search::IndexingHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let handler = IndexingHandler::new(pool, Invalidator::new(cache));
    let worker = Worker::from_env(QueueName::SearchIndexing, &aws, handler)
        .await?
        .with_monitor(monitor);
    jobs::run_lambda(Arc::new(worker)).await
}
