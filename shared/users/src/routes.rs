//! The users-api router: GET /api/users/me, GET|PUT /api/users/{id}, GET /api/users.

use api_common::{
    ApiError, ApiJson, ApiQuery, ApiResult, Page, decode_cursor, into_page, page_limit, parse_id,
};
use auth::Role;
use axum::extract::{FromRef, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use response_pipeline::{Invalidator, tags};

use crate::repo::{self, ListFilter, UpdateOutcome, UserChanges};
use crate::{CurrentUser, User};

/// What the users routes need.
#[derive(Debug, Clone, FromRef)]
pub struct UsersState {
    /// The process-wide pool.
    pub pool: PgPool,
    /// Removes cached responses a change makes stale.
    pub invalidator: Invalidator,
}

/// The users-api router, ready for `lambda_http::run` or a local server.
pub fn router(state: UsersState) -> Router {
    Router::new()
        // A static segment: axum matches it before the `{id}` capture.
        .route("/api/users/me", get(me))
        .route("/api/users/{id}", get(get_user).put(update_user))
        .route("/api/users", get(list_users))
        .with_state(state)
}

async fn me(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}

async fn get_user(
    State(state): State<UsersState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let id = parse_id(&id, "user")?;
    if id != me.id && !me.role().is_admin() {
        return Err(ApiError::Forbidden(
            "only admins can read other users".into(),
        ));
    }
    let user = repo::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id}")))?;
    Ok(Json(user))
}

/// Body of PUT /api/users/{id}. Unknown fields are refused, so a typo is a 400, not a no-op.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    username: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    preferences: Option<serde_json::Value>,
    role: Option<Role>,
    is_active: Option<bool>,
}

/// Distinguishes an absent field (leave as is) from `null` (clear it).
fn double_option<'de, D>(de: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(de).map(Some)
}

const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

impl UpdateUser {
    fn validate(self) -> Result<UserChanges, ApiError> {
        if let Some(name) = &self.username {
            let ok_len = (3..=64).contains(&name.chars().count());
            let ok_chars = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok_len || !ok_chars {
                return Err(ApiError::invalid(
                    "username",
                    "3 to 64 characters: letters, digits, '.', '_' or '-'",
                ));
            }
        }
        if let Some(Some(name)) = &self.display_name
            && (name.trim().is_empty() || name.chars().count() > 128)
        {
            return Err(ApiError::invalid(
                "display_name",
                "1 to 128 characters, or null",
            ));
        }
        if let Some(prefs) = &self.preferences {
            if !prefs.is_object() {
                return Err(ApiError::invalid("preferences", "must be a JSON object"));
            }
            if prefs.to_string().len() > MAX_PREFERENCES_BYTES {
                return Err(ApiError::invalid(
                    "preferences",
                    "must be at most 16 KiB of JSON",
                ));
            }
        }
        Ok(UserChanges {
            username: self.username,
            display_name: self.display_name,
            preferences: self.preferences,
            role: self.role,
            is_active: self.is_active,
        })
    }
}

async fn update_user(
    State(state): State<UsersState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    let id = parse_id(&id, "user")?;
    let admin = me.role().is_admin();
    if id != me.id && !admin {
        return Err(ApiError::Forbidden(
            "only admins can change other users".into(),
        ));
    }
    if !admin {
        if body.role.is_some() {
            return Err(ApiError::Forbidden(
                "only admins can change roles (field role)".into(),
            ));
        }
        if body.is_active.is_some() {
            return Err(ApiError::Forbidden(
                "only admins can activate or deactivate users (field is_active)".into(),
            ));
        }
    }
    let changes = body.validate()?;
    match repo::update(&state.pool, me.id, id, &changes).await? {
        UpdateOutcome::Updated(user) => {
            state
                .invalidator
                .invalidate(&tags::for_user_change(
                    &user.id.to_string(),
                    &user.cognito_sub,
                ))
                .await;
            Ok(Json(user))
        }
        UpdateOutcome::NotFound => Err(ApiError::NotFound(format!("user {id}"))),
        UpdateOutcome::LastAdmin => Err(ApiError::Conflict(
            "this would leave no active admin; promote another admin first".into(),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    role: Option<Role>,
    active: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_users(
    State(state): State<UsersState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<User>>> {
    if !me.role().is_admin() {
        return Err(ApiError::Forbidden("only admins can list users".into()));
    }
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_cursor::<(DateTime<Utc>, Uuid)>)
        .transpose()?;
    let filter = ListFilter {
        role: query.role,
        active: query.active,
        after,
    };
    let rows = repo::list(&state.pool, &filter, limit + 1).await?;
    Ok(Json(into_page(rows, limit, |u| (u.created_at, u.id))))
}
