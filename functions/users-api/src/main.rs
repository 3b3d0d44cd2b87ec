//! Lambda function serving the users routes. Wiring only: the routes live in `shared/users`.

use response_pipeline::Invalidator;
use users::UsersState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let cache = bootstrap::cache(&aws).await?;
    let monitor = bootstrap::monitor(cache.clone())?;
    let state = UsersState {
        pool,
        invalidator: Invalidator::new(cache.clone()),
    };
    let app = response_pipeline::apply_monitored(users::router(state), cache, Some(monitor));
    lambda_http::run(app).await
}
