//! The `generate-report` job handler: query, render, upload, presign, notify.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use jobs::{Job, JobContext, JobError, JobHandler, JobResult, JobType};
use notifications::{Notifier, SendNotification};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use storage::ObjectStore;

use crate::ReportsError;
use crate::payload::{GenerateReport, ReportKind};
use crate::queries;
use crate::table::{Report, Scope};

/// Env var: bucket for reports (falls back to `UPLOADS_BUCKET`).
pub const ENV_BUCKET: &str = "REPORTS_BUCKET";
/// Env var: the fallback bucket.
pub const ENV_UPLOADS_BUCKET: &str = "UPLOADS_BUCKET";
/// Env var: lifetime of download links in seconds (default 86400).
pub const ENV_LINK_TTL_SECS: &str = "REPORTS_LINK_TTL_SECS";
/// Default lifetime of a download link.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest lifetime SigV4 allows a presigned URL.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Kind of the notification sent when a report is ready.
pub const READY_KIND: &str = "report.ready";

/// Settings of the reports handler.
#[derive(Debug, Clone)]
pub struct ReportsConfig {
    /// Bucket the files go to.
    pub bucket: String,
    /// Lifetime of the presigned download links. Links signed with temporary credentials (a
    /// Lambda role's) stop working when those expire, which can be sooner.
    pub link_ttl: Duration,
}

impl ReportsConfig {
    /// Reads `REPORTS_BUCKET` (or `UPLOADS_BUCKET`) and `REPORTS_LINK_TTL_SECS`.
    pub fn from_env() -> Result<Self, ReportsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ReportsError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let bucket = get(ENV_BUCKET)
            .or_else(|| get(ENV_UPLOADS_BUCKET))
            .ok_or_else(|| {
                ReportsError::Config(format!("{ENV_BUCKET} (or {ENV_UPLOADS_BUCKET}) is not set"))
            })?;
        let link_ttl = match get(ENV_LINK_TTL_SECS) {
            None => DEFAULT_LINK_TTL,
            Some(v) => match v.parse::<u64>() {
                Ok(s) if (60..=MAX_LINK_TTL.as_secs()).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(ReportsError::Config(format!(
                        "{ENV_LINK_TTL_SECS}={v:?} must be 60 to {} seconds",
                        MAX_LINK_TTL.as_secs()
                    )));
                }
            },
        };
        Ok(ReportsConfig { bucket, link_ttl })
    }
}

/// One file written for a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportFile {
    /// Table it holds (`all` for the JSON document).
    pub table: String,
    /// `csv` or `json`.
    pub format: &'static str,
    /// S3 key.
    pub key: String,
    /// Content type stored with it.
    pub content_type: &'static str,
    /// Size in bytes.
    pub bytes: usize,
    /// Data rows (CSV: without the header; JSON: over all tables).
    pub rows: usize,
    /// Presigned GET URL.
    pub url: String,
}

/// What a report job produced (stored as the job's result, sent in the notification's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportOutcome {
    /// Which report.
    pub kind: ReportKind,
    /// Every file, main one first.
    pub files: Vec<ReportFile>,
    /// Download link of the main file.
    pub url: String,
    /// When the links expire (RFC 3339).
    pub expires_at: String,
    /// True when a table was cut at its row limit.
    pub truncated: bool,
    /// The ready notification's job id, if one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_job_id: Option<uuid::Uuid>,
}

/// Runs `generate-report` jobs; build once per process and share.
#[derive(Debug, Clone)]
pub struct ReportsHandler {
    pool: PgPool,
    store: ObjectStore,
    notifier: Option<Notifier>,
    config: ReportsConfig,
}

impl ReportsHandler {
    /// A handler writing to `store` (its bucket should be `config.bucket`); without a notifier
    /// no ready notification is sent.
    pub fn new(
        pool: PgPool,
        store: ObjectStore,
        notifier: Option<Notifier>,
        config: ReportsConfig,
    ) -> Self {
        ReportsHandler {
            pool,
            store,
            notifier,
            config,
        }
    }

    /// A handler configured from env vars ([`ReportsConfig::from_env`]), with its own S3 client.
    pub fn from_env(
        pool: PgPool,
        sdk: &aws_config::SdkConfig,
        notifier: Option<Notifier>,
    ) -> Result<Self, ReportsError> {
        let config = ReportsConfig::from_env()?;
        let store = ObjectStore::new(storage::s3_client(sdk), config.bucket.clone());
        Ok(Self::new(pool, store, notifier, config))
    }

    /// Reads the payload, checks the requester, generates and stores the report, and enqueues
    /// the ready notification. `ctx` (when running under the worker runtime) gets progress.
    pub async fn generate(
        &self,
        job: &Job,
        ctx: Option<&JobContext>,
    ) -> Result<ReportOutcome, ReportsError> {
        if job.job_type != JobType::GenerateReport {
            return Err(ReportsError::invalid(
                "type",
                format!("a {} job sent to the reports handler", job.job_type),
            ));
        }
        let p: GenerateReport = serde_json::from_value(job.payload.clone())
            .map_err(|e| ReportsError::invalid("payload", e.to_string()))?;
        let progress = |pct: u8, msg: &'static str| async move {
            if let Some(ctx) = ctx {
                // Progress is informative; failing to record it must not fail the report.
                let _ = ctx.progress(pct, msg).await;
            }
        };

        // Checked again here, not only at the route: the role may have changed since.
        let role = queries::active_role(&self.pool, p.requested_by)
            .await?
            .ok_or_else(|| {
                ReportsError::Forbidden("the requester is unknown or inactive".into())
            })?;
        let admin = role == "admin";
        if p.kind == ReportKind::Audit && !admin {
            return Err(ReportsError::Forbidden(
                "audit reports are for admins".into(),
            ));
        }
        let (scope, only) = if admin {
            (Scope::All, None)
        } else {
            (Scope::Own, Some(p.requested_by))
        };

        progress(10, "querying").await;
        let generated_at = Utc::now();
        let tables = match p.kind {
            ReportKind::Usage => queries::usage(&self.pool, &p.range, only).await?,
            ReportKind::Performance => queries::performance(&self.pool, &p.range, only).await?,
            ReportKind::Audit => queries::audit(&self.pool, &p.range).await?,
        };
        let report = Report {
            kind: p.kind,
            range: p.range,
            generated_at,
            scope,
            tables,
        };

        progress(60, "writing files").await;
        let base = format!("reports/{}/{}", p.requested_by, job.id);
        let mut files = Vec::new();
        let expires_at = (Utc::now()
            + chrono::Duration::from_std(self.config.link_ttl).unwrap_or(chrono::Duration::zero()))
        .to_rfc3339_opts(SecondsFormat::Secs, true);
        if p.format.csv() {
            for (i, table) in report.tables.iter().enumerate() {
                // The main table keeps the plain name; the others get theirs appended.
                let key = if i == 0 {
                    format!("{base}.csv")
                } else {
                    format!("{base}.{}.csv", table.name)
                };
                let body = table.to_csv()?;
                let filename = format!("{}-report-{}.csv", p.kind.as_str(), table.name);
                files.push(
                    self.put(
                        &key,
                        body,
                        "text/csv; charset=utf-8",
                        &filename,
                        table.name,
                        "csv",
                        table.rows.len(),
                    )
                    .await?,
                );
            }
        }
        if p.format.json() {
            let key = format!("{base}.json");
            let body = report.to_json()?;
            let rows = report.tables.iter().map(|t| t.rows.len()).sum();
            let filename = format!("{}-report.json", p.kind.as_str());
            files.push(
                self.put(
                    &key,
                    body,
                    "application/json",
                    &filename,
                    "all",
                    "json",
                    rows,
                )
                .await?,
            );
        }
        let url = files.first().map(|f| f.url.clone()).unwrap_or_default();
        let mut outcome = ReportOutcome {
            kind: p.kind,
            url,
            expires_at,
            truncated: report.tables.iter().any(|t| t.truncated),
            files,
            notification_job_id: None,
        };

        if let Some(notifier) = &self.notifier {
            progress(90, "notifying").await;
            let title = format!("Your {} report is ready", p.kind.as_str());
            let n = SendNotification::new(p.requested_by, READY_KIND, title)
                .with_body(format!(
                    "The {} report for {} to {} can be downloaded until {}.",
                    p.kind.as_str(),
                    p.range.from,
                    p.range.to,
                    outcome.expires_at
                ))
                .with_data(json!({
                    "job_id": job.id,
                    "report": p.kind,
                    "url": outcome.url,
                    "expires_at": outcome.expires_at,
                    "truncated": outcome.truncated,
                    "files": outcome.files.iter().map(|f| json!({
                        "table": f.table, "format": f.format, "url": f.url, "rows": f.rows,
                    })).collect::<Vec<_>>(),
                }));
            let corr = (!job.correlation_id.is_empty()).then_some(job.correlation_id.as_str());
            outcome.notification_job_id = Some(notifier.notify_once(job.id, &n, corr).await?);
        }
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
        filename: &str,
        table: &str,
        format: &'static str,
        rows: usize,
    ) -> Result<ReportFile, ReportsError> {
        let bytes = body.len();
        self.store.put(key, body, content_type).await?;
        let link = self
            .store
            .presign_get(key, filename, self.config.link_ttl)
            .await?;
        Ok(ReportFile {
            table: table.to_owned(),
            format,
            key: key.to_owned(),
            content_type,
            bytes,
            rows,
            url: link.url,
        })
    }
}

impl JobHandler for ReportsHandler {
    async fn handle(&self, job: Job, ctx: JobContext) -> JobResult {
        match self.generate(&job, Some(&ctx)).await {
            Ok(outcome) => {
                tracing::info!(
                    kind = outcome.kind.as_str(),
                    files = outcome.files.len(),
                    "report ready"
                );
                Ok(Some(
                    serde_json::to_value(outcome).map_err(JobError::permanent)?,
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, transient = e.is_transient(), "report failed");
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_env_vars() {
        let c =
            ReportsConfig::from_lookup(|k| (k == ENV_UPLOADS_BUCKET).then(|| "up".into())).unwrap();
        assert_eq!((c.bucket.as_str(), c.link_ttl), ("up", DEFAULT_LINK_TTL));
        let c = ReportsConfig::from_lookup(|k| match k {
            ENV_BUCKET => Some("rep".into()),
            ENV_UPLOADS_BUCKET => Some("up".into()),
            ENV_LINK_TTL_SECS => Some("3600".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.link_ttl),
            ("rep", Duration::from_secs(3600))
        );
        assert!(ReportsConfig::from_lookup(|_| None).is_err());
        assert!(
            ReportsConfig::from_lookup(|k| match k {
                ENV_BUCKET => Some("b".into()),
                ENV_LINK_TTL_SECS => Some("999999999".into()),
                _ => None,
            })
            .is_err()
        );
    }
}
