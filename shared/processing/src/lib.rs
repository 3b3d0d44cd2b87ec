//! The file-processing worker's job. For one uploaded version of a CAD file it reads the object
//! from S3 (the guide's 100 MB limit enforced before a byte is read), recognises the format by its
//! signature, measures it with the geometry crate, renders the responsive thumbnails, stores them
//! under content-addressed keys (so a CDN can cache them forever and nothing ever needs a CDN
//! invalidation), records `ready` or `failed` with a reason a person can act on, drops the
//! file's cached responses, queues search reindexing and notifies the owner.

use files::{CadFile, FileJobs, FileVersion, ProcessFile};
use geometry::{Model, RenderOptions};
use jobs::{Job, JobContext, JobError, JobHandler, JobResult, JobType};
use notifications::{Notifier, SendNotification};
use response_pipeline::{Invalidator, tags};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use storage::ObjectStore;

/// The guide's upload limit; larger objects are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Thumbnails are content-addressed: a key never changes meaning, so caches may keep it forever.
const THUMBNAIL_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Why processing could not finish this attempt.
#[derive(Debug, thiserror::Error)]
pub enum ProcessingError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// S3 failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// A job could not be queued.
    #[error("queue: {0}")]
    Queue(String),
    /// A blocking task died.
    #[error("worker task: {0}")]
    Task(String),
}

impl From<ProcessingError> for JobError {
    fn from(e: ProcessingError) -> Self {
        // Everything here is a dependency failing: worth the queue's retries.
        JobError::retryable(e)
    }
}

/// Settings of the file-processing worker.
#[derive(Debug, Clone)]
pub struct ProcessingConfig {
    /// Thumbnail widths (`THUMBNAIL_WIDTHS`, comma-separated; default 320,640,1024).
    pub widths: Vec<u32>,
    /// Public base URL of the CDN in front of the bucket (`CDN_DOMAIN`, e.g.
    /// `https://d111.cloudfront.net`); without it thumbnails have keys but no URL, and clients
    /// fetch them through GET /api/files/{id}/thumbnail.
    pub cdn_domain: Option<String>,
    /// Largest object processed.
    pub max_bytes: u64,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            widths: geometry::render::DEFAULT_WIDTHS.to_vec(),
            cdn_domain: None,
            max_bytes: MAX_FILE_BYTES,
        }
    }
}

impl ProcessingConfig {
    /// Reads `THUMBNAIL_WIDTHS` and `CDN_DOMAIN`.
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::default();
        if let Ok(raw) = std::env::var("THUMBNAIL_WIDTHS")
            && !raw.trim().is_empty()
        {
            config.widths = raw
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("THUMBNAIL_WIDTHS: {w:?} is not a width"))
                })
                .collect::<Result<_, _>>()?;
        }
        config.cdn_domain = std::env::var("CDN_DOMAIN")
            .ok()
            .map(|d| d.trim().trim_end_matches('/').to_owned())
            .filter(|d| !d.is_empty())
            .map(|d| {
                if d.starts_with("http://") || d.starts_with("https://") {
                    d
                } else {
                    format!("https://{d}")
                }
            });
        Ok(config)
    }
}

/// One stored thumbnail, as recorded in `cad_files.thumbnails`.
#[derive(Debug, Clone, Serialize)]
pub struct StoredThumbnail {
    /// Width (= height) in pixels.
    pub width: u32,
    /// `png` or `webp`.
    pub format: &'static str,
    /// S3 key.
    pub key: String,
    /// CDN URL, when a CDN is configured.
    pub url: Option<String>,
    /// Encoded size.
    pub bytes: usize,
}

/// Handles `process-file` jobs.
#[derive(Clone)]
pub struct ProcessingHandler {
    pool: PgPool,
    store: ObjectStore,
    invalidator: Invalidator,
    file_jobs: FileJobs,
    notifier: Notifier,
    config: ProcessingConfig,
}

impl std::fmt::Debug for ProcessingHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessingHandler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the file turned out to be, for the job result.
enum Verdict {
    Ready { kind: String, thumbnails: usize },
    Failed { reason: String },
}

impl ProcessingHandler {
    /// A handler over the process's clients.
    pub fn new(
        pool: PgPool,
        store: ObjectStore,
        invalidator: Invalidator,
        file_jobs: FileJobs,
        notifier: Notifier,
        config: ProcessingConfig,
    ) -> Self {
        Self {
            pool,
            store,
            invalidator,
            file_jobs,
            notifier,
            config,
        }
    }

    /// Runs one job.
    pub async fn run(&self, job: Job, ctx: JobContext) -> JobResult {
        if job.job_type != JobType::ProcessFile {
            return Err(JobError::permanent(format!(
                "the file-processing worker does not handle {} jobs",
                job.job_type.as_str()
            )));
        }
        let payload: ProcessFile = job.payload_as()?;
        let correlation = job.correlation_id.clone();
        let Some(file) = files::repo::find(&self.pool, payload.file_id)
            .await
            .map_err(JobError::retryable)?
        else {
            // Deleted before its turn came: nothing left to do, and nothing to retry.
            return Ok(Some(
                json!({"file_id": payload.file_id, "skipped": "file deleted"}),
            ));
        };
        let version_no = payload.version.unwrap_or(file.current_version);
        if version_no != file.current_version {
            return Ok(Some(json!({
                "file_id": file.id,
                "skipped": format!("version {version_no} is no longer current"),
            })));
        }
        let version = files::repo::version(&self.pool, file.id, version_no)
            .await
            .map_err(JobError::retryable)?
            .ok_or_else(|| {
                JobError::permanent(format!("file {} has no version {version_no}", file.id))
            })?;

        match self.process(&file, &version, &ctx).await {
            Ok(verdict) => {
                self.after(&job, &file, &verdict, &correlation).await?;
                Ok(Some(match verdict {
                    Verdict::Ready { kind, thumbnails } => json!({
                        "file_id": file.id, "version": version_no, "status": "ready",
                        "kind": kind, "thumbnails": thumbnails,
                    }),
                    Verdict::Failed { reason } => json!({
                        "file_id": file.id, "version": version_no, "status": "failed",
                        "reason": reason,
                    }),
                }))
            }
            Err(e) if ctx.is_final_attempt() => {
                // The message is about to be dead-lettered: the file must not stay `processing`
                // for ever. An operator redriving the job will process it again.
                let reason = format!(
                    "processing could not finish ({e}); it will be retried if an operator redrives the job"
                );
                let verdict = Verdict::Failed { reason };
                self.record_failure(&file, &verdict).await?;
                self.after(&job, &file, &verdict, &correlation).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn process(
        &self,
        file: &CadFile,
        version: &FileVersion,
        ctx: &JobContext,
    ) -> Result<Verdict, ProcessingError> {
        let _ = ctx.progress(5, "reading the upload").await;
        // One GET: its declared length is checked against the limit before the body is read.
        let read = match self.store.get(&version.s3_key, self.config.max_bytes).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => {
                Err("the uploaded object is missing from storage; upload the file again".to_owned())
            }
            Err(storage::StorageError::TooLarge { size, max }) => Err(format!(
                "the file is {size} bytes; the limit is {max} bytes (100 MB)"
            )),
            Err(e) => return Err(e.into()),
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(reason) => {
                let verdict = Verdict::Failed { reason };
                self.record_failure(file, &verdict).await?;
                return Ok(verdict);
            }
        };

        let _ = ctx.progress(25, "measuring the geometry").await;
        let name = version.original_name.clone();
        let analysis = tokio::task::spawn_blocking(move || geometry::analyze(&bytes, Some(&name)))
            .await
            .map_err(|e| ProcessingError::Task(e.to_string()))?;
        let analysis = match analysis {
            Ok(a) => a,
            Err(e) => {
                let verdict = Verdict::Failed {
                    reason: e.to_string(),
                };
                self.record_failure(file, &verdict).await?;
                return Ok(verdict);
            }
        };

        let _ = ctx.progress(55, "rendering thumbnails").await;
        let stored = match analysis.model {
            Model::Nothing => Vec::new(),
            model => {
                let opts = RenderOptions {
                    widths: self.config.widths.clone(),
                    ..RenderOptions::default()
                };
                let rendered = tokio::task::spawn_blocking(move || {
                    geometry::render_thumbnails_with(&model, &opts)
                })
                .await
                .map_err(|e| ProcessingError::Task(e.to_string()))?;
                match rendered {
                    Ok(thumbs) => {
                        let _ = ctx.progress(75, "storing thumbnails").await;
                        self.store_thumbnails(thumbs).await?
                    }
                    Err(e) => {
                        // Metadata is still worth having; the missing picture is logged.
                        tracing::warn!(file_id = %file.id, error = %e, "thumbnails could not be rendered");
                        Vec::new()
                    }
                }
            }
        };

        let _ = ctx.progress(90, "saving the results").await;
        let metadata = serde_json::to_value(&analysis.metadata).unwrap_or(Value::Null);
        let kind = metadata
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let thumbnails = serde_json::to_value(&stored).unwrap_or_else(|_| json!([]));
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE cad_files SET status = 'ready', processing_error = NULL, metadata = $2, \
             thumbnails = $3, sha256 = $4, updated_at = now() \
             WHERE id = $1 AND current_version = $5",
        )
        .bind(file.id)
        .bind(&metadata)
        .bind(&thumbnails)
        .bind(&analysis.metadata.sha256)
        .bind(version.version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE cad_file_versions SET sha256 = $3 WHERE file_id = $1 AND version = $2")
            .bind(file.id)
            .bind(version.version)
            .bind(&analysis.metadata.sha256)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if updated == 0 {
            tracing::info!(file_id = %file.id, "a newer version arrived while processing; its own job will record it");
        }
        Ok(Verdict::Ready {
            kind,
            thumbnails: stored.len(),
        })
    }

    async fn store_thumbnails(
        &self,
        thumbs: Vec<geometry::Thumbnail>,
    ) -> Result<Vec<StoredThumbnail>, ProcessingError> {
        let mut stored = Vec::new();
        for t in thumbs {
            for (format, content_type, bytes) in
                [("png", "image/png", t.png), ("webp", "image/webp", t.webp)]
            {
                if bytes.is_empty() {
                    continue;
                }
                let key = thumbnail_key(&bytes, format);
                let len = bytes.len();
                self.store
                    .put_with_cache_control(
                        &key,
                        bytes,
                        content_type,
                        Some(THUMBNAIL_CACHE_CONTROL),
                    )
                    .await?;
                stored.push(StoredThumbnail {
                    width: t.width,
                    format,
                    url: self
                        .config
                        .cdn_domain
                        .as_ref()
                        .map(|d| format!("{d}/{key}")),
                    key,
                    bytes: len,
                });
            }
        }
        Ok(stored)
    }

    async fn record_failure(
        &self,
        file: &CadFile,
        verdict: &Verdict,
    ) -> Result<(), ProcessingError> {
        let Verdict::Failed { reason } = verdict else {
            return Ok(());
        };
        sqlx::query(
            "UPDATE cad_files SET status = 'failed', processing_error = $2, updated_at = now() \
             WHERE id = $1",
        )
        .bind(file.id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cache invalidation, search reindexing and the owner's notification, for either outcome.
    async fn after(
        &self,
        job: &Job,
        file: &CadFile,
        verdict: &Verdict,
        correlation: &str,
    ) -> Result<(), ProcessingError> {
        let facts = files::file_facts(file);
        self.invalidator
            .invalidate(&tags::for_file_change(Some(&facts), Some(&facts)))
            .await;
        self.file_jobs
            .index(file.id, Some(file.uploaded_by), correlation)
            .await
            .map_err(|e| ProcessingError::Queue(e.to_string()))?;
        let note = match verdict {
            Verdict::Ready { kind, thumbnails } => SendNotification::new(
                file.uploaded_by,
                "file.ready",
                format!("{} is ready", file.original_name),
            )
            .with_data(json!({"file_id": file.id, "kind": kind, "thumbnails": thumbnails})),
            Verdict::Failed { reason } => SendNotification::new(
                file.uploaded_by,
                "file.failed",
                format!("{} could not be processed", file.original_name),
            )
            .with_body(reason.clone())
            .with_data(json!({"file_id": file.id})),
        };
        let corr = (!correlation.is_empty()).then_some(correlation);
        self.notifier
            .notify_once(job.id, &note, corr)
            .await
            .map_err(|e| ProcessingError::Queue(e.to_string()))?;
        Ok(())
    }
}

impl JobHandler for ProcessingHandler {
    fn handle(&self, job: Job, ctx: JobContext) -> impl Future<Output = JobResult> + Send {
        self.run(job, ctx)
    }
}

/// `thumbnails/<sha256 of the image>.<ext>`: identical pictures share one object.
pub fn thumbnail_key(bytes: &[u8], ext: &str) -> String {
    format!("thumbnails/{}.{ext}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_keys_are_content_addressed() {
        let a = thumbnail_key(b"one picture", "png");
        assert_eq!(a, thumbnail_key(b"one picture", "png"));
        assert_ne!(a, thumbnail_key(b"another picture", "png"));
        assert!(a.starts_with("thumbnails/") && a.ends_with(".png"));
        assert_eq!(a.len(), "thumbnails/".len() + 64 + ".png".len());
    }

    #[test]
    fn defaults_follow_the_guide() {
        let config = ProcessingConfig::default();
        assert_eq!(config.widths, vec![320, 640, 1024]);
        assert_eq!(config.max_bytes, 104_857_600);
    }
}
