//! What the admin routes need, built once per process.

use std::sync::Arc;
use std::time::Duration;

use db::{Db, QueryMonitor};
use jobs::{Clients, JobTracking, JobsConfig, QueueDirectory, QueueName};
use monitoring::Monitor;

use crate::AdminError;

/// Limits and sizes of the admin routes.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Upper bound on each source of a report (SQS, Redis, PostgreSQL), so one slow dependency
    /// cannot hold the whole answer.
    pub source_timeout: Duration,
    /// Statements listed in the database section (by total time).
    pub top_statements: usize,
    /// Recent failures listed per queue by `GET /api/admin/queues`.
    pub recent_failures: usize,
    /// Routes of the 5-minute window listed in the performance report (busiest first).
    pub top_routes: usize,
    /// Messages moved by a redrive without `max_messages`.
    pub default_redrive: usize,
    /// Largest `max_messages` a redrive accepts (it runs inside one API request).
    pub max_redrive: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            source_timeout: Duration::from_secs(6),
            top_statements: 10,
            recent_failures: 10,
            top_routes: 20,
            default_redrive: 100,
            max_redrive: 1000,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) queues: QueueDirectory,
    pub(crate) tracking: Option<JobTracking>,
    pub(crate) monitor: Monitor,
    pub(crate) db: Db,
    pub(crate) queries: QueryMonitor,
    pub(crate) config: AdminConfig,
}

/// Shared state of the admin routes; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AdminState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("queues", &self.inner.queues.iter().count())
            .field("tracking", &self.inner.tracking.is_some())
            .field("monitor", &self.inner.monitor)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// State over these queues, monitor and database, with the process-wide
    /// [`QueryMonitor::global`], no job tracking and the default [`AdminConfig`].
    pub fn new(sqs: aws_sdk_sqs::Client, queues: QueueDirectory, monitor: Monitor, db: Db) -> Self {
        AdminState {
            inner: Arc::new(Inner {
                sqs,
                queues,
                tracking: None,
                monitor,
                db,
                queries: QueryMonitor::global().clone(),
                config: AdminConfig::default(),
            }),
        }
    }

    /// Production wiring: queue URLs and the tracking table from the jobs variables
    /// (`<QUEUE>_QUEUE_URL`/`<QUEUE>_DLQ_URL` or `JOBS_QUEUE_PREFIX`, `JOBS_TABLE`).
    pub async fn from_env(
        sdk: &aws_config::SdkConfig,
        monitor: Monitor,
        db: Db,
    ) -> Result<Self, AdminError> {
        // The admin API never touches the idempotency table, which JobsConfig requires: do
        // not make the admin function's environment name it.
        let config = JobsConfig::from_lookup(|k| {
            std::env::var(k)
                .ok()
                .or_else(|| (k == "JOBS_IDEMPOTENCY_TABLE").then(|| "unused-by-admin".to_owned()))
        })?;
        let clients = Clients::new(sdk);
        let queues = QueueDirectory::resolve(&clients.sqs, &config, &QueueName::ALL).await?;
        let tracking = JobTracking::new(
            clients.dynamodb.clone(),
            config.tracking_table.clone(),
            config.tracking_ttl,
        );
        Ok(AdminState::new(clients.sqs, queues, monitor, db).with_tracking(tracking))
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                sqs: shared.sqs.clone(),
                queues: shared.queues.clone(),
                tracking: shared.tracking.clone(),
                monitor: shared.monitor.clone(),
                db: shared.db.clone(),
                queries: shared.queries.clone(),
                config: shared.config.clone(),
            },
        };
        f(&mut inner);
        AdminState {
            inner: Arc::new(inner),
        }
    }

    /// Lists recent failures (with their errors) from job tracking.
    pub fn with_tracking(self, tracking: JobTracking) -> Self {
        self.map_inner(|i| i.tracking = Some(tracking))
    }

    /// Uses this query monitor instead of the process-wide one (tests).
    pub fn with_query_monitor(self, queries: QueryMonitor) -> Self {
        self.map_inner(|i| i.queries = queries)
    }

    /// Uses these limits instead of the defaults.
    pub fn with_config(self, config: AdminConfig) -> Self {
        self.map_inner(|i| i.config = config)
    }

    /// The limits in use.
    pub fn config(&self) -> &AdminConfig {
        &self.inner.config
    }

    /// The performance monitor whose Redis view the report reads.
    pub fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }
}
