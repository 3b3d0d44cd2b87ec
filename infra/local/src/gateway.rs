//! API Gateway's part, locally: the JWT authorizer (401 before any handler runs, exactly like the
//! gateway) and the request context it hands to Lambda, plus an unauthenticated health check.

use std::sync::Arc;

use auth::local::{LocalAuthority, bearer_token};
use auth::request_context;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// Puts the authorizer in front of `api` and adds GET /health.
pub fn wrap(api: Router, authority: Arc<LocalAuthority>, pool: db::PgPool) -> Router {
    let protected = api.layer(middleware::from_fn_with_state(authority, authorize));
    Router::new()
        .route("/health", get(health).with_state(pool))
        .merge(protected)
}

/// What API Gateway answers when its JWT authorizer refuses a request.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({"message": "Unauthorized"})),
    )
        .into_response()
}

async fn authorize(
    State(authority): State<Arc<LocalAuthority>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(token) = token else {
        return unauthorized();
    };
    match authority.verify(token) {
        Ok(claims) => {
            let ctx = request_context(claims, req.method().as_str(), req.uri().path());
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(err) => {
            tracing::debug!(error = %err, "token refused");
            unauthorized()
        }
    }
}

async fn health(State(pool): State<db::PgPool>) -> Response {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&pool)
        .await
    {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "degraded", "database": e.to_string()})),
        )
            .into_response(),
    }
}
