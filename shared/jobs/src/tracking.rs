//! Job tracking in DynamoDB: one record per job with status, progress, attempts, error and
//! result, plus the query API behind `GET /api/jobs...` and the admin failure list.
//!
//! Table schema (see the README): partition key `job_id`; GSI `user-jobs` (`user_id`,
//! `created_at`); sparse GSI `queue-failures` (`failed_queue`, `failed_at`) holding only jobs
//! whose last attempt failed; TTL attribute `expires_at`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    GlobalSecondaryIndex, KeyType, KeysAndAttributes, Projection, ProjectionType, PutRequest,
    WriteRequest,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::QueueName;
use crate::ddb::{self, Item, Update, get_n, get_s, n, req_s, s};
use crate::envelope::{Job, JobType, format_time, now_micros};
use crate::error::{Error, Result};

/// GSI listing a user's jobs newest first.
pub const USER_INDEX: &str = "user-jobs";
/// Sparse GSI listing a queue's failed jobs newest first.
pub const FAILURES_INDEX: &str = "queue-failures";
/// TTL attribute (epoch seconds) of both tables.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Longest error text stored.
pub const MAX_ERROR_LEN: usize = 2_048;
/// Largest handler result stored inline (JSON bytes); larger results should live in S3.
pub const MAX_RESULT_BYTES: usize = 32_768;
/// Largest page of [`JobTracking::list_for_user`].
pub const MAX_PAGE_SIZE: usize = 100;
/// Most DynamoDB Query calls one listing may make before returning a short page with a cursor.
const MAX_QUERY_ROUNDS: usize = 10;
/// Bounded retries of BatchWriteItem / BatchGetItem leftovers.
const MAX_BATCH_ROUNDS: u32 = 6;

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Sent, not started.
    Queued,
    /// An attempt is running.
    Running,
    /// Done.
    Succeeded,
    /// The last attempt failed; another will follow.
    Failed,
    /// No attempt left (or a permanent failure): the message is in the DLQ.
    Dead,
}

impl JobStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }
}

impl FromStr for JobStatus {
    type Err = Error;

    fn from_str(v: &str) -> Result<Self> {
        Ok(match v {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "dead" => JobStatus::Dead,
            other => return Err(Error::CorruptRecord(format!("unknown status {other:?}"))),
        })
    }
}

/// A tracking record as returned to the HTTP routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// Job id.
    pub job_id: Uuid,
    /// Job type.
    pub job_type: JobType,
    /// Queue carrying it.
    pub queue: QueueName,
    /// Owner, if any.
    pub user_id: Option<Uuid>,
    /// Current status.
    pub status: JobStatus,
    /// Progress 0–100.
    pub progress: u8,
    /// Message given with the last progress report.
    pub progress_message: Option<String>,
    /// Attempts made so far (the latest attempt's receive count).
    pub attempts: u32,
    /// Attempts allowed by the queue.
    pub max_attempts: u32,
    /// Error of the last failed attempt.
    pub error: Option<String>,
    /// Result reference given by the handler (S3 key, URL or small JSON).
    pub result: Option<Value>,
    /// Correlation id of the originating request.
    pub correlation_id: String,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// End of the job (succeeded or dead).
    pub finished_at: Option<DateTime<Utc>>,
    /// When the latest failure happened.
    pub failed_at: Option<DateTime<Utc>>,
}

/// Filters and paging of [`JobTracking::list_for_user`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Page size (1..=100; 0 means 20).
    pub limit: usize,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct JobPage {
    /// Jobs of this page.
    pub items: Vec<JobRecord>,
    /// Opaque cursor of the next page, if there may be one.
    pub next_cursor: Option<String>,
}

/// Access to the job tracking table.
#[derive(Debug, Clone)]
pub struct JobTracking {
    client: aws_sdk_dynamodb::Client,
    table: String,
    ttl: Duration,
}

fn epoch_after(ttl: Duration) -> i64 {
    Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn parse_time(item: &Item, key: &str) -> Result<Option<DateTime<Utc>>> {
    get_s(item, key)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::CorruptRecord(format!("{key}: {e}")))
        })
        .transpose()
}

fn parse_uuid(v: &str, key: &str) -> Result<Uuid> {
    Uuid::parse_str(v).map_err(|e| Error::CorruptRecord(format!("{key}: {e}")))
}

impl JobRecord {
    fn from_item(item: &Item) -> Result<Self> {
        let created_at = parse_time(item, "created_at")?
            .ok_or_else(|| Error::CorruptRecord("created_at missing".into()))?;
        Ok(JobRecord {
            job_id: parse_uuid(req_s(item, "job_id")?, "job_id")?,
            job_type: req_s(item, "job_type")?.parse()?,
            queue: req_s(item, "queue")?.parse()?,
            user_id: get_s(item, "user_id")
                .map(|u| parse_uuid(u, "user_id"))
                .transpose()?,
            status: req_s(item, "status")?.parse()?,
            progress: get_n::<u8>(item, "progress").unwrap_or(0).min(100),
            progress_message: get_s(item, "progress_message").map(str::to_owned),
            attempts: get_n(item, "attempts").unwrap_or(0),
            max_attempts: get_n(item, "max_attempts").unwrap_or(0),
            error: get_s(item, "error").map(str::to_owned),
            result: get_s(item, "result").and_then(|r| serde_json::from_str(r).ok()),
            correlation_id: get_s(item, "correlation_id").unwrap_or_default().to_owned(),
            updated_at: parse_time(item, "updated_at")?.unwrap_or(created_at),
            created_at,
            started_at: parse_time(item, "started_at")?,
            finished_at: parse_time(item, "finished_at")?,
            failed_at: parse_time(item, "failed_at")?,
        })
    }
}

/// Pagination cursor: the GSI key of the last item returned, base64url-encoded JSON.
#[derive(Serialize, Deserialize)]
struct Cursor {
    job_id: String,
    user_id: String,
    created_at: String,
}

fn encode_cursor(item: &Item) -> Option<String> {
    let c = Cursor {
        job_id: get_s(item, "job_id")?.to_owned(),
        user_id: get_s(item, "user_id")?.to_owned(),
        created_at: get_s(item, "created_at")?.to_owned(),
    };
    let json = serde_json::to_vec(&c).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &str, user_id: Uuid) -> Result<Item> {
    if cursor.len() > 512 {
        return Err(Error::InvalidCursor);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| Error::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| Error::InvalidCursor)?;
    if Uuid::parse_str(&c.job_id).is_err()
        || c.user_id != user_id.to_string()
        || DateTime::parse_from_rfc3339(&c.created_at).is_err()
    {
        return Err(Error::InvalidCursor);
    }
    Ok(HashMap::from([
        ("job_id".to_owned(), s(c.job_id)),
        ("user_id".to_owned(), s(c.user_id)),
        ("created_at".to_owned(), s(c.created_at)),
    ]))
}

impl JobTracking {
    /// Tracking over `table`; records expire `ttl` after their last write.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, ttl: Duration) -> Self {
        JobTracking {
            client,
            table: table.into(),
            ttl,
        }
    }

    /// Table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Attributes every record has, derived from the envelope alone.
    fn base_item(&self, job: &Job, status: JobStatus) -> Item {
        let mut item = HashMap::from([
            ("job_id".to_owned(), s(job.id.to_string())),
            ("job_type".to_owned(), s(job.job_type.as_str())),
            ("queue".to_owned(), s(job.queue().as_str())),
            ("status".to_owned(), s(status.as_str())),
            (
                "max_attempts".to_owned(),
                n(job.queue().spec().retry.max_attempts),
            ),
            ("correlation_id".to_owned(), s(job.correlation_id.clone())),
            ("created_at".to_owned(), s(format_time(&job.created_at))),
            ("updated_at".to_owned(), s(format_time(&now_micros()))),
            (TTL_ATTRIBUTE.to_owned(), n(epoch_after(self.ttl))),
        ]);
        if let Some(u) = job.user_id {
            item.insert("user_id".to_owned(), s(u.to_string()));
        }
        item
    }

    fn queued_item(&self, job: &Job) -> Item {
        let mut item = self.base_item(job, JobStatus::Queued);
        item.insert("progress".to_owned(), n(0));
        item.insert("attempts".to_owned(), n(0));
        item
    }

    /// The whole record of a job whose attempt `attempt` started at `started_at`. Written with
    /// PutItem: everything in it follows from the envelope and the attempt, and the previous
    /// attempt's error and failure-index entry are meant to go.
    pub(crate) fn running_item(&self, job: &Job, attempt: u32, started_at: &DateTime<Utc>) -> Item {
        let mut item = self.base_item(job, JobStatus::Running);
        item.insert("progress".to_owned(), n(0));
        item.insert("attempts".to_owned(), n(attempt));
        item.insert("started_at".to_owned(), s(format_time(started_at)));
        item
    }

    /// The whole record of a succeeded job.
    pub(crate) fn succeeded_item(
        &self,
        job: &Job,
        attempt: u32,
        started_at: Option<&DateTime<Utc>>,
        progress_message: Option<&str>,
        result: Option<&Value>,
    ) -> Item {
        let mut item = self.base_item(job, JobStatus::Succeeded);
        let now = format_time(&now_micros());
        item.insert("progress".to_owned(), n(100));
        item.insert("attempts".to_owned(), n(attempt));
        item.insert(
            "started_at".to_owned(),
            s(started_at.map(format_time).unwrap_or_else(|| now.clone())),
        );
        item.insert("finished_at".to_owned(), s(now));
        if let Some(m) = progress_message {
            item.insert("progress_message".to_owned(), s(truncate(m, 512)));
        }
        match result.map(serde_json::to_string).transpose() {
            Ok(Some(json)) if json.len() <= MAX_RESULT_BYTES => {
                item.insert("result".to_owned(), s(json));
            }
            Ok(Some(json)) => {
                tracing::warn!(job_id = %job.id, bytes = json.len(), "job result too large to track; store it in S3 and return its key");
                let note = serde_json::json!({"omitted": "result too large", "bytes": json.len()});
                item.insert("result".to_owned(), s(note.to_string()));
            }
            Ok(None) | Err(_) => {}
        }
        item
    }

    /// Writes a whole record.
    pub(crate) async fn put(&self, item: Item, op: &'static str) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", op, e))?;
        Ok(())
    }

    /// Records jobs as `queued` (BatchWriteItem, 25 per call, leftovers retried a bounded
    /// number of times). The producer calls it *before* sending so a fast worker's `running`
    /// update can never be overwritten by a late `queued`.
    pub async fn record_queued(&self, jobs: &[Job]) -> Result<()> {
        for chunk in jobs.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|j| {
                    PutRequest::builder()
                        .set_item(Some(self.queued_item(j)))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| Error::Config(e.to_string()))
                })
                .collect::<Result<_>>()?;
            let mut round = 0;
            while !requests.is_empty() {
                if round == MAX_BATCH_ROUNDS {
                    return Err(Error::Aws {
                        service: "dynamodb",
                        op: "BatchWriteItem",
                        message: format!(
                            "{} items still unprocessed after retries",
                            requests.len()
                        ),
                    });
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| Error::aws("dynamodb", "BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                round += 1;
            }
        }
        Ok(())
    }

    /// Adds the job's identity attributes only where absent, so every worker update also
    /// creates a complete record for a job sent without the producer.
    fn identity(u: &mut Update, job: &Job) {
        u.set_if_absent("job_type", s(job.job_type.as_str()))
            .set_if_absent("queue", s(job.queue().as_str()))
            .set_if_absent("correlation_id", s(job.correlation_id.clone()))
            .set_if_absent("created_at", s(format_time(&job.created_at)))
            .set_if_absent("max_attempts", n(job.queue().spec().retry.max_attempts));
        if let Some(user) = job.user_id {
            u.set_if_absent("user_id", s(user.to_string()));
        }
    }

    async fn update(&self, job_id: Uuid, u: Update, op: &'static str) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id.to_string()))
            .update_expression(u.expression())
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", op, e))?;
        Ok(())
    }

    /// Records progress of a running job. Returns false (and writes nothing) when the job is
    /// not `running`, so a late report cannot resurrect a finished job.
    pub async fn set_progress(&self, job_id: Uuid, pct: u8, message: &str) -> Result<bool> {
        let mut u = Update::default();
        u.set("progress", n(pct.min(100)))
            .set("progress_message", s(truncate(message, 512)))
            .set("updated_at", s(format_time(&now_micros())));
        let status = u.name("status");
        let running = u.value("running", s(JobStatus::Running.as_str()));
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id.to_string()))
            .update_expression(u.expression())
            .condition_expression(format!("{status} = {running}"))
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("dynamodb", "UpdateItem(progress)", e)),
        }
    }

    /// Records the job as succeeded (PutItem of the whole record, as the runtime writes it).
    pub async fn mark_succeeded(
        &self,
        job: &Job,
        attempt: u32,
        result: Option<&Value>,
    ) -> Result<()> {
        self.put(
            self.succeeded_item(job, attempt, None, None, result),
            "PutItem(succeeded)",
        )
        .await
    }

    /// Records a failed attempt: `failed` when another attempt follows, `dead` when none does.
    pub async fn mark_failed(
        &self,
        job: &Job,
        attempt: u32,
        error: &str,
        dead: bool,
    ) -> Result<()> {
        let now = format_time(&now_micros());
        let status = if dead {
            JobStatus::Dead
        } else {
            JobStatus::Failed
        };
        let mut u = Update::default();
        u.set("status", s(status.as_str()))
            .set("attempts", n(attempt))
            .set("error", s(truncate(error, MAX_ERROR_LEN)))
            .set("failed_queue", s(job.queue().as_str()))
            .set("failed_at", s(now.clone()))
            .set("updated_at", s(now.clone()))
            .set(TTL_ATTRIBUTE, n(epoch_after(self.ttl)));
        if dead {
            u.set("finished_at", s(now));
        }
        Self::identity(&mut u, job);
        self.update(job.id, u, "UpdateItem(failed)").await
    }

    /// Puts a redriven job back to `queued` (keeps its last error for reference).
    pub async fn mark_requeued(&self, job_id: Uuid) -> Result<()> {
        let mut u = Update::default();
        u.set("status", s(JobStatus::Queued.as_str()))
            .set("progress", n(0))
            .set("updated_at", s(format_time(&now_micros())))
            .set(TTL_ATTRIBUTE, n(epoch_after(self.ttl)))
            .remove("finished_at");
        let id = u.name("job_id");
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id.to_string()))
            .update_expression(u.expression())
            .condition_expression(format!("attribute_exists({id})"))
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
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
            Err(e) => Err(Error::aws("dynamodb", "UpdateItem(requeued)", e)),
        }
    }

    /// One job by id (strongly consistent).
    pub async fn get(&self, job_id: Uuid) -> Result<Option<JobRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", s(job_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", "GetItem", e))?;
        out.item.as_ref().map(JobRecord::from_item).transpose()
    }

    /// Several jobs by id (BatchGetItem, 100 per call); missing ids are absent from the map.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, JobRecord>> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut unique: Vec<Uuid> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| HashMap::from([("job_id".to_owned(), s(id.to_string()))]))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))?,
            );
            let mut round = 0;
            while let Some(req) = pending.take() {
                if round == MAX_BATCH_ROUNDS {
                    return Err(Error::Aws {
                        service: "dynamodb",
                        op: "BatchGetItem",
                        message: "keys still unprocessed after retries".into(),
                    });
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| Error::aws("dynamodb", "BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let rec = JobRecord::from_item(&item)?;
                    found.insert(rec.job_id, rec);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                round += 1;
            }
        }
        Ok(found)
    }

    /// A user's jobs, newest first, optionally filtered by status and type, paginated.
    ///
    /// Filters are applied by DynamoDB after the key condition, so a page may take several
    /// Query calls; after 10 calls a short (possibly empty) page is returned with a cursor.
    pub async fn list_for_user(&self, user_id: Uuid, query: &ListQuery) -> Result<JobPage> {
        let limit = match query.limit {
            0 => 20,
            l => l.min(MAX_PAGE_SIZE),
        };
        let mut start = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, user_id))
            .transpose()?;
        let mut names = HashMap::from([("#user_id".to_owned(), "user_id".to_owned())]);
        let mut values = HashMap::from([(":user_id".to_owned(), s(user_id.to_string()))]);
        let mut filters = Vec::new();
        if let Some(st) = query.status {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(st.as_str()));
            filters.push("#status = :status");
        }
        if let Some(t) = query.job_type {
            names.insert("#job_type".into(), "job_type".into());
            values.insert(":job_type".into(), s(t.as_str()));
            filters.push("#job_type = :job_type");
        }
        // Without filters every evaluated item is returned, so ask for one extra to learn
        // whether another page exists; with filters read larger slices.
        let page_limit = if filters.is_empty() {
            limit + 1
        } else {
            (limit * 4).max(50)
        };
        let mut items: Vec<Item> = Vec::with_capacity(limit + 1);
        let mut next_cursor = None;
        for round in 0..MAX_QUERY_ROUNDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(USER_INDEX)
                .key_condition_expression("#user_id = :user_id")
                .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(page_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::aws("dynamodb", "Query", e))?;
            items.extend(out.items.unwrap_or_default());
            if items.len() > limit {
                items.truncate(limit);
                next_cursor = items.last().and_then(encode_cursor);
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    if items.len() == limit || round + 1 == MAX_QUERY_ROUNDS {
                        next_cursor = match items.last() {
                            Some(last) if items.len() == limit => encode_cursor(last),
                            _ => encode_cursor(&k),
                        };
                        break;
                    }
                    start = Some(k);
                }
                _ => break,
            }
        }
        let items = items
            .iter()
            .map(JobRecord::from_item)
            .collect::<Result<_>>()?;
        Ok(JobPage { items, next_cursor })
    }

    /// A queue's jobs whose latest attempt failed (status failed or dead), newest failure first.
    pub async fn recent_failures(&self, queue: QueueName, limit: usize) -> Result<Vec<JobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(FAILURES_INDEX)
            .key_condition_expression("#q = :q")
            .expression_attribute_names("#q", "failed_queue")
            .expression_attribute_values(":q", s(queue.as_str()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.min(MAX_PAGE_SIZE)).unwrap_or(20))
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", "Query", e))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(JobRecord::from_item)
            .collect()
    }
}

/// Creates the tracking table with the schema the SAM template declares (for local set-up
/// and tests); an existing table is accepted.
pub async fn create_tracking_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let gsi = |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(ddb::key(hash, KeyType::Hash)?)
            .key_schema(ddb::key(range, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| Error::Config(e.to_string()))
    };
    ddb::create_table(
        client,
        ddb::TableDef {
            name: table,
            hash_key: "job_id",
            attributes: &["user_id", "created_at", "failed_queue", "failed_at"],
            gsis: vec![
                gsi(USER_INDEX, "user_id", "created_at")?,
                gsi(FAILURES_INDEX, "failed_queue", "failed_at")?,
            ],
            ttl_attribute: TTL_ATTRIBUTE,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_the_user() {
        let user = Uuid::new_v4();
        let item = HashMap::from([
            ("job_id".to_owned(), s(Uuid::new_v4().to_string())),
            ("user_id".to_owned(), s(user.to_string())),
            ("created_at".to_owned(), s("2026-01-01T00:00:00.000000Z")),
            ("status".to_owned(), s("queued")),
        ]);
        let c = encode_cursor(&item).unwrap();
        let key = decode_cursor(&c, user).unwrap();
        assert_eq!(key.len(), 3);
        assert_eq!(key["created_at"], item["created_at"]);
        assert!(matches!(
            decode_cursor(&c, Uuid::new_v4()),
            Err(Error::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor("!!!", user),
            Err(Error::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor(&"A".repeat(600), user),
            Err(Error::InvalidCursor)
        ));
    }

    #[test]
    fn errors_are_truncated() {
        let long = "x".repeat(MAX_ERROR_LEN * 2);
        assert_eq!(
            truncate(&long, MAX_ERROR_LEN).chars().count(),
            MAX_ERROR_LEN + 1
        );
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn record_decoding_rejects_corrupt_items() {
        let mut item = HashMap::from([
            ("job_id".to_owned(), s(Uuid::new_v4().to_string())),
            ("job_type".to_owned(), s("index-file")),
            ("queue".to_owned(), s("search-indexing")),
            ("status".to_owned(), s("running")),
            ("progress".to_owned(), n(250)),
            ("created_at".to_owned(), s("2026-01-01T00:00:00.000000Z")),
        ]);
        let rec = JobRecord::from_item(&item).unwrap();
        assert_eq!(rec.status, JobStatus::Running);
        assert_eq!(rec.progress, 100, "out-of-range progress is clamped");
        item.insert("status".into(), s("exploded"));
        assert!(JobRecord::from_item(&item).is_err());
    }
}
