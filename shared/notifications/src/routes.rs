//! The notifications API: the caller's list, mark one read, mark all read.

use api_common::{
    ApiError, ApiQuery, ApiResult, decode_cursor, encode_cursor, page_limit, parse_id,
};
use axum::extract::{FromRef, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use response_pipeline::Invalidator;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use users::CurrentUser;

use crate::repo::{self, ListCursor, Notification};

/// What the notifications routes need.
#[derive(Debug, Clone, FromRef)]
pub struct NotificationsState {
    /// Database pool.
    pub pool: PgPool,
    /// Needed by the `CurrentUser` extractor (user provisioning invalidates the users list).
    pub invalidator: Invalidator,
}

/// The notifications router: `GET /api/notifications`, `POST /api/notifications/{id}/read`,
/// `POST /api/notifications/read-all`. Responses are per caller and change without a request
/// (the worker inserts rows), so they must not be kept in a shared response cache.
pub fn router(state: NotificationsState) -> Router {
    Router::new()
        .route("/api/notifications", get(list))
        .route("/api/notifications/read-all", post(read_all))
        .route("/api/notifications/{id}/read", post(read_one))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    unread: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One page of the caller's notifications, with their unread total (for a badge).
#[derive(Debug, Serialize)]
struct NotificationPage {
    items: Vec<Notification>,
    next_cursor: Option<String>,
    unread_count: i64,
}

async fn list(
    State(state): State<NotificationsState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<NotificationPage>> {
    let limit = page_limit(params.limit)?;
    let cursor = params
        .cursor
        .as_deref()
        .map(decode_cursor::<ListCursor>)
        .transpose()?;
    let unread = params.unread.unwrap_or(false);
    let mut rows = repo::list(&state.pool, me.id, unread, cursor, limit + 1).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|n| encode_cursor(&ListCursor::from(n)))
    } else {
        None
    };
    let unread_count = repo::unread_count(&state.pool, me.id).await?;
    Ok(Json(NotificationPage {
        items: rows,
        next_cursor,
        unread_count,
    }))
}

async fn read_one(
    State(state): State<NotificationsState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Notification>> {
    let id = parse_id(&id, "notification")?;
    // Someone else's notification answers exactly like a missing one: ids are not disclosed.
    repo::mark_read(&state.pool, me.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("notification {id}")))
}

#[derive(Debug, Serialize)]
struct ReadAll {
    updated: u64,
}

async fn read_all(
    State(state): State<NotificationsState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<ReadAll>> {
    let updated = repo::mark_all_read(&state.pool, me.id).await?;
    Ok(Json(ReadAll { updated }))
}
