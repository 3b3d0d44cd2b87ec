//! Rows of `cad_files` and `cad_file_versions` as the API returns them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Processing states of a file: uploading → processing → ready | failed.
pub mod status {
    /// Created; waiting for the client's PUT to S3 and the completion call.
    pub const UPLOADING: &str = "uploading";
    /// Uploaded and verified; the file-processing job is queued or running.
    pub const PROCESSING: &str = "processing";
    /// Metadata and thumbnails are available.
    pub const READY: &str = "ready";
    /// Processing failed; `processing_error` says why.
    pub const FAILED: &str = "failed";
}

/// The columns of [`CadFile`], for `concat!`-built static queries: the search document
/// (`search_vector`) is never read back with a file, it only costs bytes on the wire.
#[macro_export]
macro_rules! cad_file_columns {
    () => {
        "id, uploaded_by, filename, original_name, file_size, mime_type, sha256, checksum, s3_key, \
         status, processing_error, tags, project_name, part_name, description, metadata, thumbnails, \
         current_version, created_at, updated_at"
    };
}

/// A CAD file.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CadFile {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub uploaded_by: Uuid,
    /// Storage-safe name derived from `original_name`.
    pub filename: String,
    /// The name the client gave.
    pub original_name: String,
    /// Size of the current version in bytes.
    pub file_size: i64,
    /// Declared content type.
    pub mime_type: String,
    /// SHA-256 of the current version, once processed.
    pub sha256: Option<String>,
    /// S3 ETag of the current version, recorded on completion.
    pub checksum: Option<String>,
    /// S3 key of the current version.
    pub s3_key: String,
    /// uploading | processing | ready | failed.
    pub status: String,
    /// Why processing failed, in words for the user.
    pub processing_error: Option<String>,
    /// Lower-case tags.
    pub tags: Vec<String>,
    /// Project.
    pub project_name: Option<String>,
    /// Part.
    pub part_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Geometric metadata extracted by processing.
    pub metadata: serde_json::Value,
    /// Thumbnail keys and URLs.
    pub thumbnails: serde_json::Value,
    /// Number of the current version.
    pub current_version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One uploaded (or uploading) version of a file.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FileVersion {
    /// Id.
    pub id: Uuid,
    /// The file.
    pub file_id: Uuid,
    /// 1, 2, ...
    pub version: i32,
    /// S3 key of this version.
    pub s3_key: String,
    /// Declared (and, once uploaded, verified) size.
    pub file_size: i64,
    /// Content type.
    pub mime_type: String,
    /// Name given for this version.
    pub original_name: String,
    /// SHA-256, once processed.
    pub sha256: Option<String>,
    /// S3 ETag, once uploaded.
    pub checksum: Option<String>,
    /// uploading | uploaded.
    pub status: String,
    /// What changed.
    pub change_note: Option<String>,
    /// Who uploaded it.
    pub uploaded_by: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the upload was verified.
    pub completed_at: Option<DateTime<Utc>>,
}
