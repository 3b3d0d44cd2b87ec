//! The `send-notification` job handler.
//!
//! Channels run in this order, chosen so a retry after a partial failure repeats as little as
//! possible: in-app (idempotent: the row's id is the job id), then the webhook (receivers can
//! drop repeats by `X-Cad-Delivery`), then email last (SES has no idempotency key, so it is
//! only sent once everything retryable before it has succeeded). A transient failure returns
//! at once (retry); a permanent webhook failure does not stop the email, but the job then ends
//! as a permanent failure naming what was and was not delivered.

use std::time::Duration;

use aws_config::SdkConfig;
use jobs::{Job, JobContext, JobError, JobHandler, JobResult, JobType};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::email::EmailSender;
use crate::payload::SendNotification;
use crate::repo::{self, NewNotification};
use crate::webhook::{WebhookSender, http_client};
use crate::{NotificationsConfig, NotificationsError};

/// What a job delivered (stored as the job's result).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// The in-app notification's id (the job id), when that channel was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<Uuid>,
    /// False when the row already existed (a retried job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_app_inserted: Option<bool>,
    /// HTTP status the webhook receiver answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_status: Option<u16>,
    /// SES message id of the email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_message_id: Option<String>,
}

/// Runs `send-notification` jobs; build once per process and share.
#[derive(Debug, Clone)]
pub struct NotificationsHandler {
    pool: PgPool,
    webhook: Option<WebhookSender>,
    email: Option<EmailSender>,
}

impl NotificationsHandler {
    /// A handler over the given clients. `http` should come from [`http_client`] (no redirects).
    pub fn new(
        pool: PgPool,
        http: reqwest::Client,
        ses: aws_sdk_sesv2::Client,
        config: &NotificationsConfig,
    ) -> Self {
        NotificationsHandler {
            pool,
            webhook: config
                .webhook_secret
                .clone()
                .map(|secret| WebhookSender::new(http, secret, config.webhook_timeout)),
            email: config
                .email_from
                .clone()
                .map(|from| EmailSender::new(ses, from)),
        }
    }

    /// A handler configured from env vars (see [`NotificationsConfig::from_env`]).
    pub async fn from_env(pool: PgPool, sdk: &SdkConfig) -> Result<Self, NotificationsError> {
        let config = NotificationsConfig::from_env(sdk).await?;
        let http = http_client(config.webhook_timeout)?;
        // SES calls must not hang the worker: bound them like the other SDK clients.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(20))
            .build();
        let ses = aws_sdk_sesv2::Client::from_conf(
            aws_sdk_sesv2::config::Builder::from(sdk)
                .timeout_config(timeouts)
                .build(),
        );
        Ok(Self::new(pool, http, ses, &config))
    }

    /// Delivers one job's notification; the error says whether a retry can help.
    pub async fn deliver(&self, job: &Job) -> Result<DeliveryReport, NotificationsError> {
        if job.job_type != JobType::SendNotification {
            return Err(NotificationsError::Invalid(format!(
                "a {} job sent to the notifications handler",
                job.job_type
            )));
        }
        let n: SendNotification = serde_json::from_value(job.payload.clone())
            .map_err(|e| NotificationsError::Invalid(format!("payload: {e}")))?;
        n.validate()?;
        let mut report = DeliveryReport::default();

        if n.channels.in_app {
            let inserted = repo::insert(
                &self.pool,
                &NewNotification {
                    id: job.id,
                    user_id: n.user_id,
                    kind: &n.kind,
                    title: &n.title,
                    body: &n.body,
                    data: &n.data,
                },
            )
            .await?;
            report.notification_id = Some(job.id);
            report.in_app_inserted = Some(inserted);
        }

        let mut webhook_refused = None;
        if let Some(hook) = &n.channels.webhook {
            let sender = self.webhook.as_ref().ok_or_else(|| {
                NotificationsError::Config(format!(
                    "webhook requested but no signing secret is configured ({} or {})",
                    crate::config::ENV_WEBHOOK_SECRET,
                    crate::config::ENV_WEBHOOK_SECRET_ARN
                ))
            })?;
            let body = webhook_body(job, &n);
            match sender.deliver(&hook.url, job.id, &n.kind, &body).await {
                Ok(d) => report.webhook_status = Some(d.status),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => webhook_refused = Some(e),
            }
        }

        if let Some(channel) = &n.channels.email {
            let sender = self.email.as_ref().ok_or_else(|| {
                NotificationsError::Config(format!(
                    "email requested but {} is not set",
                    crate::config::ENV_EMAIL_FROM
                ))
            })?;
            let to = match &channel.to {
                Some(to) => to.clone(),
                None => repo::user_email(&self.pool, n.user_id)
                    .await?
                    .ok_or(NotificationsError::UnknownRecipient(n.user_id))?,
            };
            let text = if n.body.trim().is_empty() {
                &n.title
            } else {
                &n.body
            };
            report.email_message_id = Some(sender.send(&to, &n.title, text).await?);
        }

        match webhook_refused {
            None => Ok(report),
            Some(e) => Err(NotificationsError::WebhookPermanent(format!(
                "{e} (delivered otherwise: {})",
                serde_json::to_string(&report).unwrap_or_default()
            ))),
        }
    }
}

/// The JSON document a webhook receiver gets.
fn webhook_body(job: &Job, n: &SendNotification) -> Vec<u8> {
    json!({
        "id": job.id,
        "kind": n.kind,
        "user_id": n.user_id,
        "title": n.title,
        "body": n.body,
        "data": n.data,
        "created_at": jobs::envelope::format_time(&job.created_at),
    })
    .to_string()
    .into_bytes()
}

impl JobHandler for NotificationsHandler {
    async fn handle(&self, job: Job, ctx: JobContext) -> JobResult {
        match self.deliver(&job).await {
            Ok(report) => {
                tracing::info!(user_id = ?job.user_id, ?report, "notification delivered");
                Ok(Some(
                    serde_json::to_value(report).map_err(JobError::permanent)?,
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt = ctx.attempt(), transient = e.is_transient(), "notification failed");
                Err(e.into())
            }
        }
    }
}
