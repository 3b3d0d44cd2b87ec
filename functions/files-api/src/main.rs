//! Lambda function serving the files and search routes. Wiring only: the routes live in
//! `shared/files` and `shared/search`.

use files::{FileJobs, FilesConfig, FilesState};
use response_pipeline::Invalidator;
use storage::ObjectStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let dbs = bootstrap::databases(&aws).await?;
    let pool = dbs.writer().clone();
    let (_, _, producer) = bootstrap::jobs(&aws).await?;
    let invalidator = Invalidator::new(cache.clone());
    let state = FilesState {
        pool: pool.clone(),
        reader: dbs.reader().clone(),
        store: ObjectStore::new(
            storage::s3_client(&aws),
            bootstrap::required_env("UPLOADS_BUCKET")?,
        ),
        jobs: FileJobs::new(producer),
        config: FilesConfig::default(),
        invalidator: invalidator.clone(),
    };
    let router =
        files::router(state).merge(search::router(search::SearchState { pool, invalidator }));
    let app = response_pipeline::apply_monitored(router, cache, Some(monitor));
    lambda_http::run(app).await
}
