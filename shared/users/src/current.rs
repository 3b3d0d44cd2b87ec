//! The `CurrentUser` extractor: the caller's database row, provisioned on first use.

use api_common::ApiError;
use auth::Caller;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sqlx::PgPool;

use response_pipeline::{Invalidator, tags};

use crate::User;

/// The authenticated, active caller's row. Rejects with 401 without claims, 403 when deactivated.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    PgPool: FromRef<S>,
    Invalidator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let pool = PgPool::from_ref(state);
        let (user, created) = crate::repo::provision(&pool, &caller).await?;
        if created {
            Invalidator::from_ref(state)
                .invalidate(&[tags::users_list()])
                .await;
        }
        if !user.is_active {
            return Err(ApiError::Forbidden("this account is deactivated".into()));
        }
        Ok(CurrentUser(user))
    }
}
