//! Lambda function serving GET /api/admin/queues, POST /api/admin/queues/{name}/redrive,
//! GET /api/admin/performance and the dashboard page. Wiring only: the routes live in
//! `shared/admin`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let dbs = bootstrap::databases(&aws).await?;
    let state = admin::AdminState::from_env(&aws, monitor.clone(), dbs).await?;
    let app = response_pipeline::apply_monitored(admin::router(state), cache, Some(monitor));
    lambda_http::run(app).await
}
