//! Hand-off to the file-processing queue once an upload is verified.

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::FilesError;

/// The job type the file-processing worker handles.
pub const PROCESS_FILE: &str = "process-file";

/// What the file-processing worker needs to process one version of a file.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessFile {
    /// The file.
    pub file_id: Uuid,
    /// The version to process.
    pub version: i32,
    /// Where it is stored.
    pub bucket: String,
    /// Its key.
    pub s3_key: String,
}

/// The file-processing SQS queue.
#[derive(Debug, Clone)]
pub struct ProcessingQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl ProcessingQueue {
    /// A queue handle over an already-built client.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends one processing job, as a job envelope; returns the job id.
    pub async fn enqueue(
        &self,
        job: &ProcessFile,
        user_id: Uuid,
        correlation_id: &str,
    ) -> Result<Uuid, FilesError> {
        let job_id = Uuid::new_v4();
        let envelope = serde_json::json!({
            "job_id": job_id,
            "type": PROCESS_FILE,
            "payload": job,
            "user_id": user_id,
            "attempt": 1,
            "correlation_id": correlation_id,
            "created_at": Utc::now().to_rfc3339(),
        });
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(envelope.to_string())
            .send()
            .await
            .map_err(|e| {
                FilesError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(job_id)
    }
}
