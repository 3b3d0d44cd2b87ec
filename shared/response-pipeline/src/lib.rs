//! The guide's CompressionService as one tower layer stack shared by every API function:
//! `Accept-Encoding` negotiation (br, zstd, gzip, identity; q-values respected), compression of
//! compressible bodies of at least 1 KB at levels chosen by measurement, strong ETags with 304s,
//! `Cache-Control` decided per route class in one table, response size monitoring, and a clear
//! error instead of a gateway failure for a response over Lambda's 6 MB limit; and the guide's
//! CacheMiddleware, which keeps successful responses in Redis already compressed.

pub mod compress;
pub mod etag;
pub mod negotiate;
mod response_cache;
pub mod route_policy;
mod service;
pub mod size;
mod stack;
pub mod tags;
pub mod warm;

pub use compress::Levels;
pub use negotiate::Encoding;
pub use response_cache::{
    CacheTags, Invalidator, ResponseCache, ResponseCacheConfig, ResponseCacheLayer, X_CACHE,
};
pub use service::{PipelineConfig, PreparedBody, ResponsePipeline, ResponsePipelineLayer};
pub use stack::{apply, apply_monitored};
