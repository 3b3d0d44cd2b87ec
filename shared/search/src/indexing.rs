//! The search-indexing worker's job handler: keeps each file's search document current and drops
//! exactly the cached searches a change can affect.

use files::IndexFile;
use jobs::{Job, JobContext, JobError, JobHandler, JobResult, JobType};
use response_pipeline::{Invalidator, tags};
use serde_json::json;
use sqlx::PgPool;

use crate::document::{index_file, reindex_all};

/// Files per statement of a bulk reindex.
const REINDEX_BATCH: i64 = 500;

/// Handles `index-file` and `reindex-all` jobs.
#[derive(Debug, Clone)]
pub struct IndexingHandler {
    pool: PgPool,
    invalidator: Invalidator,
}

impl IndexingHandler {
    /// A handler over the process's pool and cache.
    pub fn new(pool: PgPool, invalidator: Invalidator) -> Self {
        Self { pool, invalidator }
    }

    /// Runs one job.
    pub async fn run(&self, job: Job, ctx: JobContext) -> JobResult {
        match job.job_type {
            JobType::IndexFile => {
                let IndexFile { file_id } = job.payload_as()?;
                let outcome = index_file(&self.pool, file_id).await.map_err(retryable)?;
                let affected = outcome.affected_terms();
                let tags: Vec<String> = affected.iter().map(|t| tags::search_term(t)).collect();
                self.invalidator.invalidate(&tags).await;
                Ok(Some(json!({
                    "file_id": file_id,
                    "found": outcome.found,
                    "terms": outcome.terms_after.len(),
                    "invalidated_terms": affected.len(),
                })))
            }
            JobType::ReindexAll => {
                let done = reindex_all(&self.pool, REINDEX_BATCH, |p| {
                    let ctx = ctx.clone();
                    async move {
                        let pct = (p.done * 100).checked_div(p.total).unwrap_or(100).min(99) as u8;
                        // Progress is informative; a tracking hiccup must not fail the reindex.
                        let _ = ctx
                            .progress(pct, format!("{} of {} files", p.done, p.total))
                            .await;
                    }
                })
                .await
                .map_err(retryable)?;
                self.invalidator.invalidate(&[tags::search_all()]).await;
                Ok(Some(json!({"reindexed": done})))
            }
            other => Err(JobError::permanent(format!(
                "the search-indexing worker does not handle {} jobs",
                other.as_str()
            ))),
        }
    }
}

impl JobHandler for IndexingHandler {
    fn handle(&self, job: Job, ctx: JobContext) -> impl Future<Output = JobResult> + Send {
        self.run(job, ctx)
    }
}

fn retryable(e: crate::SearchError) -> JobError {
    JobError::retryable(e)
}
