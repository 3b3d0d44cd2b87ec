//! Full-text search over CAD files. Each file has a search document (`cad_files.search_vector`),
//! a weighted tsvector kept current by the search-indexing worker; queries rank files with
//! `ts_rank_cd`, combine with the listing filters, page by keyset, and are recorded in the search
//! history (`search_queries`, `search_results`).

pub mod document;
mod error;
pub mod indexing;
pub mod query;
mod routes;

pub use error::SearchError;
pub use indexing::IndexingHandler;
pub use routes::{SearchState, router};
