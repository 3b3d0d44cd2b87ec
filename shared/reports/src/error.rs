//! The crate's one error type, and how it maps onto job outcomes and HTTP answers.

use api_common::ApiError;
use jobs::JobError;

/// Why generating or requesting a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    /// The database failed; retrying may help.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// S3 failed; retrying may help.
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    /// The request or payload is invalid; `field` names the culprit.
    #[error("{field}: {message}")]
    Invalid {
        /// Offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The requester may not have this report.
    #[error("{0}")]
    Forbidden(String),
    /// Rendering CSV or JSON failed.
    #[error("rendering: {0}")]
    Render(String),
    /// Enqueueing the ready notification failed.
    #[error("notification: {0}")]
    Notify(#[from] notifications::NotificationsError),
    /// Enqueueing the report job failed.
    #[error("enqueue: {0}")]
    Enqueue(#[from] jobs::Error),
    /// Missing or invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl ReportsError {
    /// A 400-class error on `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ReportsError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ReportsError::Database(e) => !matches!(
                e,
                sqlx::Error::Decode(_)
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::TypeNotFound { .. }
            ),
            ReportsError::Storage(storage::StorageError::Presign(_)) => false,
            ReportsError::Storage(_) | ReportsError::Enqueue(_) => true,
            ReportsError::Notify(e) => e.is_transient(),
            ReportsError::Invalid { .. }
            | ReportsError::Forbidden(_)
            | ReportsError::Render(_)
            | ReportsError::Config(_) => false,
        }
    }
}

impl From<ReportsError> for JobError {
    fn from(e: ReportsError) -> Self {
        if e.is_transient() {
            JobError::retryable(e)
        } else {
            JobError::permanent(e)
        }
    }
}

impl From<ReportsError> for ApiError {
    fn from(e: ReportsError) -> Self {
        match e {
            ReportsError::Invalid { field, message } => ApiError::invalid(field, message),
            ReportsError::Forbidden(m) => ApiError::Forbidden(m),
            ReportsError::Enqueue(err) => ApiError::Unavailable(err.to_string()),
            ReportsError::Database(err)
                if matches!(
                    err,
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
                ) =>
            {
                ApiError::Unavailable(err.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
