//! Configuration read from env vars, and the AWS clients built once per process.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::catalogue::QueueName;
use crate::error::{Error, Result};

/// Default SQS message size limit used by the producer (the classic 256 KiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;

/// Env-var-provided URLs of one queue (either may be missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfiguredUrls {
    /// From `<QUEUE>_QUEUE_URL`.
    pub url: Option<String>,
    /// From `<QUEUE>_DLQ_URL`.
    pub dlq_url: Option<String>,
}

/// Everything the library reads from the environment.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Job tracking table (`JOBS_TABLE`, required).
    pub tracking_table: String,
    /// Idempotency table (`JOBS_IDEMPOTENCY_TABLE`, required).
    pub idempotency_table: String,
    /// Bucket for payloads over the message limit (`JOBS_PAYLOAD_BUCKET`, optional).
    pub payload_bucket: Option<String>,
    /// Name prefix for GetQueueUrl when a URL env var is absent (`JOBS_QUEUE_PREFIX`).
    pub queue_prefix: Option<String>,
    /// Per-queue URLs from `<QUEUE>_QUEUE_URL` / `<QUEUE>_DLQ_URL`.
    pub queue_urls: HashMap<QueueName, ConfiguredUrls>,
    /// How long tracking records live (`JOBS_TRACKING_TTL_DAYS`, default 30).
    pub tracking_ttl: Duration,
    /// How long a succeeded idempotency record blocks duplicates (`JOBS_IDEMPOTENCY_TTL_DAYS`,
    /// default 14 = SQS's longest retention, so any redelivery is still recognised).
    pub idempotency_ttl: Duration,
    /// Largest message the producer sends inline (`JOBS_MAX_MESSAGE_BYTES`, default 262144).
    pub max_message_bytes: usize,
    /// Messages of one batch handled at once (`JOBS_WORKER_CONCURRENCY`, default 10).
    pub worker_concurrency: usize,
}

impl JobsConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |k: &str| get(k).ok_or_else(|| Error::Config(format!("{k} is not set")));
        let number = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| Error::Config(format!("{k}={v:?} is not a whole number"))),
            }
        };
        let mut queue_urls = HashMap::new();
        for q in QueueName::ALL {
            let spec = q.spec();
            let urls = ConfiguredUrls {
                url: get(spec.url_env),
                dlq_url: get(spec.dlq_url_env),
            };
            if urls != ConfiguredUrls::default() {
                queue_urls.insert(q, urls);
            }
        }
        let tracking_days = number("JOBS_TRACKING_TTL_DAYS", 30)?.clamp(1, 3650);
        let idem_days = number("JOBS_IDEMPOTENCY_TTL_DAYS", 14)?.clamp(1, 3650);
        let max_message_bytes = number("JOBS_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES as u64)?;
        if !(1024..=1_048_576).contains(&max_message_bytes) {
            return Err(Error::Config(
                "JOBS_MAX_MESSAGE_BYTES must be between 1024 and 1048576".into(),
            ));
        }
        let concurrency = number("JOBS_WORKER_CONCURRENCY", 10)?.clamp(1, 100);
        Ok(JobsConfig {
            tracking_table: required("JOBS_TABLE")?,
            idempotency_table: required("JOBS_IDEMPOTENCY_TABLE")?,
            payload_bucket: get("JOBS_PAYLOAD_BUCKET"),
            queue_prefix: get("JOBS_QUEUE_PREFIX"),
            queue_urls,
            tracking_ttl: Duration::from_secs(tracking_days * 86_400),
            idempotency_ttl: Duration::from_secs(idem_days * 86_400),
            max_message_bytes: max_message_bytes as usize,
            worker_concurrency: concurrency as usize,
        })
    }
}

/// The three AWS clients the library uses; build once per process and clone freely.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3 client (path-style addressing when an endpoint override is set).
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    /// Builds the clients from a loaded SDK config. When the config has no operation timeout,
    /// one is set (90 s; 30 s per attempt) so no call can hang; both exceed SQS's 20 s long poll.
    pub fn new(sdk: &SdkConfig) -> Self {
        let timeouts = match sdk.timeout_config() {
            Some(t) if t.operation_timeout().is_some() => t.clone(),
            _ => aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        };
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(timeouts.clone())
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(timeouts.clone())
            .build();
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Clients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_tables_urls_and_defaults() {
        let cfg = JobsConfig::from_lookup(env(&[
            ("JOBS_TABLE", "jobs"),
            ("JOBS_IDEMPOTENCY_TABLE", "jobs-idem"),
            ("FILE_PROCESSING_QUEUE_URL", "http://q/fp"),
            ("FILE_PROCESSING_DLQ_URL", "http://q/fp-dlq"),
            ("REPORTS_QUEUE_URL", "http://q/r"),
            ("JOBS_PAYLOAD_BUCKET", " "),
        ]))
        .unwrap();
        assert_eq!(cfg.tracking_table, "jobs");
        assert_eq!(cfg.payload_bucket, None, "blank means unset");
        assert_eq!(cfg.tracking_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(cfg.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(
            cfg.queue_urls[&QueueName::FileProcessing]
                .dlq_url
                .as_deref(),
            Some("http://q/fp-dlq")
        );
        assert_eq!(cfg.queue_urls[&QueueName::Reports].dlq_url, None);
        assert!(!cfg.queue_urls.contains_key(&QueueName::AiTraining));
    }

    #[test]
    fn rejects_missing_tables_and_bad_numbers() {
        assert!(JobsConfig::from_lookup(env(&[("JOBS_TABLE", "t")])).is_err());
        let bad = JobsConfig::from_lookup(env(&[
            ("JOBS_TABLE", "t"),
            ("JOBS_IDEMPOTENCY_TABLE", "i"),
            ("JOBS_WORKER_CONCURRENCY", "lots"),
        ]));
        assert!(matches!(bad, Err(Error::Config(_))));
        let too_big = JobsConfig::from_lookup(env(&[
            ("JOBS_TABLE", "t"),
            ("JOBS_IDEMPOTENCY_TABLE", "i"),
            ("JOBS_MAX_MESSAGE_BYTES", "99999999"),
        ]));
        assert!(too_big.is_err());
    }
}
