//! The admin router: the JSON API (admin role only) and the dashboard page (no auth: the page
//! holds no data; it calls the API with the bearer token the admin gives it).

use api_common::{ApiError, ApiResult, parse_json};
use auth::Caller;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::{AdminState, dashboard, performance, queues};

/// The caller, known to hold the admin role. 401 without a caller, 403 for other roles.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        // The role comes from the verified token, not the users table: the admin API must keep
        // answering while the database is down, which is when it is needed most.
        if !caller.role.is_admin() {
            return Err(ApiError::Forbidden("the admin role is required".into()));
        }
        Ok(AdminCaller(caller))
    }
}

/// The admin JSON API and the dashboard together.
pub fn router(state: AdminState) -> Router {
    api_router(state).merge(dashboard_router())
}

/// `GET /api/admin/queues`, `POST /api/admin/queues/{name}/redrive`,
/// `GET /api/admin/performance` (admin only; put behind the authorizer).
pub fn api_router(state: AdminState) -> Router {
    Router::new()
        .route("/api/admin/queues", get(list_queues))
        .route("/api/admin/queues/{name}/redrive", post(redrive))
        .route("/api/admin/performance", get(performance))
        .with_state(state)
}

/// `GET /admin/dashboard` and `GET /admin/dashboard.js` (no auth; mount outside the authorizer).
pub fn dashboard_router() -> Router {
    Router::new()
        .route("/admin/dashboard", get(dashboard::page))
        .route("/admin/dashboard.js", get(dashboard::script))
}

/// JSON that no cache may keep: figures are live, and they are admin-only.
fn no_store<T: Serialize>(value: T) -> Response {
    let mut resp = Json(value).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn list_queues(
    State(state): State<AdminState>,
    AdminCaller(_): AdminCaller,
) -> ApiResult<Response> {
    Ok(no_store(queues::queues_report(&state).await?))
}

async fn performance(State(state): State<AdminState>, AdminCaller(_): AdminCaller) -> Response {
    no_store(performance::performance(&state).await)
}

/// Body of a redrive; the whole body is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    max_messages: Option<usize>,
}

fn redrive_limit(state: &AdminState, headers: &HeaderMap, body: &Bytes) -> ApiResult<usize> {
    let config = state.config();
    let parsed: RedriveBody = if body.iter().all(u8::is_ascii_whitespace) {
        RedriveBody::default()
    } else {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::bad_request(
                "expected no body, or a JSON body with Content-Type: application/json",
            ));
        }
        parse_json(body)?
    };
    match parsed.max_messages {
        None => Ok(config.default_redrive),
        Some(n) if (1..=config.max_redrive).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "max_messages",
            format!("must be between 1 and {}", config.max_redrive),
        )),
    }
}

async fn redrive(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let max = redrive_limit(&state, &headers, &body)?;
    tracing::info!(queue = %name, max, admin = %caller.subject, "redrive requested");
    Ok(no_store(queues::redrive(&state, &name, max).await?))
}
