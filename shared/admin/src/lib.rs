//! Admin API of the CAD platform (issue 5 §8, issue 7 §5–6):
//!
//! - `GET /api/admin/queues`: the five job queues with their DLQs (counts, DLQ depth, oldest
//!   dead message, recent failures with errors).
//! - `POST /api/admin/queues/{name}/redrive`: moves DLQ messages back (`{"max_messages": n}`).
//! - `GET /api/admin/performance`: the guide's `PerformanceMonitoringService` report — latency
//!   percentiles, throughput, error rates and cache hit ratio per window (Redis view of
//!   [`monitoring`]), slow queries, top statements and pools ([`db::perf`]), live queue depths
//!   (SQS) and the alerts breached right now. Each source degrades on its own.
//! - `GET /admin/dashboard` (+ `/admin/dashboard.js`): a static page that polls the two GET
//!   routes with the admin's bearer token and draws the figures.
//!
//! The API routes need the admin role (401 without a caller, 403 for other roles); the two
//! dashboard routes need no auth, so mount [`dashboard_router`] outside the authorizer.

#![warn(missing_docs)]

mod dashboard;
mod error;
pub mod performance;
pub mod queues;
mod routes;
mod state;

pub use dashboard::{DASHBOARD_HTML, DASHBOARD_JS};
pub use error::AdminError;
pub use performance::{ActiveAlert, AlertKind, PerformanceDocument, WindowFigures, queue_alerts};
pub use queues::{QueueView, QueuesReport, RedriveResult};
pub use routes::{AdminCaller, api_router, dashboard_router, router};
pub use state::{AdminConfig, AdminState};
