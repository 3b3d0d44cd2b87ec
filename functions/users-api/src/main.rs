//! Lambda function serving the users routes. Wiring only: the routes live in `shared/users`.

use users::UsersState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let app = api_common::layers::apply(users::router(UsersState { pool }));
    lambda_http::run(app).await
}
