//! `POST /api/reports`: validates the request and enqueues a `generate-report` job.

use api_common::{ApiError, ApiJson, ApiResult, REQUEST_ID_HEADER};
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use jobs::{Job, JobType, Producer};
use response_pipeline::Invalidator;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use users::CurrentUser;
use uuid::Uuid;

use crate::payload::{DateRange, GenerateReport, ReportFormat, ReportKind};

/// What the reports route needs.
#[derive(Debug, Clone, FromRef)]
pub struct ReportsState {
    /// Database pool (for the caller's row).
    pub pool: PgPool,
    /// Needed by the `CurrentUser` extractor.
    pub invalidator: Invalidator,
    /// Sends the job to the reports queue.
    pub producer: Producer,
}

/// The reports router: `POST /api/reports`.
pub fn router(state: ReportsState) -> Router {
    Router::new()
        .route("/api/reports", post(request_report))
        .with_state(state)
}

/// Body of `POST /api/reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportRequest {
    kind: ReportKind,
    #[serde(default)]
    format: ReportFormat,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// Answer of an accepted request.
#[derive(Debug, Serialize)]
struct Accepted {
    job_id: Uuid,
    status: &'static str,
    kind: ReportKind,
    format: ReportFormat,
    range: DateRange,
    status_url: String,
}

async fn request_report(
    State(state): State<ReportsState>,
    CurrentUser(me): CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReportRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let range = DateRange::resolve(body.from, body.to, Utc::now().date_naive())?;
    if body.kind == ReportKind::Audit && !me.role().is_admin() {
        return Err(ApiError::Forbidden("audit reports are for admins".into()));
    }
    let payload = GenerateReport {
        kind: body.kind,
        format: body.format,
        range,
        requested_by: me.id,
    };
    let value = serde_json::to_value(&payload)
        .map_err(|e| ApiError::Internal(format!("report payload: {e}")))?;
    let mut job = Job::new(JobType::GenerateReport, value).with_user(me.id);
    if let Some(request_id) = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()) {
        job = job.with_correlation_id(request_id);
    }
    let sent = state
        .producer
        .send(job)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            job_id: sent.job_id,
            status: "queued",
            kind: payload.kind,
            format: payload.format,
            range,
            status_url: format!("/api/jobs/{}", sent.job_id),
        }),
    ))
}
