//! Enqueueing notifications from other code (workers, routes).

use jobs::{Job, JobType, Producer};
use uuid::Uuid;

use crate::NotificationsError;
use crate::payload::SendNotification;

/// Sends `send-notification` jobs through the jobs producer.
#[derive(Debug, Clone)]
pub struct Notifier {
    producer: Producer,
}

impl Notifier {
    /// A notifier over an already-configured producer.
    pub fn new(producer: Producer) -> Self {
        Notifier { producer }
    }

    /// The job that would deliver `n` (validated); `id` fixes its id.
    pub fn job(
        n: &SendNotification,
        id: Option<Uuid>,
        correlation_id: Option<&str>,
    ) -> Result<Job, NotificationsError> {
        n.validate()?;
        let payload = serde_json::to_value(n)
            .map_err(|e| NotificationsError::Invalid(format!("payload: {e}")))?;
        let mut job = Job::new(JobType::SendNotification, payload).with_user(n.user_id);
        if let Some(id) = id {
            job = job.with_id(id);
        }
        if let Some(c) = correlation_id {
            job = job.with_correlation_id(c);
        }
        Ok(job)
    }

    /// The id of the notification `cause` (e.g. a report job's id) produces for `kind`: the
    /// same on every retry of the cause, so its notification is delivered once.
    pub fn derived_id(cause: Uuid, kind: &str) -> Uuid {
        Uuid::new_v5(&cause, kind.as_bytes())
    }

    /// Enqueues a notification under a fresh job id; returns the id.
    pub async fn notify(
        &self,
        n: &SendNotification,
        correlation_id: Option<&str>,
    ) -> Result<Uuid, NotificationsError> {
        let job = Self::job(n, None, correlation_id)?;
        Ok(self.producer.send(job).await?.job_id)
    }

    /// Enqueues the notification that `cause` produces (id from [`Notifier::derived_id`]), so a
    /// retried cause does not notify twice: the duplicate job is acknowledged without running.
    pub async fn notify_once(
        &self,
        cause: Uuid,
        n: &SendNotification,
        correlation_id: Option<&str>,
    ) -> Result<Uuid, NotificationsError> {
        let job = Self::job(n, Some(Self::derived_id(cause, &n.kind)), correlation_id)?;
        Ok(self.producer.send(job).await?.job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let cause = Uuid::new_v4();
        assert_eq!(
            Notifier::derived_id(cause, "report.ready"),
            Notifier::derived_id(cause, "report.ready")
        );
        assert_ne!(
            Notifier::derived_id(cause, "report.ready"),
            Notifier::derived_id(cause, "report.failed")
        );
        assert_ne!(Notifier::derived_id(cause, "report.ready"), cause);
    }

    #[test]
    fn job_carries_the_payload_and_user() {
        let user = Uuid::new_v4();
        let n = SendNotification::new(user, "k", "Title");
        let job = Notifier::job(&n, None, Some("req-1")).unwrap();
        assert_eq!(job.job_type, JobType::SendNotification);
        assert_eq!(job.user_id, Some(user));
        assert_eq!(job.correlation_id, "req-1");
        assert_eq!(job.payload_as::<SendNotification>().unwrap(), n);
        assert!(Notifier::job(&n.clone().in_app(false), None, None).is_err());
    }
}
