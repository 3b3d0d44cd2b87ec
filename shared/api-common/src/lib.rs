//! HTTP plumbing shared by every API function: the error type and its JSON body, extractors
//! that report the offending field, keyset pagination, and the shared response layer stack.

mod error;
mod extract;
pub mod layers;
pub mod pagination;

pub use error::ApiError;
pub use extract::{ApiJson, ApiQuery, parse_id, parse_json};
pub use pagination::{Page, decode_cursor, encode_cursor, into_page, page_limit};

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
