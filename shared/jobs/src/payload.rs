//! Payloads too large for one SQS message, stored in S3 and referenced from the envelope.

use serde_json::Value;

use crate::envelope::{Job, PayloadRef};
use crate::error::{Error, JobError, Result};

/// Default ceiling for a payload loaded back from S3 (guards memory against a wrong object).
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Object key of a job's payload: `job-payloads/<queue>/<job id>.json`. A lifecycle rule on the
/// `job-payloads/` prefix (e.g. 15 days, beyond SQS's 14-day retention) cleans them up.
pub fn payload_key(job: &Job) -> String {
    format!("job-payloads/{}/{}.json", job.queue().as_str(), job.id)
}

/// Uploads the job's payload to `bucket` and returns its reference.
pub async fn store_payload(s3: &aws_sdk_s3::Client, bucket: &str, job: &Job) -> Result<PayloadRef> {
    let body = serde_json::to_vec(&job.payload).map_err(|e| Error::Envelope(e.to_string()))?;
    let key = payload_key(job);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| Error::aws("s3", "PutObject", e))?;
    Ok(PayloadRef {
        bucket: bucket.to_owned(),
        key,
    })
}

/// Loads a referenced payload. A missing object or invalid JSON is permanent; anything else
/// (network, throttling) is retryable.
pub async fn load_payload(
    s3: &aws_sdk_s3::Client,
    reference: &PayloadRef,
    max_bytes: u64,
) -> Result<Value, JobError> {
    let out = s3
        .get_object()
        .bucket(&reference.bucket)
        .key(&reference.key)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|se| se.is_no_such_key()) {
                JobError::permanent(format!(
                    "payload s3://{}/{} is missing",
                    reference.bucket, reference.key
                ))
            } else {
                JobError::from(Error::aws("s3", "GetObject", e))
            }
        })?;
    let len = out.content_length.unwrap_or(0);
    if u64::try_from(len).unwrap_or(u64::MAX) > max_bytes {
        return Err(JobError::permanent(format!(
            "payload s3://{}/{} is {len} bytes, over the {max_bytes}-byte limit",
            reference.bucket, reference.key
        )));
    }
    // Read chunk by chunk so a missing or lying Content-Length cannot exhaust memory.
    let mut body = out.body;
    let mut bytes = Vec::with_capacity(usize::try_from(len.max(0)).unwrap_or(0));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| JobError::retryable(format!("reading payload: {e}")))?;
        if u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX) > max_bytes {
            return Err(JobError::permanent("payload exceeds the size limit"));
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| JobError::permanent(format!("payload is not JSON: {e}")))
}
