//! Webhook delivery: a JSON POST signed with HMAC-SHA256 over `"<timestamp>.<body>"`, sent
//! under a timeout; the answer decides between success, retry and giving up.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use sha2::Sha256;
use uuid::Uuid;

use crate::NotificationsError;
use crate::payload::validate_webhook_url;

/// Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Cad-Signature";
/// Header carrying the signing time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Cad-Timestamp";
/// Header carrying the delivery id (the job id): the same on retries, so receivers can drop repeats.
pub const DELIVERY_HEADER: &str = "X-Cad-Delivery";
/// Header carrying the notification kind.
pub const EVENT_HEADER: &str = "X-Cad-Event";
/// Default time limit of one delivery (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default age beyond which [`verify_signature`] refuses a delivery (replay protection).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for a body sent at `timestamp` (Unix seconds, as text).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a received delivery: the signature (constant-time) and that the timestamp is no
/// older (or further in the future) than `max_age`. For receivers of our webhooks.
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    max_age: Duration,
) -> Result<(), NotificationsError> {
    verify_signature_at(
        secret,
        timestamp,
        body,
        signature,
        max_age,
        chrono::Utc::now().timestamp(),
    )
}

/// [`verify_signature`] against a given current time (Unix seconds).
pub fn verify_signature_at(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    max_age: Duration,
    now: i64,
) -> Result<(), NotificationsError> {
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| NotificationsError::BadSignature("timestamp is not a number"))?;
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(sent) > max_age.unsigned_abs() {
        return Err(NotificationsError::BadSignature(
            "timestamp outside the allowed window",
        ));
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(NotificationsError::BadSignature("missing sha256= prefix"))?;
    let raw =
        hex::decode(hex_sig).map_err(|_| NotificationsError::BadSignature("not hexadecimal"))?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&raw)
        .map_err(|_| NotificationsError::BadSignature("signature mismatch"))
}

/// What a successful delivery answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// HTTP status (2xx).
    pub status: u16,
}

/// Sends signed webhooks; build once per process.
#[derive(Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    secret: Vec<u8>,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A client suited to webhooks: no redirects (a 3xx is the receiver's misconfiguration and must
/// not carry a signed body elsewhere), a connect timeout, a recognisable user agent.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, NotificationsError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("cad-platform-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotificationsError::Config(format!("HTTP client: {e}")))
}

impl WebhookSender {
    /// A sender signing with `secret`, each delivery limited to `timeout`.
    pub fn new(http: reqwest::Client, secret: Vec<u8>, timeout: Duration) -> Self {
        WebhookSender {
            http,
            secret,
            timeout,
        }
    }

    /// The per-delivery time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` (JSON) to `url`. 2xx is success; 408, 429, 5xx, time-outs and connection
    /// errors are transient; other answers and invalid URLs are permanent.
    pub async fn deliver(
        &self,
        url: &str,
        delivery_id: Uuid,
        event: &str,
        body: &[u8],
    ) -> Result<Delivered, NotificationsError> {
        let url = validate_webhook_url(url)
            .map_err(|e| NotificationsError::WebhookPermanent(e.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, body);
        let sent = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(DELIVERY_HEADER, delivery_id.to_string())
            .header(EVENT_HEADER, event)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(NotificationsError::WebhookTransient(format!(
                    "{} did not answer within {:?}",
                    redact(&url),
                    self.timeout
                )));
            }
            Err(e) if e.is_builder() => {
                return Err(NotificationsError::WebhookPermanent(format!(
                    "{}: {e}",
                    redact(&url)
                )));
            }
            Err(e) => {
                return Err(NotificationsError::WebhookTransient(format!(
                    "{}: {}",
                    redact(&url),
                    error_chain(&e)
                )));
            }
        };
        classify(response.status(), &redact(&url))
    }
}

/// Decides what an HTTP status means for a delivery.
pub fn classify(status: StatusCode, target: &str) -> Result<Delivered, NotificationsError> {
    let code = status.as_u16();
    if status.is_success() {
        Ok(Delivered { status: code })
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(NotificationsError::WebhookTransient(format!(
            "{target} answered {code}"
        )))
    } else {
        Err(NotificationsError::WebhookPermanent(format!(
            "{target} answered {code}"
        )))
    }
}

/// Scheme, host and path only: query strings of webhook URLs often carry tokens.
fn redact(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // From: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", "1700000000", br#"{"a":1}"#),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn verification_accepts_good_and_refuses_tampering() {
        let body = br#"{"kind":"x"}"#;
        let sig = sign(b"k1", "1000", body);
        let max = Duration::from_secs(300);
        verify_signature_at(b"k1", "1000", body, &sig, max, 1100).unwrap();
        for (secret, ts, body, sig, now) in [
            (&b"k2"[..], "1000", &body[..], sig.as_str(), 1100),
            (b"k1", "1001", body, &sig, 1100),
            (b"k1", "1000", br#"{"kind":"y"}"#, &sig, 1100),
            (b"k1", "1000", body, &sig[7..], 1100),
            (b"k1", "1000", body, "sha256=zz", 1100),
            (b"k1", "1000", body, &sig, 1000 + 301),
            (b"k1", "1000", body, &sig, 1000 - 301),
            (b"k1", "soon", body, &sig, 1100),
        ] {
            assert!(
                matches!(
                    verify_signature_at(secret, ts, body, sig, max, now),
                    Err(NotificationsError::BadSignature(_))
                ),
                "{ts} {sig} {now}"
            );
        }
    }

    #[test]
    fn statuses_are_classified() {
        let ok = |c: u16| classify(StatusCode::from_u16(c).unwrap(), "t");
        assert_eq!(ok(200).unwrap().status, 200);
        assert_eq!(ok(204).unwrap().status, 204);
        for c in [500, 502, 503, 408, 429] {
            assert!(
                matches!(ok(c), Err(NotificationsError::WebhookTransient(_))),
                "{c}"
            );
        }
        for c in [400, 401, 403, 404, 410, 422, 301, 302] {
            assert!(
                matches!(ok(c), Err(NotificationsError::WebhookPermanent(_))),
                "{c}"
            );
        }
    }

    #[test]
    fn redaction_drops_the_query() {
        let u = reqwest::Url::parse("https://h.example.com:8443/p/q?token=s3cret").unwrap();
        assert_eq!(redact(&u), "https://h.example.com:8443/p/q");
    }
}
