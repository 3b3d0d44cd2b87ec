//! Queries on `users`.

use auth::{Caller, Role};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::UsersError;

/// A platform user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    /// Our id.
    pub id: Uuid,
    /// The identity provider's subject.
    pub cognito_sub: String,
    /// Email, kept in step with the token.
    pub email: String,
    /// Handle shown to others.
    pub username: String,
    /// Optional full name.
    pub display_name: Option<String>,
    /// Authoritative role once the row exists (the token only seeds it); see README.
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
    /// Inactive users are refused on every route.
    pub is_active: bool,
    /// Last authenticated request, recorded at most every few minutes.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Free-form client preferences (a JSON object).
    pub preferences: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A role read from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoleColumn(pub Role);

impl TryFrom<String> for RoleColumn {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse().map(RoleColumn)
    }
}

impl User {
    /// The user's role.
    pub fn role(&self) -> Role {
        self.role.0
    }
}

/// How often `last_login_at` is refreshed: a write on every request would cost more than it tells.
const LOGIN_REFRESH_SECONDS: i64 = 300;

/// Returns the caller's row (and whether it was just created), creating it on their first
/// request and keeping email and login time current.
pub async fn provision(pool: &PgPool, caller: &Caller) -> Result<(User, bool), UsersError> {
    let existing = sqlx::query_as::<_, User>("SELECT * FROM users WHERE cognito_sub = $1")
        .bind(&caller.subject)
        .fetch_optional(pool)
        .await?;
    if let Some(user) = existing {
        let email_changed = caller.email.as_deref().is_some_and(|e| e != user.email);
        let login_stale = user
            .last_login_at
            .is_none_or(|t| (Utc::now() - t).num_seconds() > LOGIN_REFRESH_SECONDS);
        if !email_changed && !login_stale {
            return Ok((user, false));
        }
        let updated = sqlx::query_as::<_, User>(
            "UPDATE users SET email = COALESCE($2, email), last_login_at = now(), \
             updated_at = CASE WHEN $2 IS DISTINCT FROM email THEN now() ELSE updated_at END \
             WHERE id = $1 RETURNING *",
        )
        .bind(user.id)
        .bind(caller.email.as_deref())
        .fetch_one(pool)
        .await?;
        return Ok((updated, false));
    }
    let email = caller.email.clone().unwrap_or_default();
    let username = caller
        .username
        .clone()
        .or_else(|| {
            email
                .split('@')
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| caller.subject.clone());
    let inserted = sqlx::query_as::<_, User>(
        "INSERT INTO users (cognito_sub, email, username, role, last_login_at) \
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT (cognito_sub) DO NOTHING RETURNING *",
    )
    .bind(&caller.subject)
    .bind(&email)
    .bind(&username)
    .bind(caller.role.as_str())
    .fetch_optional(pool)
    .await?;
    match inserted {
        Some(user) => {
            tracing::info!(user_id = %user.id, role = %caller.role, "provisioned user on first request");
            Ok((user, true))
        }
        // A concurrent first request inserted the row between our SELECT and INSERT.
        None => Ok((
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE cognito_sub = $1")
                .bind(&caller.subject)
                .fetch_one(pool)
                .await?,
            false,
        )),
    }
}

/// A user by id.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<User>, UsersError> {
    Ok(
        sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    /// New handle.
    pub username: Option<String>,
    /// New display name (`Some(None)` clears it).
    pub display_name: Option<Option<String>>,
    /// Replaces the preferences object.
    pub preferences: Option<serde_json::Value>,
    /// New role (admins only).
    pub role: Option<Role>,
    /// Activate or deactivate (admins only).
    pub is_active: Option<bool>,
}

/// Outcome of an update that must not leave the platform without an administrator.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// The updated row.
    Updated(User),
    /// No such user.
    NotFound,
    /// The change would remove the last active admin.
    LastAdmin,
}

/// Applies `changes` to user `id`, recording who did it in the audit log.
pub async fn update(
    pool: &PgPool,
    actor: Uuid,
    id: Uuid,
    changes: &UserChanges,
) -> Result<UpdateOutcome, UsersError> {
    let mut tx = pool.begin().await?;
    let demotes =
        changes.role.is_some_and(|r| r != Role::Admin) || changes.is_active == Some(false);
    if demotes {
        // Serialise admin removals so two concurrent demotions cannot both see "another admin left".
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('users.admins'))")
            .execute(&mut *tx)
            .await?;
        let (is_admin, others): (Option<bool>, i64) = sqlx::query_as(
            "SELECT (SELECT role = 'admin' AND is_active FROM users WHERE id = $1), \
                    (SELECT count(*) FROM users WHERE role = 'admin' AND is_active AND id <> $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if is_admin == Some(true) && others == 0 {
            return Ok(UpdateOutcome::LastAdmin);
        }
    }
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE users SET updated_at = now()");
    if let Some(username) = &changes.username {
        q.push(", username = ").push_bind(username);
    }
    if let Some(display_name) = &changes.display_name {
        q.push(", display_name = ").push_bind(display_name.clone());
    }
    if let Some(prefs) = &changes.preferences {
        q.push(", preferences = ").push_bind(prefs);
    }
    if let Some(role) = changes.role {
        q.push(", role = ").push_bind(role.as_str());
    }
    if let Some(active) = changes.is_active {
        q.push(", is_active = ").push_bind(active);
    }
    q.push(" WHERE id = ").push_bind(id).push(" RETURNING *");
    let Some(user) = q.build_query_as::<User>().fetch_optional(&mut *tx).await? else {
        return Ok(UpdateOutcome::NotFound);
    };
    let details = serde_json::json!({
        "username": changes.username,
        "display_name": changes.display_name,
        "preferences_changed": changes.preferences.is_some(),
        "role": changes.role.map(Role::as_str),
        "is_active": changes.is_active,
    });
    db::audit::record(
        &mut tx,
        Some(actor),
        "user.update",
        "user",
        &id.to_string(),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(UpdateOutcome::Updated(user))
}

/// Filters of the admin listing.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// Only this role.
    pub role: Option<Role>,
    /// Only active (or only inactive) users.
    pub active: Option<bool>,
    /// Keyset position: rows after (created_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// Users in creation order, `limit` rows after the cursor.
pub async fn list(pool: &PgPool, filter: &ListFilter, limit: u32) -> Result<Vec<User>, UsersError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM users WHERE true");
    if let Some(role) = filter.role {
        q.push(" AND role = ").push_bind(role.as_str());
    }
    if let Some(active) = filter.active {
        q.push(" AND is_active = ").push_bind(active);
    }
    if let Some((created_at, id)) = filter.after {
        q.push(" AND (created_at, id) > (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(i64::from(limit));
    Ok(q.build_query_as::<User>().fetch_all(pool).await?)
}
