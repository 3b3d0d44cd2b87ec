//! CAD files: upload sessions through presigned S3 URLs, completion checks, versions, metadata
//! edits, filtered keyset listings, downloads, deletion, and the files-api router.

mod error;
pub mod listing;
pub mod model;
pub mod processing;
pub mod repo;
mod routes;
pub mod validate;

pub use error::FilesError;
pub use model::{CadFile, FileVersion};
pub use processing::{FileJobs, IndexFile, ProcessFile};
pub use routes::{FilesConfig, FilesState, file_facts, router};
