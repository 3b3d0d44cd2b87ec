//! Settings read from the environment (and the webhook secret from Secrets Manager).

use std::time::Duration;

use aws_config::SdkConfig;

use crate::NotificationsError;
use crate::webhook::DEFAULT_TIMEOUT;

/// Env var: sender address of notification emails.
pub const ENV_EMAIL_FROM: &str = "NOTIFICATIONS_EMAIL_FROM";
/// Env var: the webhook signing secret itself.
pub const ENV_WEBHOOK_SECRET: &str = "NOTIFICATIONS_WEBHOOK_SECRET";
/// Env var: ARN (or name) of a Secrets Manager secret holding the signing secret.
pub const ENV_WEBHOOK_SECRET_ARN: &str = "NOTIFICATIONS_WEBHOOK_SECRET_ARN";
/// Env var: webhook time limit in milliseconds (default 5000).
pub const ENV_WEBHOOK_TIMEOUT_MS: &str = "NOTIFICATIONS_WEBHOOK_TIMEOUT_MS";

/// What the notifications handler needs to know.
#[derive(Clone, Default)]
pub struct NotificationsConfig {
    /// Sender of emails; without it, jobs asking for email fail permanently.
    pub email_from: Option<String>,
    /// HMAC key of webhook signatures; without it, jobs asking for a webhook fail permanently
    /// (an unsigned webhook could not be told apart from a forged one).
    pub webhook_secret: Option<Vec<u8>>,
    /// Time limit of one webhook delivery.
    pub webhook_timeout: Duration,
}

impl std::fmt::Debug for NotificationsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsConfig")
            .field("email_from", &self.email_from)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<set>"),
            )
            .field("webhook_timeout", &self.webhook_timeout)
            .finish()
    }
}

impl NotificationsConfig {
    /// Reads the env vars; a secret ARN is resolved through Secrets Manager (once, at start-up).
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, NotificationsError> {
        let (mut config, arn) = Self::from_lookup(|k| std::env::var(k).ok())?;
        if config.webhook_secret.is_none()
            && let Some(arn) = arn
        {
            config.webhook_secret = Some(fetch_secret(sdk, &arn).await?);
        }
        Ok(config)
    }

    /// Reads settings through `lookup`; also returns the secret ARN still to resolve, if any.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Option<String>), NotificationsError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let webhook_timeout = match get(ENV_WEBHOOK_TIMEOUT_MS) {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (1..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    return Err(NotificationsError::Config(format!(
                        "{ENV_WEBHOOK_TIMEOUT_MS}={v:?} must be 1 to 60000 milliseconds"
                    )));
                }
            },
        };
        let email_from = get(ENV_EMAIL_FROM);
        if let Some(from) = &email_from {
            crate::payload::validate_email(from)
                .map_err(|e| NotificationsError::Config(format!("{ENV_EMAIL_FROM}: {e}")))?;
        }
        // Not trimmed: a secret is used byte for byte.
        let secret = lookup(ENV_WEBHOOK_SECRET)
            .filter(|v| !v.is_empty())
            .map(String::into_bytes);
        Ok((
            NotificationsConfig {
                email_from,
                webhook_secret: secret,
                webhook_timeout,
            },
            get(ENV_WEBHOOK_SECRET_ARN),
        ))
    }
}

async fn fetch_secret(sdk: &SdkConfig, arn: &str) -> Result<Vec<u8>, NotificationsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            NotificationsError::Config(format!(
                "reading {ENV_WEBHOOK_SECRET_ARN} {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    match (out.secret_string(), out.secret_binary()) {
        (Some(s), _) if !s.is_empty() => Ok(s.as_bytes().to_vec()),
        (_, Some(b)) if !b.as_ref().is_empty() => Ok(b.as_ref().to_vec()),
        _ => Err(NotificationsError::Config(format!("secret {arn} is empty"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_and_values() {
        let (c, arn) = NotificationsConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.webhook_timeout, Duration::from_secs(5));
        assert!(c.email_from.is_none() && c.webhook_secret.is_none() && arn.is_none());
        let (c, arn) = NotificationsConfig::from_lookup(lookup(&[
            (ENV_EMAIL_FROM, "noreply@cad.example.com"),
            (ENV_WEBHOOK_SECRET, " s "),
            (ENV_WEBHOOK_SECRET_ARN, "arn:x"),
            (ENV_WEBHOOK_TIMEOUT_MS, "250"),
        ]))
        .unwrap();
        assert_eq!(c.webhook_secret.as_deref(), Some(&b" s "[..]));
        assert_eq!(c.webhook_timeout, Duration::from_millis(250));
        assert_eq!(arn.as_deref(), Some("arn:x"));
        assert!(
            !format!("{c:?}").contains(" s "),
            "secret must not be printed"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for pairs in [
            [(ENV_WEBHOOK_TIMEOUT_MS, "0")],
            [(ENV_WEBHOOK_TIMEOUT_MS, "soon")],
            [(ENV_EMAIL_FROM, "not-an-address")],
        ] {
            assert!(NotificationsConfig::from_lookup(lookup(&pairs)).is_err());
        }
    }
}
