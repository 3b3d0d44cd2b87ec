//! The `send-notification` job payload.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::NotificationsError;

/// Longest `kind` accepted (a machine-readable tag such as `report.ready`).
pub const MAX_KIND_CHARS: usize = 64;
/// Longest title accepted.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest body accepted.
pub const MAX_BODY_CHARS: usize = 10_000;
/// Largest `data` document accepted, serialised (keeps rows and webhook bodies small).
pub const MAX_DATA_BYTES: usize = 16 * 1024;
/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Payload of a `send-notification` job: what to tell whom, and through which channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendNotification {
    /// Recipient (`users.id`).
    pub user_id: Uuid,
    /// Machine-readable kind, e.g. `report.ready`, `file.processed`.
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Longer text (plain text; also the email body).
    #[serde(default)]
    pub body: String,
    /// Structured details for clients (links, ids); a JSON object.
    #[serde(default = "empty_object")]
    pub data: Value,
    /// Where to deliver; in-app only unless said otherwise.
    #[serde(default)]
    pub channels: Channels,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Delivery channels of one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// Store it in `notifications` for the in-app list (default true).
    #[serde(default = "yes")]
    pub in_app: bool,
    /// Send an email; `None` (the default) sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailChannel>,
    /// POST a signed JSON document to this URL; `None` (the default) sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
}

fn yes() -> bool {
    true
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            in_app: true,
            email: None,
            webhook: None,
        }
    }
}

/// The email channel: `{}` mails the user's address from `users`, `{"to": ".."}` overrides it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    /// Address override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The webhook channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// Receiver URL (http or https).
    pub url: String,
}

impl SendNotification {
    /// An in-app-only notification with empty body and data.
    pub fn new(user_id: Uuid, kind: impl Into<String>, title: impl Into<String>) -> Self {
        SendNotification {
            user_id,
            kind: kind.into(),
            title: title.into(),
            body: String::new(),
            data: empty_object(),
            channels: Channels::default(),
        }
    }

    /// Sets the body text.
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the structured data (should be a JSON object).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// Also emails the user (at `to`, or at their address in `users`).
    pub fn with_email(mut self, to: Option<String>) -> Self {
        self.channels.email = Some(EmailChannel { to });
        self
    }

    /// Also posts a signed webhook to `url`.
    pub fn with_webhook(mut self, url: impl Into<String>) -> Self {
        self.channels.webhook = Some(WebhookChannel { url: url.into() });
        self
    }

    /// Turns the in-app channel on or off.
    pub fn in_app(mut self, on: bool) -> Self {
        self.channels.in_app = on;
        self
    }

    /// Checks sizes and formats; a failure is permanent (the same payload always fails).
    pub fn validate(&self) -> Result<(), NotificationsError> {
        let bad = |m: String| Err(NotificationsError::Invalid(m));
        let kind_len = self.kind.chars().count();
        if kind_len == 0 || kind_len > MAX_KIND_CHARS {
            return bad(format!("kind must have 1 to {MAX_KIND_CHARS} characters"));
        }
        let title_len = self.title.trim().chars().count();
        if title_len == 0 || self.title.chars().count() > MAX_TITLE_CHARS {
            return bad(format!("title must have 1 to {MAX_TITLE_CHARS} characters"));
        }
        if self.body.chars().count() > MAX_BODY_CHARS {
            return bad(format!("body is longer than {MAX_BODY_CHARS} characters"));
        }
        if !self.data.is_object() {
            return bad("data must be a JSON object".into());
        }
        if self.data.to_string().len() > MAX_DATA_BYTES {
            return bad(format!("data is larger than {MAX_DATA_BYTES} bytes"));
        }
        if let Some(EmailChannel { to: Some(to) }) = &self.channels.email {
            validate_email(to)?;
        }
        if let Some(hook) = &self.channels.webhook {
            validate_webhook_url(&hook.url)?;
        }
        if !self.channels.in_app && self.channels.email.is_none() && self.channels.webhook.is_none()
        {
            return bad("no channel selected".into());
        }
        Ok(())
    }
}

/// A plausible single address: one `@`, no spaces or header-breaking characters.
pub(crate) fn validate_email(address: &str) -> Result<(), NotificationsError> {
    let ok = address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>')
        && matches!(address.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(NotificationsError::Invalid(format!(
            "{address:?} is not an email address"
        )))
    }
}

/// Only absolute http(s) URLs; anything else cannot be delivered.
pub(crate) fn validate_webhook_url(url: &str) -> Result<reqwest::Url, NotificationsError> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(NotificationsError::Invalid(format!(
            "webhook URL is longer than {MAX_URL_CHARS} characters"
        )));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| NotificationsError::Invalid(format!("webhook URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(NotificationsError::Invalid(format!(
            "webhook URL {url:?} must be http(s) with a host"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_payload_defaults_to_in_app_only() {
        let id = Uuid::new_v4();
        let p: SendNotification =
            serde_json::from_value(json!({"user_id": id, "kind": "k", "title": "t"})).unwrap();
        assert_eq!(p, SendNotification::new(id, "k", "t"));
        assert!(p.channels.in_app && p.channels.email.is_none() && p.channels.webhook.is_none());
        p.validate().unwrap();
    }

    #[test]
    fn channels_parse_and_round_trip() {
        let id = Uuid::new_v4();
        let p = SendNotification::new(id, "report.ready", "Ready")
            .with_email(None)
            .with_webhook("https://hooks.example.com/x")
            .in_app(false);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["channels"]["email"], json!({}));
        assert_eq!(
            v["channels"]["webhook"]["url"],
            "https://hooks.example.com/x"
        );
        let back: SendNotification = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        back.validate().unwrap();
    }

    #[test]
    fn invalid_payloads_are_refused() {
        let id = Uuid::new_v4();
        let base = SendNotification::new(id, "k", "t");
        let cases = [
            SendNotification {
                title: " ".into(),
                ..base.clone()
            },
            SendNotification {
                kind: String::new(),
                ..base.clone()
            },
            SendNotification {
                data: json!([1]),
                ..base.clone()
            },
            base.clone().with_webhook("ftp://x.example.com/"),
            base.clone().with_webhook("not a url"),
            base.clone().with_email(Some("nobody".into())),
            base.clone()
                .with_email(Some("a@b.com\r\nBcc: x@y.com".into())),
            base.clone().in_app(false),
        ];
        for c in cases {
            assert!(
                matches!(c.validate(), Err(NotificationsError::Invalid(_))),
                "{c:?}"
            );
        }
        assert!(
            serde_json::from_value::<SendNotification>(
                json!({"user_id": id, "kind": "k", "title": "t", "channels": {"sms": true}})
            )
            .is_err()
        );
    }
}
