//! Email through SES v2 `SendEmail`.

use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::NotificationsError;
use crate::payload::validate_email;

/// Sends plain-text emails from one verified sender; build once per process.
#[derive(Debug, Clone)]
pub struct EmailSender {
    ses: aws_sdk_sesv2::Client,
    from: String,
}

impl EmailSender {
    /// A sender using `from` (must be a verified SES identity, or of a verified domain).
    pub fn new(ses: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        EmailSender {
            ses,
            from: from.into(),
        }
    }

    /// The sender address.
    pub fn from_address(&self) -> &str {
        &self.from
    }

    /// Sends one email; returns SES's message id. Throttling and network failures are
    /// transient; refusals (unverified sender, bad address, paused account) are permanent.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<String, NotificationsError> {
        validate_email(to).map_err(|e| NotificationsError::EmailPermanent(e.to_string()))?;
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| NotificationsError::EmailPermanent(e.to_string()))
        };
        // Subjects are one line: a newline would be refused by SES (and is never meant).
        let subject_line: String = subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let message = Message::builder()
            .subject(content(&subject_line)?)
            .body(Body::builder().text(content(text)?).build())
            .build();
        let out = self
            .ses
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify_send_error)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

fn classify_send_error<R: std::fmt::Debug>(err: SdkError<SendEmailError, R>) -> NotificationsError {
    let permanent = err.as_service_error().is_some_and(|e| {
        matches!(
            e,
            SendEmailError::AccountSuspendedException(_)
                | SendEmailError::BadRequestException(_)
                | SendEmailError::MailFromDomainNotVerifiedException(_)
                | SendEmailError::MessageRejected(_)
                | SendEmailError::NotFoundException(_)
                | SendEmailError::SendingPausedException(_)
        )
    });
    let text = DisplayErrorContext(&err).to_string();
    if permanent {
        NotificationsError::EmailPermanent(text)
    } else {
        NotificationsError::EmailTransient(text)
    }
}

/// Makes `address` an SES email identity (CreateEmailIdentity; an existing one is fine).
/// On AWS the identity still has to be verified by mail; moto treats it as verified at once,
/// which is what local set-up and tests need before SendEmail accepts the sender.
pub async fn ensure_sender_identity(
    ses: &aws_sdk_sesv2::Client,
    address: &str,
) -> Result<(), NotificationsError> {
    match ses
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(NotificationsError::Config(format!(
            "CreateEmailIdentity {address}: {}",
            DisplayErrorContext(&e)
        ))),
    }
}
