//! The queue catalogue (one `const` table of the five queues and their retry policies) and the
//! directory that maps each queue to its SQS URLs.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::JobsConfig;
use crate::envelope::JobType;
use crate::error::{Error, Result};

/// SQS's ceiling for a visibility timeout (12 hours).
pub const MAX_VISIBILITY_SECS: u32 = 43_200;

/// The five job queues of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    /// File uploads, thumbnails, metadata extraction.
    FileProcessing,
    /// Model training and evaluation.
    AiTraining,
    /// Search index updates.
    SearchIndexing,
    /// Email and push notifications.
    Notifications,
    /// Report generation.
    Reports,
}

impl QueueName {
    /// All queues, in catalogue order.
    pub const ALL: [QueueName; 5] = [
        QueueName::FileProcessing,
        QueueName::AiTraining,
        QueueName::SearchIndexing,
        QueueName::Notifications,
        QueueName::Reports,
    ];

    /// Name as used in queue names and URLs, e.g. `file-processing`.
    pub fn as_str(self) -> &'static str {
        self.spec().slug
    }

    /// This queue's catalogue entry.
    pub fn spec(self) -> &'static QueueSpec {
        // CATALOGUE is ordered like the enum; the unit test `catalogue_is_in_enum_order` guards it.
        &CATALOGUE[self as usize]
    }

    /// Name of the dead-letter queue relative to the source queue's name.
    pub fn dlq_slug(self) -> String {
        format!("{}-dlq", self.as_str())
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        QueueName::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| Error::Config(format!("unknown queue {s:?}")))
    }
}

/// How long a failed message stays invisible before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backoff {
    /// Retry as soon as possible (visibility 0).
    Immediate,
    /// The same delay after every failure.
    Fixed {
        /// Delay in seconds.
        secs: u32,
    },
    /// `base_secs * 2^(attempt-1)`, capped at `max_secs`.
    Exponential {
        /// Delay after the first failure.
        base_secs: u32,
        /// Upper bound of the delay.
        max_secs: u32,
    },
}

impl Backoff {
    /// Delay in seconds after attempt `failed_attempt` (1-based) failed.
    pub fn delay_secs(self, failed_attempt: u32) -> u32 {
        let d = match self {
            Backoff::Immediate => 0,
            Backoff::Fixed { secs } => secs,
            Backoff::Exponential {
                base_secs,
                max_secs,
            } => {
                let exp = failed_attempt.saturating_sub(1).min(31);
                let factor = 1u64 << exp;
                let d = u64::from(base_secs).saturating_mul(factor);
                u32::try_from(d.min(u64::from(max_secs))).unwrap_or(max_secs)
            }
        };
        d.min(MAX_VISIBILITY_SECS)
    }
}

/// Attempts and backoff of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Total attempts including the first; also the DLQ redrive policy's `maxReceiveCount`.
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// True when attempt `receive_count` is the last one allowed.
    pub fn is_final_attempt(&self, receive_count: u32) -> bool {
        receive_count >= self.max_attempts
    }

    /// Visibility timeout to set on a message whose attempt `receive_count` failed: the backoff
    /// delay, or 0 after the final attempt so SQS moves it to the DLQ on its next receive.
    pub fn visibility_after_failure(&self, receive_count: u32) -> u32 {
        if self.is_final_attempt(receive_count) {
            0
        } else {
            self.backoff.delay_secs(receive_count)
        }
    }
}

/// One row of the queue catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueSpec {
    /// Queue identity.
    pub name: QueueName,
    /// Queue name suffix, e.g. `file-processing` (the DLQ adds `-dlq`).
    pub slug: &'static str,
    /// Job types carried.
    pub job_types: &'static [JobType],
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Worker Lambda timeout (seconds); also the runtime's per-message time limit and the
    /// idempotency lock lifetime.
    pub function_timeout_secs: u32,
    /// Queue visibility timeout (seconds): 6 × the function timeout, as AWS advises for Lambda.
    pub visibility_timeout_secs: u32,
    /// Event source mapping batch size.
    pub batch_size: u32,
    /// Event source mapping `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: u32,
    /// Source queue message retention (seconds).
    pub retention_secs: u32,
    /// Env var holding the queue URL.
    pub url_env: &'static str,
    /// Env var holding the DLQ URL.
    pub dlq_url_env: &'static str,
}

/// DLQ message retention: the SQS maximum, 14 days, so failures can be inspected and redriven.
pub const DLQ_RETENTION_SECS: u32 = 1_209_600;
const FOUR_DAYS: u32 = 345_600;

/// The five queues with the retry policies of the original system.
///
/// `reports` had 2 attempts and no documented delay: a fixed 30 s gives a transient fault
/// (database failover, throttling) time to clear without delaying a user's report much.
pub const CATALOGUE: [QueueSpec; 5] = [
    QueueSpec {
        name: QueueName::FileProcessing,
        slug: "file-processing",
        job_types: &[JobType::ProcessFile],
        retry: RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Exponential {
                base_secs: 2,
                max_secs: 900,
            },
        },
        function_timeout_secs: 120,
        visibility_timeout_secs: 720,
        batch_size: 5,
        max_concurrency: 10,
        retention_secs: FOUR_DAYS,
        url_env: "FILE_PROCESSING_QUEUE_URL",
        dlq_url_env: "FILE_PROCESSING_DLQ_URL",
    },
    QueueSpec {
        name: QueueName::AiTraining,
        slug: "ai-training",
        job_types: &[JobType::TrainModel],
        retry: RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::Immediate,
        },
        function_timeout_secs: 900,
        visibility_timeout_secs: 5_400,
        batch_size: 1,
        max_concurrency: 2,
        retention_secs: FOUR_DAYS,
        url_env: "AI_TRAINING_QUEUE_URL",
        dlq_url_env: "AI_TRAINING_DLQ_URL",
    },
    QueueSpec {
        name: QueueName::SearchIndexing,
        slug: "search-indexing",
        job_types: &[JobType::IndexFile, JobType::ReindexAll],
        retry: RetryPolicy {
            max_attempts: 2,
            backoff: Backoff::Fixed { secs: 5 },
        },
        function_timeout_secs: 60,
        visibility_timeout_secs: 360,
        batch_size: 10,
        max_concurrency: 5,
        retention_secs: FOUR_DAYS,
        url_env: "SEARCH_INDEXING_QUEUE_URL",
        dlq_url_env: "SEARCH_INDEXING_DLQ_URL",
    },
    QueueSpec {
        name: QueueName::Notifications,
        slug: "notifications",
        job_types: &[JobType::SendNotification],
        retry: RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Exponential {
                base_secs: 1,
                max_secs: 900,
            },
        },
        function_timeout_secs: 30,
        visibility_timeout_secs: 180,
        batch_size: 10,
        max_concurrency: 10,
        retention_secs: FOUR_DAYS,
        url_env: "NOTIFICATIONS_QUEUE_URL",
        dlq_url_env: "NOTIFICATIONS_DLQ_URL",
    },
    QueueSpec {
        name: QueueName::Reports,
        slug: "reports",
        job_types: &[JobType::GenerateReport],
        retry: RetryPolicy {
            max_attempts: 2,
            backoff: Backoff::Fixed { secs: 30 },
        },
        function_timeout_secs: 300,
        visibility_timeout_secs: 1_800,
        batch_size: 1,
        max_concurrency: 2,
        retention_secs: FOUR_DAYS,
        url_env: "REPORTS_QUEUE_URL",
        dlq_url_env: "REPORTS_DLQ_URL",
    },
];

/// URLs of a queue and of its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueUrls {
    /// Source queue URL.
    pub url: String,
    /// Dead-letter queue URL.
    pub dlq_url: String,
}

/// Where each queue lives: built from env vars, a name prefix (GetQueueUrl) or given URLs.
#[derive(Debug, Clone, Default)]
pub struct QueueDirectory {
    urls: HashMap<QueueName, QueueUrls>,
}

impl QueueDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a queue's URLs.
    pub fn insert(&mut self, queue: QueueName, urls: QueueUrls) {
        self.urls.insert(queue, urls);
    }

    /// URLs of `queue`, or [`Error::QueueNotConfigured`].
    pub fn get(&self, queue: QueueName) -> Result<&QueueUrls> {
        self.urls
            .get(&queue)
            .ok_or(Error::QueueNotConfigured(queue.as_str()))
    }

    /// Configured queues with their URLs, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (QueueName, &QueueUrls)> {
        QueueName::ALL
            .into_iter()
            .filter_map(|q| self.urls.get(&q).map(|u| (q, u)))
    }

    /// Resolves `queues`: each URL from its env var (as read into `config`), else by GetQueueUrl
    /// of `<JOBS_QUEUE_PREFIX><slug>` / `<prefix><slug>-dlq`. A queue with neither is an error.
    pub async fn resolve(
        sqs: &aws_sdk_sqs::Client,
        config: &JobsConfig,
        queues: &[QueueName],
    ) -> Result<Self> {
        let mut dir = QueueDirectory::new();
        for &q in queues {
            let configured = config.queue_urls.get(&q);
            let url = match configured.and_then(|c| c.url.clone()) {
                Some(u) => u,
                None => lookup_by_prefix(sqs, config, q, q.as_str()).await?,
            };
            let dlq_url = match configured.and_then(|c| c.dlq_url.clone()) {
                Some(u) => u,
                None => lookup_by_prefix(sqs, config, q, &q.dlq_slug()).await?,
            };
            dir.insert(q, QueueUrls { url, dlq_url });
        }
        Ok(dir)
    }

    /// The queues a producer can reach: each queue whose URL is configured (or, with a name
    /// prefix, each of the five). A Lambda function is given only the URLs of the queues it sends
    /// to and never their DLQs, so a missing DLQ URL is left empty here; sending to a queue that
    /// is absent fails at send time with a clear error.
    pub async fn resolve_available(sqs: &aws_sdk_sqs::Client, config: &JobsConfig) -> Result<Self> {
        if config.queue_prefix.is_some() {
            return Self::resolve(sqs, config, &QueueName::ALL).await;
        }
        let mut dir = QueueDirectory::new();
        for q in QueueName::ALL {
            let Some(configured) = config.queue_urls.get(&q) else {
                continue;
            };
            let Some(url) = configured.url.clone() else {
                continue;
            };
            let dlq_url = configured.dlq_url.clone().unwrap_or_default();
            dir.insert(q, QueueUrls { url, dlq_url });
        }
        Ok(dir)
    }

    /// Resolves all five queues by GetQueueUrl from a name prefix (local set-ups and tests).
    pub async fn from_prefix(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Result<Self> {
        let mut dir = QueueDirectory::new();
        for q in QueueName::ALL {
            let url = get_queue_url(sqs, &format!("{prefix}{}", q.as_str())).await?;
            let dlq_url = get_queue_url(sqs, &format!("{prefix}{}", q.dlq_slug())).await?;
            dir.insert(q, QueueUrls { url, dlq_url });
        }
        Ok(dir)
    }
}

async fn lookup_by_prefix(
    sqs: &aws_sdk_sqs::Client,
    config: &JobsConfig,
    queue: QueueName,
    slug: &str,
) -> Result<String> {
    let prefix = config
        .queue_prefix
        .as_deref()
        .ok_or(Error::QueueNotConfigured(queue.as_str()))?;
    get_queue_url(sqs, &format!("{prefix}{slug}")).await
}

async fn get_queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    let out = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "GetQueueUrl", e))?;
    out.queue_url
        .ok_or_else(|| Error::Config(format!("GetQueueUrl returned no URL for {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_enum_order() {
        for (i, q) in QueueName::ALL.into_iter().enumerate() {
            assert_eq!(CATALOGUE[i].name, q);
            assert_eq!(q.spec().slug, q.as_str());
            assert_eq!(q.as_str().parse::<QueueName>().unwrap(), q);
        }
    }

    #[test]
    fn retry_policies_match_the_original_system() {
        let fp = QueueName::FileProcessing.spec().retry;
        assert_eq!(fp.max_attempts, 3);
        assert_eq!(
            [1, 2, 3].map(|a| fp.visibility_after_failure(a)),
            [2, 4, 0],
            "exponential from 2 s, final attempt goes straight to the DLQ"
        );
        let ai = QueueName::AiTraining.spec().retry;
        assert_eq!(ai.max_attempts, 1);
        assert_eq!(ai.visibility_after_failure(1), 0);
        let si = QueueName::SearchIndexing.spec().retry;
        assert_eq!((si.max_attempts, si.visibility_after_failure(1)), (2, 5));
        assert_eq!(si.visibility_after_failure(2), 0);
        let nt = QueueName::Notifications.spec().retry;
        assert_eq!(nt.max_attempts, 3);
        assert_eq!([1, 2, 3].map(|a| nt.visibility_after_failure(a)), [1, 2, 0]);
        let rp = QueueName::Reports.spec().retry;
        assert_eq!((rp.max_attempts, rp.visibility_after_failure(1)), (2, 30));
    }

    #[test]
    fn exponential_backoff_is_capped() {
        let b = Backoff::Exponential {
            base_secs: 2,
            max_secs: 900,
        };
        assert_eq!(b.delay_secs(1), 2);
        assert_eq!(b.delay_secs(5), 32);
        assert_eq!(b.delay_secs(40), 900);
        assert_eq!(b.delay_secs(u32::MAX), 900);
        let huge = Backoff::Fixed { secs: u32::MAX };
        assert_eq!(huge.delay_secs(1), MAX_VISIBILITY_SECS);
    }

    #[test]
    fn every_job_type_is_listed_by_its_queue() {
        for t in JobType::ALL {
            assert!(t.queue().spec().job_types.contains(&t), "{t}");
        }
        for spec in CATALOGUE {
            assert!(spec.visibility_timeout_secs >= spec.function_timeout_secs * 6);
            assert!((1..=10).contains(&spec.batch_size));
            assert!(spec.max_concurrency >= 2);
            assert!(spec.url_env.ends_with("_QUEUE_URL") && spec.dlq_url_env.ends_with("_DLQ_URL"));
        }
    }

    #[test]
    fn directory_reports_unconfigured_queues() {
        let mut dir = QueueDirectory::new();
        assert!(matches!(
            dir.get(QueueName::Reports),
            Err(Error::QueueNotConfigured("reports"))
        ));
        dir.insert(
            QueueName::Reports,
            QueueUrls {
                url: "u".into(),
                dlq_url: "d".into(),
            },
        );
        assert_eq!(dir.get(QueueName::Reports).unwrap().dlq_url, "d");
        assert_eq!(dir.iter().count(), 1);
    }
}
