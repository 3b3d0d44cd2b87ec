//! Lambda function serving the files routes. Wiring only: the routes live in `shared/files`.

use files::{FilesConfig, FilesState, ProcessingQueue};
use response_pipeline::Invalidator;
use storage::ObjectStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws).await?;
    let state = FilesState {
        pool: bootstrap::database(&aws).await?,
        store: ObjectStore::new(
            storage::s3_client(&aws),
            bootstrap::required_env("UPLOADS_BUCKET")?,
        ),
        queue: ProcessingQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            bootstrap::required_env("FILE_PROCESSING_QUEUE_URL")?,
        ),
        config: FilesConfig::default(),
        invalidator: Invalidator::new(cache.clone()),
    };
    let app = response_pipeline::apply(files::router(state), cache);
    lambda_http::run(app).await
}
