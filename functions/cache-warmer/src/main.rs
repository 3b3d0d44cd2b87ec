//! Lambda function on an EventBridge schedule: refreshes the hot entries of the response cache
//! (CACHE_WARM_PATHS) through the files API's own router and layers. Wiring only: the warming
//! logic lives in `response_pipeline::warm`.

use std::collections::HashMap;

use files::{FileJobs, FilesConfig, FilesState};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use response_pipeline::{Invalidator, warm};
use serde_json::Value;
use storage::ObjectStore;

/// The hot entries when CACHE_WARM_PATHS is not set: the first page of the default listing and
/// of the listing by name.
const DEFAULT_PATHS: &str = "/api/files,/api/files?sort=name";

#[tokio::main]
async fn main() -> Result<(), Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws)
        .await?
        .ok_or("the cache warmer needs Redis: set REDIS_HOST, REDIS_URL or an ElastiCache id")?;
    let paths = warm::parse_paths(
        &std::env::var("CACHE_WARM_PATHS").unwrap_or_else(|_| DEFAULT_PATHS.to_owned()),
    );
    warm::check_paths(&paths)?;
    let dbs = bootstrap::databases(&aws).await?;
    let state = FilesState {
        pool: dbs.writer().clone(),
        reader: dbs.reader().clone(),
        store: ObjectStore::new(
            storage::s3_client(&aws),
            bootstrap::required_env("UPLOADS_BUCKET")?,
        ),
        // Warming only reads; the producer is there because the files state carries one.
        jobs: FileJobs::new(bootstrap::jobs(&aws).await?.2),
        config: FilesConfig::default(),
        invalidator: Invalidator::new(Some(cache.clone())),
    };
    let router = response_pipeline::apply(files::router(state), Some(cache));
    // The warmer reads catalogue data as a service account with the least privilege.
    let claims: HashMap<String, String> = [
        ("sub", "service:cache-warmer"),
        ("email", "cache-warmer@service.invalid"),
        ("cognito:username", "cache-warmer"),
        ("custom:role", "viewer"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let context = auth::request_context(claims, "GET", "/");
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let (router, paths, context) = (&router, &paths, &context);
        async move {
            let warmed = warm::warm(router, paths, context).await;
            Ok::<_, Error>(serde_json::json!({ "warmed": warmed }))
        }
    }))
    .await
}
