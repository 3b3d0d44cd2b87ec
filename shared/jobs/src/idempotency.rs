//! Idempotency records in DynamoDB: a job runs only when its claim succeeds.
//!
//! A claim is a conditional PutItem: it succeeds when no record exists, or when the record is an
//! `in_progress` lock whose `lock_expires_at` has passed (a crashed attempt). A `succeeded`
//! record makes every later delivery of the same job a no-op. Records carry the TTL attribute
//! `expires_at` so DynamoDB deletes them eventually; the condition checks expiry itself because
//! TTL deletion can lag by days.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::Utc;
use uuid::Uuid;

use crate::ddb::{self, Item, get_n, get_s, n, s};
use crate::envelope::{format_time, now_micros};
use crate::error::{Error, Result};
use crate::tracking::TTL_ATTRIBUTE;

/// Partition key of the idempotency table.
pub const KEY_ATTRIBUTE: &str = "idempotency_key";
const IN_PROGRESS: &str = "in_progress";
const CLAIM_CONDITION: &str =
    "attribute_not_exists(#k) OR (#status = :in_progress AND #lock < :now)";
const SUCCEEDED: &str = "succeeded";
/// An in-progress record outlives its lock by this much before TTL may delete it.
const LOCK_RECORD_GRACE_SECS: i64 = 86_400;

/// Proof of a successful claim, needed to complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Idempotency key (the job id).
    pub key: String,
    /// Random token identifying this attempt's claim.
    pub token: String,
}

/// Result of [`IdempotencyStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the job until the lock expires.
    Acquired(Lease),
    /// The job already succeeded: acknowledge without running it.
    AlreadySucceeded,
    /// Another attempt holds an unexpired lock: retry later.
    InProgress {
        /// Lock expiry, epoch milliseconds.
        lock_expires_at_ms: i64,
    },
}

/// Access to the idempotency table.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

fn classify(item: &Item) -> Option<Claim> {
    match get_s(item, "status")? {
        SUCCEEDED => Some(Claim::AlreadySucceeded),
        IN_PROGRESS => Some(Claim::InProgress {
            lock_expires_at_ms: get_n(item, "lock_expires_at").unwrap_or(0),
        }),
        _ => None,
    }
}

impl IdempotencyStore {
    /// Store over `table`; succeeded records block duplicates for `retention`.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        retention: Duration,
    ) -> Self {
        IdempotencyStore {
            client,
            table: table.into(),
            retention,
        }
    }

    fn lock_item(key: &str, lock_for: Duration) -> (Item, Lease, i64) {
        let now_ms = Utc::now().timestamp_millis();
        let lock_ms = i64::try_from(lock_for.as_millis()).unwrap_or(i64::MAX / 4);
        let expires_ms = now_ms.saturating_add(lock_ms);
        let token = Uuid::new_v4().to_string();
        let item = HashMap::from([
            (KEY_ATTRIBUTE.to_owned(), s(key)),
            ("status".to_owned(), s(IN_PROGRESS)),
            ("owner".to_owned(), s(token.clone())),
            ("lock_expires_at".to_owned(), n(expires_ms)),
            ("updated_at".to_owned(), s(format_time(&now_micros()))),
            (
                TTL_ATTRIBUTE.to_owned(),
                n(expires_ms / 1000 + LOCK_RECORD_GRACE_SECS),
            ),
        ]);
        (
            item,
            Lease {
                key: key.to_owned(),
                token,
            },
            now_ms,
        )
    }

    fn succeeded_item(&self, lease: &Lease) -> Item {
        let expires = Utc::now().timestamp() + i64::try_from(self.retention.as_secs()).unwrap_or(0);
        HashMap::from([
            (KEY_ATTRIBUTE.to_owned(), s(lease.key.clone())),
            ("status".to_owned(), s(SUCCEEDED)),
            ("owner".to_owned(), s(lease.token.clone())),
            ("updated_at".to_owned(), s(format_time(&now_micros()))),
            (TTL_ATTRIBUTE.to_owned(), n(expires)),
        ])
    }

    /// Claims `key` for `lock_for` (set it to the longest an attempt can run).
    pub async fn claim(&self, key: &str, lock_for: Duration) -> Result<Claim> {
        let (item, lease, now_ms) = Self::lock_item(key, lock_for);
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#k", KEY_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock_expires_at")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(Claim::Acquired(lease)),
            Err(e) => {
                let existing = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        Some(c.item().cloned())
                    }
                    _ => None,
                });
                match existing {
                    None => Err(Error::aws("dynamodb", "PutItem(claim)", e)),
                    Some(Some(item)) => self.classify_existing(key, &item),
                    // The service did not return the old item: read it.
                    Some(None) => self.read(key).await,
                }
            }
        }
    }

    fn classify_existing(&self, key: &str, item: &Item) -> Result<Claim> {
        classify(item).ok_or_else(|| {
            Error::CorruptRecord(format!("idempotency record {key} has no known status"))
        })
    }

    /// Current state of `key` after a failed claim whose old item was not returned.
    async fn read(&self, key: &str) -> Result<Claim> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", "GetItem", e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(classify)
            // Deleted between our write and read: report in progress so the message is retried.
            .unwrap_or(Claim::InProgress {
                lock_expires_at_ms: 0,
            }))
    }

    /// Marks the job succeeded; later deliveries are acknowledged without running. Written
    /// unconditionally: the work is done whoever holds the lock now.
    pub async fn complete(&self, lease: &Lease) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.succeeded_item(lease)))
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", "PutItem(complete)", e))?;
        Ok(())
    }

    /// Drops this attempt's lock after a failure so the next delivery can run at once. Only a
    /// lock still owned by `lease` is deleted.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(lease.key.clone()))
            .condition_expression("#owner = :token AND #status = :in_progress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(lease.token.clone()))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("dynamodb", "DeleteItem(release)", e)),
        }
    }
}

/// Creates the idempotency table (partition key `idempotency_key`, TTL `expires_at`) for local
/// set-up and tests; an existing table is accepted.
pub async fn create_idempotency_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<()> {
    ddb::create_table(
        client,
        ddb::TableDef {
            name: table,
            hash_key: KEY_ATTRIBUTE,
            attributes: &[],
            gsis: Vec::new(),
            ttl_attribute: TTL_ATTRIBUTE,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_records_are_classified() {
        let done = HashMap::from([("status".to_owned(), s(SUCCEEDED))]);
        assert_eq!(classify(&done), Some(Claim::AlreadySucceeded));
        let busy = HashMap::from([
            ("status".to_owned(), s(IN_PROGRESS)),
            ("lock_expires_at".to_owned(), n(42)),
        ]);
        assert_eq!(
            classify(&busy),
            Some(Claim::InProgress {
                lock_expires_at_ms: 42
            })
        );
        assert_eq!(classify(&HashMap::new()), None);
    }
}
