//! The audit trail: who changed what, written in the same transaction as the change itself.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records one action in `audit_logs`.
pub async fn record(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    details: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, details) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(action)
    .bind(resource_type)
    .bind(resource_id)
    .bind(details)
    .execute(conn)
    .await?;
    Ok(())
}
