//! Reports for the CAD AI Platform: usage, performance and audit reports read from
//! PostgreSQL, rendered as CSV (one file per table) and/or one JSON document, written to S3
//! under `reports/<user>/<job id>…`, with presigned download links and a "report ready"
//! notification; the `generate-report` job handler and `POST /api/reports`.

#![warn(missing_docs)]

mod error;
pub mod handler;
pub mod payload;
pub mod queries;
mod routes;
pub mod table;

pub use error::ReportsError;
pub use handler::{ReportFile, ReportOutcome, ReportsConfig, ReportsHandler};
pub use payload::{DateRange, GenerateReport, ReportFormat, ReportKind};
pub use routes::{ReportsState, router};
pub use table::{Cell, Report, Scope, Table};
