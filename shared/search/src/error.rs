//! Errors of the search crate and their one mapping to HTTP.

use api_common::ApiError;

/// What can go wrong in search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::Db(e) if db::is_unavailable(&e) => ApiError::Unavailable(e.to_string()),
            SearchError::Db(e) => ApiError::Internal(e.to_string()),
        }
    }
}
