//! Integration tests: every route against a freshly migrated PostgreSQL database and moto's S3
//! and SQS, through the real local server and as API Gateway events through lambda_http.

mod caching;
mod compression;
mod files_api;
mod gateway;
mod indexes;
mod jobs_flow;
mod lambda_events;
mod users_api;
