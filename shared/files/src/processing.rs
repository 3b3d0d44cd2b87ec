//! Hand-off of background work on files to the job queues: processing once an upload is
//! verified, and search (re)indexing whenever what a file can be found by changes.

use jobs::{Job, JobType, Producer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FilesError;

/// What the file-processing worker needs to process one version of a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessFile {
    /// The file.
    pub file_id: Uuid,
    /// The version to process (the current one when absent).
    #[serde(default)]
    pub version: Option<i32>,
}

/// What the search-indexing worker needs to (re)index or drop one file's search document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexFile {
    /// The file (gone from the table when it was deleted: the worker then drops its entries).
    pub file_id: Uuid,
}

/// The producer side of the file jobs, over the shared job producer.
#[derive(Clone)]
pub struct FileJobs {
    producer: Producer,
}

impl std::fmt::Debug for FileJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileJobs").finish_non_exhaustive()
    }
}

impl FileJobs {
    /// File jobs sent through `producer` (built once per process).
    pub fn new(producer: Producer) -> Self {
        Self { producer }
    }

    /// Queues processing of `version` of a file; returns the job id.
    pub async fn process(
        &self,
        job: &ProcessFile,
        user_id: Uuid,
        correlation_id: &str,
    ) -> Result<Uuid, FilesError> {
        self.send(JobType::ProcessFile, job, Some(user_id), correlation_id)
            .await
    }

    /// Queues (re)indexing of a file's search document; returns the job id.
    pub async fn index(
        &self,
        file_id: Uuid,
        user_id: Option<Uuid>,
        correlation_id: &str,
    ) -> Result<Uuid, FilesError> {
        self.send(
            JobType::IndexFile,
            &IndexFile { file_id },
            user_id,
            correlation_id,
        )
        .await
    }

    async fn send(
        &self,
        job_type: JobType,
        payload: &impl Serialize,
        user_id: Option<Uuid>,
        correlation_id: &str,
    ) -> Result<Uuid, FilesError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| FilesError::Queue(e.to_string()))?;
        let mut job = Job::new(job_type, payload);
        if let Some(user) = user_id {
            job = job.with_user(user);
        }
        if !correlation_id.is_empty() {
            job = job.with_correlation_id(correlation_id);
        }
        let sent = self
            .producer
            .send(job)
            .await
            .map_err(|e| FilesError::Queue(e.to_string()))?;
        Ok(sent.job_id)
    }
}
