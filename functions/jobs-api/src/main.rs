//! Lambda function serving GET /api/jobs[/{id}], the notifications routes and POST /api/reports.
//! Wiring only: the routes live in `shared/job-status`, `shared/notifications`, `shared/reports`.

use response_pipeline::Invalidator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let (clients, config, producer) = bootstrap::jobs(&aws).await?;
    let invalidator = Invalidator::new(cache.clone());
    let tracking = jobs::JobTracking::new(
        clients.dynamodb.clone(),
        config.tracking_table.clone(),
        config.tracking_ttl,
    );
    let router = job_status::router(job_status::JobStatusState {
        tracking,
        pool: pool.clone(),
        invalidator: invalidator.clone(),
    })
    .merge(notifications::router(notifications::NotificationsState {
        pool: pool.clone(),
        invalidator: invalidator.clone(),
    }))
    .merge(reports::router(reports::ReportsState {
        pool,
        invalidator,
        producer,
    }));
    let app = response_pipeline::apply_monitored(router, cache, Some(monitor));
    lambda_http::run(app).await
}
