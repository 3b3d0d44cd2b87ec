//! CloudWatch alarm state changes (delivered by SNS to the alarm-notifier function) turned into
//! notifications for the operators: in-app for every active admin, plus the configured webhook
//! and email address, all through the notifications queue (so delivery gets its retries and DLQ).

use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{NotificationsError, Notifier, SendNotification};

/// The fields of a CloudWatch alarm message that a notification needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmMessage {
    /// Alarm name.
    pub alarm_name: String,
    /// What the alarm watches, as configured.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub new_state_value: String,
    /// The state before.
    #[serde(default)]
    pub old_state_value: Option<String>,
    /// CloudWatch's explanation (datapoints and threshold).
    #[serde(default)]
    pub new_state_reason: String,
    /// When it changed.
    #[serde(default)]
    pub state_change_time: Option<String>,
    /// The alarm's ARN.
    #[serde(default)]
    pub alarm_arn: Option<String>,
}

impl AlarmMessage {
    /// Parses the SNS message text of a CloudWatch alarm.
    pub fn parse(text: &str) -> Result<Self, NotificationsError> {
        serde_json::from_str(text).map_err(|e| {
            NotificationsError::Invalid(format!("not a CloudWatch alarm message: {e}"))
        })
    }

    /// `alarm.alarm`, `alarm.ok`, `alarm.insufficient_data`.
    pub fn kind(&self) -> String {
        format!("alarm.{}", self.new_state_value.to_ascii_lowercase())
    }

    /// A one-line title, e.g. `ALARM: cad-platform-prod-file-processing-queue-length`.
    pub fn title(&self) -> String {
        format!("{}: {}", self.new_state_value, self.alarm_name)
    }

    fn body(&self) -> String {
        let mut body = String::new();
        if let Some(d) = self.alarm_description.as_deref().filter(|d| !d.is_empty()) {
            body.push_str(d);
            body.push_str("\n\n");
        }
        body.push_str(&self.new_state_reason);
        if let Some(t) = &self.state_change_time {
            body.push_str(&format!("\n\nChanged at {t}"));
        }
        body
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "alarm": self.alarm_name,
            "state": self.new_state_value,
            "previous_state": self.old_state_value,
            "arn": self.alarm_arn,
            "changed_at": self.state_change_time,
        })
    }
}

/// Where alarm notifications go besides the admins' in-app lists.
#[derive(Debug, Clone, Default)]
pub struct AlarmRouting {
    /// `ALARM_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// `ALARM_EMAIL`.
    pub email: Option<String>,
}

impl AlarmRouting {
    /// Reads `ALARM_WEBHOOK_URL` and `ALARM_EMAIL` (empty means unset).
    pub fn from_env() -> Self {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            webhook_url: get("ALARM_WEBHOOK_URL"),
            email: get("ALARM_EMAIL"),
        }
    }
}

/// The notifications one alarm change produces: one in-app notification per active admin, and
/// one external delivery (webhook and/or email) addressed to the first admin's account.
pub async fn notifications_for(
    pool: &PgPool,
    alarm: &AlarmMessage,
    routing: &AlarmRouting,
) -> Result<Vec<SendNotification>, NotificationsError> {
    let admins: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND is_active ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    let base = |user: Uuid| {
        SendNotification::new(user, alarm.kind(), alarm.title())
            .with_body(alarm.body())
            .with_data(alarm.data())
    };
    let mut out: Vec<SendNotification> = admins.iter().map(|&a| base(a)).collect();
    if (routing.webhook_url.is_some() || routing.email.is_some())
        && let Some(&first) = admins.first()
    {
        let mut external = base(first).in_app(false);
        if let Some(url) = &routing.webhook_url {
            external = external.with_webhook(url.clone());
        }
        if let Some(to) = &routing.email {
            external = external.with_email(Some(to.clone()));
        }
        out.push(external);
    }
    Ok(out)
}

/// Queues the notifications of one alarm message (from SNS message `message_id`, so a redelivered
/// SNS message does not notify twice); returns how many were queued.
pub async fn dispatch(
    pool: &PgPool,
    notifier: &Notifier,
    message_id: &str,
    alarm: &AlarmMessage,
    routing: &AlarmRouting,
) -> Result<usize, NotificationsError> {
    let notes = notifications_for(pool, alarm, routing).await?;
    if notes.is_empty() {
        tracing::warn!(alarm = %alarm.alarm_name, "no active admin and no alarm webhook or email: nobody to notify");
    }
    let cause = Uuid::new_v5(&Uuid::NAMESPACE_URL, message_id.as_bytes());
    for (i, note) in notes.iter().enumerate() {
        // One stable id per (SNS message, recipient slot).
        let id = Uuid::new_v5(&cause, format!("{i}").as_bytes());
        notifier.notify_once(id, note, Some(message_id)).await?;
    }
    Ok(notes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"AlarmName":"cad-platform-prod-file-processing-queue-length","AlarmDescription":"More than 1000 jobs waiting in file-processing","NewStateValue":"ALARM","OldStateValue":"OK","NewStateReason":"Threshold Crossed: 1 out of the last 1 datapoints [1342.0] was greater than the threshold (1000.0).","StateChangeTime":"2026-11-26T10:00:12.345+0000","AlarmArn":"arn:aws:cloudwatch:us-east-1:1:alarm:x","Trigger":{"MetricName":"ApproximateNumberOfMessagesVisible"}}"#;

    #[test]
    fn a_cloudwatch_alarm_message_becomes_a_readable_notification() {
        let a = AlarmMessage::parse(SAMPLE).unwrap();
        assert_eq!(a.kind(), "alarm.alarm");
        assert_eq!(
            a.title(),
            "ALARM: cad-platform-prod-file-processing-queue-length"
        );
        let body = a.body();
        assert!(body.starts_with("More than 1000 jobs waiting"));
        assert!(body.contains("greater than the threshold (1000.0)"));
        assert_eq!(a.data()["previous_state"], "OK");
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(AlarmMessage::parse("{\"hello\":1}").is_err());
        assert!(AlarmMessage::parse("not json").is_err());
    }
}
