//! Errors of the users crate and their one mapping to HTTP.

use api_common::ApiError;

/// What can go wrong with users.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored role is not one the code knows.
    #[error("user {0} has an unknown role in the database")]
    CorruptRole(uuid::Uuid),
}

impl From<UsersError> for ApiError {
    fn from(err: UsersError) -> Self {
        match err {
            UsersError::Db(e) if db::is_unavailable(&e) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
