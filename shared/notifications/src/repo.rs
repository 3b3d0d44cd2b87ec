//! Queries on `notifications` (and the recipient's email on `users`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::NotificationsError;

/// One in-app notification.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Notification {
    /// Id (the id of the job that created it, which makes the insert idempotent).
    pub id: Uuid,
    /// Recipient.
    pub user_id: Uuid,
    /// Machine-readable kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Structured details.
    pub data: Value,
    /// When the recipient marked it read.
    pub read_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A notification to store.
#[derive(Debug, Clone, Copy)]
pub struct NewNotification<'a> {
    /// Id to use (the job id).
    pub id: Uuid,
    /// Recipient.
    pub user_id: Uuid,
    /// Kind.
    pub kind: &'a str,
    /// Title.
    pub title: &'a str,
    /// Text.
    pub body: &'a str,
    /// Details (a JSON object).
    pub data: &'a Value,
}

/// Keyset position of a listing: the last row's (created_at, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    /// `created_at` of the last row seen.
    pub created_at: DateTime<Utc>,
    /// `id` of the last row seen (tie-breaker).
    pub id: Uuid,
}

impl From<&Notification> for ListCursor {
    fn from(n: &Notification) -> Self {
        ListCursor {
            created_at: n.created_at,
            id: n.id,
        }
    }
}

/// Inserts a notification; `false` when a row with this id already exists (a retried job).
pub async fn insert(pool: &PgPool, n: &NewNotification<'_>) -> Result<bool, NotificationsError> {
    let done = sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, body, data) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(n.id)
    .bind(n.user_id)
    .bind(n.kind)
    .bind(n.title)
    .bind(n.body)
    .bind(n.data)
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            NotificationsError::UnknownRecipient(n.user_id)
        }
        _ => NotificationsError::Database(e),
    })?;
    Ok(done.rows_affected() == 1)
}

/// A user's notifications, newest first, after `cursor`; `limit` rows at most.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    unread_only: bool,
    cursor: Option<ListCursor>,
    limit: u32,
) -> Result<Vec<Notification>, NotificationsError> {
    // One statement for every filter combination; the (user_id, created_at DESC) index serves it.
    Ok(sqlx::query_as::<_, Notification>(
        "SELECT id, user_id, kind, title, body, data, read_at, created_at FROM notifications \
         WHERE user_id = $1 \
           AND (NOT $2 OR read_at IS NULL) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(user_id)
    .bind(unread_only)
    .bind(cursor.map(|c| c.created_at))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// Marks one of the user's notifications read (keeping the first read time); `None` when it
/// does not exist or belongs to someone else.
pub async fn mark_read(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Notification>, NotificationsError> {
    Ok(sqlx::query_as::<_, Notification>(
        "UPDATE notifications SET read_at = COALESCE(read_at, now()) \
         WHERE id = $1 AND user_id = $2 \
         RETURNING id, user_id, kind, title, body, data, read_at, created_at",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Marks all the user's unread notifications read; returns how many changed.
pub async fn mark_all_read(pool: &PgPool, user_id: Uuid) -> Result<u64, NotificationsError> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Number of the user's unread notifications.
pub async fn unread_count(pool: &PgPool, user_id: Uuid) -> Result<i64, NotificationsError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?)
}

/// The user's email address from `users`; `None` if there is no such user or it is empty.
pub async fn user_email(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Option<String>, NotificationsError> {
    let email = sqlx::query_scalar::<_, String>("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(email.filter(|e| !e.trim().is_empty()))
}
