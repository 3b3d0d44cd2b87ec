//! Notifications for the CAD AI Platform: in-app notifications (the `notifications` table, the
//! caller's list, mark read), webhooks signed with HMAC-SHA256 and sent under a timeout, email
//! through SES v2, the `send-notification` job handler that drives those channels, a
//! [`Notifier`] other code uses to enqueue notifications, and the notifications API router.

#![warn(missing_docs)]

pub mod alarms;
pub mod config;
pub mod email;
mod error;
pub mod handler;
pub mod notifier;
pub mod payload;
pub mod repo;
mod routes;
pub mod webhook;

pub use config::NotificationsConfig;
pub use email::{EmailSender, ensure_sender_identity};
pub use error::NotificationsError;
pub use handler::{DeliveryReport, NotificationsHandler};
pub use notifier::Notifier;
pub use payload::{Channels, EmailChannel, SendNotification, WebhookChannel};
pub use repo::Notification;
pub use routes::{NotificationsState, router};
pub use webhook::{WebhookSender, sign, verify_signature};
