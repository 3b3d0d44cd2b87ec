//! The crate's error type and its one mapping to HTTP.

use std::time::Duration;

use api_common::ApiError;

/// What can go wrong in the admin API.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The path names no queue of the catalogue.
    #[error("queue {0:?}")]
    UnknownQueue(String),
    /// A queue of the catalogue has no URLs in this deployment.
    #[error("queue {0} is not configured")]
    QueueNotConfigured(&'static str),
    /// A jobs call (SQS, DynamoDB) failed.
    #[error(transparent)]
    Jobs(#[from] jobs::Error),
    /// The monitoring view could not be read.
    #[error(transparent)]
    Monitor(#[from] monitoring::MonitorError),
    /// A source did not answer in time.
    #[error("{source_name} did not answer within {timeout:?}")]
    Timeout {
        /// Which source.
        source_name: &'static str,
        /// The limit it exceeded.
        timeout: Duration,
    },
    /// Every queue failed to answer.
    #[error("no queue could be read: {0}")]
    QueuesUnavailable(String),
    /// Start-up configuration is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::UnknownQueue(name) => ApiError::NotFound(format!("queue {name:?}")),
            AdminError::QueueNotConfigured(name) => {
                ApiError::NotFound(format!("queue {name} (not configured here)"))
            }
            AdminError::Jobs(jobs::Error::Aws { .. })
            | AdminError::Monitor(_)
            | AdminError::Timeout { .. }
            | AdminError::QueuesUnavailable(_) => ApiError::Unavailable(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
