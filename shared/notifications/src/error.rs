//! The crate's one error type, and how it maps onto job outcomes and HTTP answers.

use api_common::ApiError;
use jobs::JobError;

/// Why a notification operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    /// The database failed; retrying may help.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The payload or a setting is invalid; retrying cannot help.
    #[error("invalid notification: {0}")]
    Invalid(String),
    /// The recipient does not exist (or has no email address).
    #[error("recipient {0} not found")]
    UnknownRecipient(uuid::Uuid),
    /// A webhook failed in a way that may pass (5xx, 408, 429, timeout, connection error).
    #[error("webhook delivery failed (will retry): {0}")]
    WebhookTransient(String),
    /// A webhook was refused for good (4xx other than 408/429, 3xx, bad URL).
    #[error("webhook delivery refused: {0}")]
    WebhookPermanent(String),
    /// SES failed in a way that may pass (throttling, network).
    #[error("email sending failed (will retry): {0}")]
    EmailTransient(String),
    /// SES refused the message for good (unverified sender, bad address, account paused).
    #[error("email refused: {0}")]
    EmailPermanent(String),
    /// A webhook signature did not verify.
    #[error("invalid webhook signature: {0}")]
    BadSignature(&'static str),
    /// Missing or invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Enqueueing a notification job failed.
    #[error("enqueue: {0}")]
    Enqueue(#[from] jobs::Error),
}

impl NotificationsError {
    /// True when retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => !is_permanent_db_error(e),
            Self::WebhookTransient(_) | Self::EmailTransient(_) | Self::Enqueue(_) => true,
            Self::Invalid(_)
            | Self::UnknownRecipient(_)
            | Self::WebhookPermanent(_)
            | Self::EmailPermanent(_)
            | Self::BadSignature(_)
            | Self::Config(_) => false,
        }
    }
}

/// Constraint violations (unknown user, bad data) will fail the same way on every attempt.
fn is_permanent_db_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("23")),
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}

impl From<NotificationsError> for JobError {
    fn from(e: NotificationsError) -> Self {
        if e.is_transient() {
            JobError::retryable(e)
        } else {
            JobError::permanent(e)
        }
    }
}

impl From<NotificationsError> for ApiError {
    fn from(e: NotificationsError) -> Self {
        match e {
            NotificationsError::Database(err) => {
                if matches!(
                    err,
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
                ) {
                    ApiError::Unavailable(err.to_string())
                } else {
                    ApiError::Internal(err.to_string())
                }
            }
            NotificationsError::Invalid(m) => ApiError::bad_request(m),
            NotificationsError::UnknownRecipient(id) => ApiError::NotFound(format!("user {id}")),
            NotificationsError::Enqueue(err) => ApiError::Unavailable(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
