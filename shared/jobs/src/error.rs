//! The crate's error type and the handler-facing [`JobError`].

use std::fmt;

/// Errors of the jobs library (AWS calls, configuration, decoding).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS SDK call failed; `service` and `op` name it, `message` carries the full error chain.
    #[error("{service} {op} failed: {message}")]
    Aws {
        /// AWS service ("sqs", "dynamodb", "s3").
        service: &'static str,
        /// Operation name, e.g. "SendMessageBatch".
        op: &'static str,
        /// Display of the error and its sources.
        message: String,
    },
    /// A message body is not a valid job envelope.
    #[error("invalid job envelope: {0}")]
    Envelope(String),
    /// A payload is larger than one SQS message and no payload bucket is configured.
    #[error(
        "job {job_id}: message of {size} bytes exceeds the {limit}-byte SQS limit and no payload bucket is configured"
    )]
    PayloadTooLarge {
        /// Job concerned.
        job_id: uuid::Uuid,
        /// Serialised size in bytes.
        size: usize,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// A queue was used that has no URL configured.
    #[error("queue {0} is not configured (set its URL env var or JOBS_QUEUE_PREFIX)")]
    QueueNotConfigured(&'static str),
    /// Invalid or missing configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A pagination cursor could not be decoded or belongs to another listing.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Aws`] from any SDK error, keeping the whole source chain in the message.
    pub(crate) fn aws<E>(service: &'static str, op: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Error::Aws {
            service,
            op,
            message: aws_smithy_display(&err),
        }
    }
}

/// Formats an error with all its sources, as the SDK's `DisplayErrorContext` does.
fn aws_smithy_display(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Why a job handler failed; decides whether the message is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Transient failure (timeout, throttling, dependency down): retried with the queue's backoff
    /// until the queue's attempts are used up, then dead-lettered.
    Retryable(String),
    /// The job can never succeed (bad payload, missing file): sent to the DLQ at once, no retries.
    Permanent(String),
}

impl JobError {
    /// A transient failure.
    pub fn retryable(msg: impl fmt::Display) -> Self {
        JobError::Retryable(msg.to_string())
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(msg: impl fmt::Display) -> Self {
        JobError::Permanent(msg.to_string())
    }

    /// True for [`JobError::Retryable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable(_))
    }

    /// The error text.
    pub fn message(&self) -> &str {
        match self {
            JobError::Retryable(m) | JobError::Permanent(m) => m,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retryable(m) => write!(f, "retryable: {m}"),
            JobError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for JobError {}

impl From<Error> for JobError {
    /// Library errors met inside a handler (e.g. an AWS call) are treated as transient.
    fn from(e: Error) -> Self {
        JobError::Retryable(e.to_string())
    }
}
