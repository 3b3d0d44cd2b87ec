//! HTTP plumbing shared by every API function: the error type and its JSON body, extractors
//! that report the offending field, and keyset pagination.

mod error;
mod extract;
pub mod pagination;

pub use error::ApiError;
pub use extract::{ApiJson, ApiQuery, CorrelationId, parse_id, parse_json};
pub use pagination::{Page, decode_cursor, encode_cursor, into_page, page_limit};

/// Header carrying the request id (set by the shared layers; used as the correlation id).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
