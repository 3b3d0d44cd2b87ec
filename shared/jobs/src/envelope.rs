//! The job envelope: the JSON document carried in an SQS message body.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::QueueName;
use crate::error::{Error, JobError, Result};

/// Longest correlation id kept; longer ones are cut so a caller cannot bloat every log line.
pub const MAX_CORRELATION_ID_LEN: usize = 128;

/// The kind of work a job asks for; each kind belongs to exactly one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobType {
    /// Thumbnails and metadata extraction for an uploaded file (`file-processing`).
    ProcessFile,
    /// Train or evaluate a model (`ai-training`).
    TrainModel,
    /// Index one file in search (`search-indexing`).
    IndexFile,
    /// Rebuild the whole search index (`search-indexing`).
    ReindexAll,
    /// Email or push notification (`notifications`).
    SendNotification,
    /// Generate a report (`reports`).
    GenerateReport,
}

impl JobType {
    /// Every job type.
    pub const ALL: [JobType; 6] = [
        JobType::ProcessFile,
        JobType::TrainModel,
        JobType::IndexFile,
        JobType::ReindexAll,
        JobType::SendNotification,
        JobType::GenerateReport,
    ];

    /// Wire name, e.g. `process-file`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::ProcessFile => "process-file",
            JobType::TrainModel => "train-model",
            JobType::IndexFile => "index-file",
            JobType::ReindexAll => "reindex-all",
            JobType::SendNotification => "send-notification",
            JobType::GenerateReport => "generate-report",
        }
    }

    /// The queue that carries this job type.
    pub fn queue(self) -> QueueName {
        match self {
            JobType::ProcessFile => QueueName::FileProcessing,
            JobType::TrainModel => QueueName::AiTraining,
            JobType::IndexFile | JobType::ReindexAll => QueueName::SearchIndexing,
            JobType::SendNotification => QueueName::Notifications,
            JobType::GenerateReport => QueueName::Reports,
        }
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        JobType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::Envelope(format!("unknown job type {s:?}")))
    }
}

/// Where an oversize payload was stored in S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadRef {
    /// S3 bucket.
    pub bucket: String,
    /// S3 object key.
    pub key: String,
}

/// A job as it travels through SQS (the message body, JSON) and as handlers receive it.
///
/// On the wire either `payload` holds the data or `payload_ref` points to it in S3; the worker
/// runtime loads a referenced payload into `payload` before the handler runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique job id; also the idempotency and tracking key.
    pub id: Uuid,
    /// Kind of work.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Job data (null when it lives in S3, see `payload_ref`).
    #[serde(default)]
    pub payload: Value,
    /// S3 location of a payload too large for one SQS message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<PayloadRef>,
    /// User on whose behalf the job runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Attempt number: 1 when sent; the runtime sets it to the message's ApproximateReceiveCount.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Correlation id carried from the HTTP request into worker logs.
    #[serde(default)]
    pub correlation_id: String,
    /// Creation time, RFC 3339 (UTC, microseconds).
    #[serde(serialize_with = "ser_rfc3339", deserialize_with = "de_rfc3339")]
    pub created_at: DateTime<Utc>,
}

fn first_attempt() -> u32 {
    1
}

/// Formats a timestamp the way every stored and sent timestamp of this crate is formatted:
/// RFC 3339, UTC, fixed microsecond precision, so strings sort like the times they name.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Current time rounded to microseconds (what [`format_time`] keeps).
pub fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn ser_rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

fn de_rfc3339<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<DateTime<Utc>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

impl Job {
    /// A new job with a fresh id, attempt 1, the current time and a fresh correlation id.
    pub fn new(job_type: JobType, payload: Value) -> Self {
        let id = Uuid::new_v4();
        Job {
            id,
            job_type,
            payload,
            payload_ref: None,
            user_id: None,
            attempt: 1,
            correlation_id: id.to_string(),
            created_at: now_micros(),
        }
    }

    /// Sets the job id (use a deterministic id to make re-sends of the same work idempotent).
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Sets the owning user.
    pub fn with_user(mut self, user_id: Uuid) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Sets the correlation id (cut to [`MAX_CORRELATION_ID_LEN`] characters).
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        let mut c: String = correlation_id.into();
        truncate_chars(&mut c, MAX_CORRELATION_ID_LEN);
        self.correlation_id = c;
        self
    }

    /// The queue this job is sent to.
    pub fn queue(&self) -> QueueName {
        self.job_type.queue()
    }

    /// Serialises the envelope to its JSON message body.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Envelope(e.to_string()))
    }

    /// Parses a message body; any malformed body yields [`Error::Envelope`].
    pub fn from_json(body: &str) -> Result<Self> {
        let mut job: Job =
            serde_json::from_str(body).map_err(|e| Error::Envelope(e.to_string()))?;
        truncate_chars(&mut job.correlation_id, MAX_CORRELATION_ID_LEN);
        if job.attempt == 0 {
            job.attempt = 1;
        }
        Ok(job)
    }

    /// Deserialises the payload into a typed struct; a mismatch is a permanent failure.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        T::deserialize(&self.payload)
            .map_err(|e| JobError::permanent(format!("payload of {} job: {e}", self.job_type)))
    }
}

fn truncate_chars(s: &mut String, max: usize) {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_json_with_rfc3339_time() {
        let job = Job::new(JobType::ProcessFile, json!({"file_id": "f1"}))
            .with_user(Uuid::new_v4())
            .with_correlation_id("req-42");
        let body = job.to_json().unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "process-file");
        assert_eq!(v["correlation_id"], "req-42");
        assert_eq!(v["attempt"], 1);
        assert!(v.get("payload_ref").is_none());
        let created = v["created_at"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(created).is_ok(), "{created}");
        assert!(created.ends_with('Z'));
        assert_eq!(Job::from_json(&body).unwrap(), job);
    }

    #[test]
    fn every_type_has_a_queue_and_parses_back() {
        for t in JobType::ALL {
            assert_eq!(t.as_str().parse::<JobType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        assert_eq!(JobType::ReindexAll.queue(), QueueName::SearchIndexing);
        assert_eq!(JobType::GenerateReport.queue(), QueueName::Reports);
        assert!("nope".parse::<JobType>().is_err());
    }

    #[test]
    fn malformed_bodies_are_envelope_errors() {
        for body in [
            "not json",
            "{}",
            r#"{"id":"x","type":"process-file","created_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"id":"6a2f41a3-c54c-4c61-9f2a-3b1f3e2d8a10","type":"bake-cake","created_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"id":"6a2f41a3-c54c-4c61-9f2a-3b1f3e2d8a10","type":"process-file","created_at":"yesterday"}"#,
        ] {
            assert!(
                matches!(Job::from_json(body), Err(Error::Envelope(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn minimal_envelope_gets_defaults() {
        let job = Job::from_json(
            r#"{"id":"6a2f41a3-c54c-4c61-9f2a-3b1f3e2d8a10","type":"send-notification","created_at":"2026-01-01T00:00:00+02:00"}"#,
        )
        .unwrap();
        assert_eq!(job.attempt, 1);
        assert_eq!(job.payload, Value::Null);
        assert_eq!(job.created_at.to_rfc3339(), "2025-12-31T22:00:00+00:00");
    }

    #[test]
    fn correlation_id_is_bounded() {
        let job = Job::new(JobType::GenerateReport, json!({})).with_correlation_id("é".repeat(500));
        assert_eq!(job.correlation_id.chars().count(), MAX_CORRELATION_ID_LEN);
    }

    #[test]
    fn typed_payload_mismatch_is_permanent() {
        #[derive(Debug, Deserialize)]
        struct P {
            #[allow(dead_code)]
            file_id: String,
        }
        let job = Job::new(JobType::ProcessFile, json!({"other": 1}));
        assert!(!job.payload_as::<P>().unwrap_err().is_retryable());
        let ok = Job::new(JobType::ProcessFile, json!({"file_id": "a"}));
        assert!(ok.payload_as::<P>().is_ok());
    }
}
