//! Errors of the files crate and their one mapping to HTTP.

use api_common::ApiError;

/// What can go wrong with files.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// S3 failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The processing queue refused the job.
    #[error("could not queue the processing job: {0}")]
    Queue(String),
    /// A user lookup failed.
    #[error(transparent)]
    Users(#[from] users::UsersError),
}

impl From<FilesError> for ApiError {
    fn from(err: FilesError) -> Self {
        match err {
            FilesError::Db(e) if db::is_unavailable(&e) => ApiError::Unavailable(e.to_string()),
            FilesError::Db(e) => ApiError::Internal(e.to_string()),
            // S3 and SQS failures are transient from the client's point of view: retry the call.
            FilesError::Storage(e) => ApiError::Unavailable(e.to_string()),
            FilesError::Queue(e) => ApiError::Unavailable(e),
            FilesError::Users(e) => e.into(),
        }
    }
}
