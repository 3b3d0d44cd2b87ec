//! Demo users for local development: one per role, with stable subjects so tokens survive restarts.

use auth::Role;
use auth::local::{LocalAuthority, TokenRequest};

use crate::LocalError;

/// A seeded demo user.
#[derive(Debug, Clone)]
pub struct DemoUser {
    /// Token subject (`demo-<role>`).
    pub subject: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
}

/// The demo user of a role.
pub fn demo_user(role: Role) -> DemoUser {
    DemoUser {
        subject: format!("demo-{role}"),
        email: format!("{role}@demo.cad-platform.local"),
        role,
    }
}

/// Creates (or restores) the demo admin, engineer and viewer.
pub async fn seed_demo_users(pool: &db::PgPool) -> Result<Vec<DemoUser>, LocalError> {
    let mut out = Vec::new();
    for role in [Role::Admin, Role::Engineer, Role::Viewer] {
        let user = demo_user(role);
        sqlx::query(
            "INSERT INTO users (cognito_sub, email, username, display_name, role) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (cognito_sub) DO UPDATE SET role = EXCLUDED.role, is_active = true",
        )
        .bind(&user.subject)
        .bind(&user.email)
        .bind(format!("demo-{role}"))
        .bind(format!("Demo {role}"))
        .bind(role.as_str())
        .execute(pool)
        .await?;
        out.push(user);
    }
    Ok(out)
}

/// A token for a demo user, valid for `ttl_seconds`.
pub fn demo_token(
    authority: &LocalAuthority,
    role: Role,
    ttl_seconds: i64,
) -> Result<String, LocalError> {
    let user = demo_user(role);
    Ok(authority.mint(&TokenRequest {
        subject: user.subject,
        email: user.email,
        username: format!("demo-{role}"),
        role,
        ttl_seconds,
    })?)
}
