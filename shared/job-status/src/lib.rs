//! The jobs API: `GET /api/jobs` (the caller's jobs, newest first, filtered by status and type)
//! and `GET /api/jobs/{id}` (one job with its progress, for its owner or an admin), read from job
//! tracking in DynamoDB.

use api_common::{ApiError, ApiQuery, ApiResult, parse_id};
use axum::extract::{FromRef, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use jobs::tracking::{JobPage, ListQuery};
use jobs::{JobRecord, JobStatus, JobTracking, JobType};
use response_pipeline::Invalidator;
use serde::Deserialize;
use sqlx::PgPool;
use users::CurrentUser;

/// What the jobs routes need.
#[derive(Debug, Clone, FromRef)]
pub struct JobStatusState {
    /// Job tracking table.
    pub tracking: JobTracking,
    /// Database pool (the caller extractor provisions users).
    pub pool: PgPool,
    /// Needed by the caller extractor.
    pub invalidator: Invalidator,
}

/// The jobs router. Job status changes without any request, so these responses are `no-store`
/// and never kept in the response cache (see the route policy table).
pub fn router(state: JobStatusState) -> Router {
    Router::new()
        .route("/api/jobs", get(list))
        .route("/api/jobs/{id}", get(one))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<JobStatus>,
    #[serde(rename = "type")]
    job_type: Option<JobType>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn unavailable(e: jobs::Error) -> ApiError {
    tracing::error!(error = %e, "job tracking failed");
    ApiError::Unavailable("job tracking is unavailable; try again shortly".into())
}

async fn list(
    State(state): State<JobStatusState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<JobPage>> {
    let limit = api_common::page_limit(params.limit)? as usize;
    let query = ListQuery {
        status: params.status,
        job_type: params.job_type,
        limit,
        cursor: params.cursor,
    };
    let page = state
        .tracking
        .list_for_user(me.id, &query)
        .await
        .map_err(|e| match e {
            jobs::Error::InvalidCursor => {
                ApiError::invalid("cursor", "is not a cursor this API issued")
            }
            e => unavailable(e),
        })?;
    Ok(Json(page))
}

async fn one(
    State(state): State<JobStatusState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRecord>> {
    let id = parse_id(&id, "job")?;
    let record = state
        .tracking
        .get(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    if record.user_id != Some(me.id) && !me.role().is_admin() {
        return Err(ApiError::Forbidden(
            "only the job's owner or an admin can see it".into(),
        ));
    }
    Ok(Json(record))
}
