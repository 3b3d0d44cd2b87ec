//! Queries on `cad_files` and `cad_file_versions`. Every mutation writes its audit record in the
//! same transaction.

use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::cad_file_columns;
use crate::model::status;
use crate::validate::ValidFile;
use crate::{CadFile, FileVersion, FilesError};

/// The S3 key of one version of a file. Owner and file id in the key make a bucket listing
/// readable and keep versions of one file together.
pub fn object_key(owner: Uuid, file_id: Uuid, version: i32, filename: &str) -> String {
    format!("uploads/{owner}/{file_id}/v{version}/{filename}")
}

/// Creates a file in `uploading` state with its version 1.
pub async fn create(pool: &PgPool, owner: Uuid, file: &ValidFile) -> Result<CadFile, FilesError> {
    let id = Uuid::new_v4();
    let key = object_key(owner, id, 1, &file.filename);
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, CadFile>(concat!(
        "INSERT INTO cad_files (id, uploaded_by, filename, original_name, file_size, mime_type, s3_key, \
         tags, project_name, part_name, description) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
        cad_file_columns!()
    ))
    .bind(id)
    .bind(owner)
    .bind(&file.filename)
    .bind(&file.original_name)
    .bind(file.size)
    .bind(&file.content_type)
    .bind(&key)
    .bind(&file.tags)
    .bind(&file.project_name)
    .bind(&file.part_name)
    .bind(&file.description)
    .fetch_one(&mut *tx)
    .await?;
    insert_version(&mut tx, &row, 1, &key, file, None, owner).await?;
    db::audit::record(
        &mut tx,
        Some(owner),
        "file.create",
        "cad_file",
        &id.to_string(),
        serde_json::json!({"name": file.original_name, "size": file.size}),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

async fn insert_version(
    conn: &mut PgConnection,
    file: &CadFile,
    version: i32,
    key: &str,
    upload: &ValidFile,
    change_note: Option<&str>,
    uploader: Uuid,
) -> Result<FileVersion, FilesError> {
    Ok(sqlx::query_as::<_, FileVersion>(
        "INSERT INTO cad_file_versions (file_id, version, s3_key, file_size, mime_type, original_name, \
         change_note, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
    )
    .bind(file.id)
    .bind(version)
    .bind(key)
    .bind(upload.size)
    .bind(&upload.content_type)
    .bind(&upload.original_name)
    .bind(change_note)
    .bind(uploader)
    .fetch_one(conn)
    .await?)
}

/// A file by id.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<CadFile>, FilesError> {
    Ok(sqlx::query_as::<_, CadFile>(concat!(
        "SELECT ",
        cad_file_columns!(),
        " FROM cad_files WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Every version of a file, newest first.
pub async fn versions(pool: &PgPool, file_id: Uuid) -> Result<Vec<FileVersion>, FilesError> {
    Ok(sqlx::query_as::<_, FileVersion>(
        "SELECT * FROM cad_file_versions WHERE file_id = $1 ORDER BY version DESC",
    )
    .bind(file_id)
    .fetch_all(pool)
    .await?)
}

/// One version of a file.
pub async fn version(
    pool: &PgPool,
    file_id: Uuid,
    version: i32,
) -> Result<Option<FileVersion>, FilesError> {
    Ok(sqlx::query_as::<_, FileVersion>(
        "SELECT * FROM cad_file_versions WHERE file_id = $1 AND version = $2",
    )
    .bind(file_id)
    .bind(version)
    .fetch_optional(pool)
    .await?)
}

/// Opens a new version upload: the next version number, in `uploading` state.
pub async fn create_version(
    pool: &PgPool,
    file_id: Uuid,
    upload: &ValidFile,
    change_note: Option<&str>,
    uploader: Uuid,
) -> Result<Option<FileVersion>, FilesError> {
    let mut tx = pool.begin().await?;
    // The row lock serialises concurrent version requests so each gets its own number.
    let Some(file) = sqlx::query_as::<_, CadFile>(concat!(
        "SELECT ",
        cad_file_columns!(),
        " FROM cad_files WHERE id = $1 FOR UPDATE"
    ))
    .bind(file_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let next: i32 = sqlx::query_scalar(
        "SELECT COALESCE(max(version), 0) + 1 FROM cad_file_versions WHERE file_id = $1",
    )
    .bind(file_id)
    .fetch_one(&mut *tx)
    .await?;
    let key = object_key(file.uploaded_by, file.id, next, &upload.filename);
    let v = insert_version(&mut tx, &file, next, &key, upload, change_note, uploader).await?;
    db::audit::record(
        &mut tx,
        Some(uploader),
        "file.version.create",
        "cad_file",
        &file_id.to_string(),
        serde_json::json!({"version": next, "size": upload.size}),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(v))
}

/// Marks a verified version as uploaded and makes it the file's current version, in `processing`
/// state; `None` when the version was already completed. The caller sends the processing job inside `tx` before committing, so a failed send
/// leaves the upload completable again instead of stuck in `processing` with no job.
pub async fn mark_completed(
    tx: &mut Transaction<'_, Postgres>,
    actor: Uuid,
    version: &FileVersion,
    checksum: Option<&str>,
) -> Result<Option<(CadFile, FileVersion)>, FilesError> {
    let updated = sqlx::query_as::<_, FileVersion>(
        "UPDATE cad_file_versions SET status = 'uploaded', checksum = $3, completed_at = now() \
         WHERE file_id = $1 AND version = $2 AND status = 'uploading' RETURNING *",
    )
    .bind(version.file_id)
    .bind(version.version)
    .bind(checksum)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(v) = updated else {
        return Ok(None);
    };
    // A newer version completing later wins; an older one never replaces the current one.
    let file = sqlx::query_as::<_, CadFile>(concat!(
        "UPDATE cad_files SET current_version = $2, s3_key = $3, file_size = $4, mime_type = $5, \
         original_name = $6, checksum = $7, sha256 = NULL, status = $8, processing_error = NULL, \
         updated_at = now() \
         WHERE id = $1 AND (current_version <= $2 OR status = 'uploading') RETURNING ",
        cad_file_columns!()
    ))
    .bind(v.file_id)
    .bind(v.version)
    .bind(&v.s3_key)
    .bind(v.file_size)
    .bind(&v.mime_type)
    .bind(&v.original_name)
    .bind(checksum)
    .bind(status::PROCESSING)
    .fetch_optional(&mut **tx)
    .await?;
    let file = match file {
        Some(f) => f,
        None => {
            sqlx::query_as::<_, CadFile>(concat!(
                "SELECT ",
                cad_file_columns!(),
                " FROM cad_files WHERE id = $1"
            ))
            .bind(v.file_id)
            .fetch_one(&mut **tx)
            .await?
        }
    };
    db::audit::record(
        &mut *tx,
        Some(actor),
        "file.upload.complete",
        "cad_file",
        &v.file_id.to_string(),
        serde_json::json!({"version": v.version, "size": v.file_size, "checksum": checksum}),
    )
    .await?;
    Ok(Some((file, v)))
}

/// Changes to a file's descriptive metadata; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct FileChanges {
    /// New display name (and storage-safe name for future versions).
    pub name: Option<(String, String)>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Project.
    pub project_name: Option<Option<String>>,
    /// Part.
    pub part_name: Option<Option<String>>,
    /// Description.
    pub description: Option<Option<String>>,
}

/// Applies changes and records them.
pub async fn update(
    pool: &PgPool,
    actor: Uuid,
    id: Uuid,
    changes: &FileChanges,
) -> Result<Option<CadFile>, FilesError> {
    let mut tx = pool.begin().await?;
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("UPDATE cad_files SET updated_at = now()");
    if let Some((original, safe)) = &changes.name {
        q.push(", original_name = ").push_bind(original.clone());
        q.push(", filename = ").push_bind(safe.clone());
    }
    if let Some(tags) = &changes.tags {
        q.push(", tags = ").push_bind(tags.clone());
    }
    if let Some(v) = &changes.project_name {
        q.push(", project_name = ").push_bind(v.clone());
    }
    if let Some(v) = &changes.part_name {
        q.push(", part_name = ").push_bind(v.clone());
    }
    if let Some(v) = &changes.description {
        q.push(", description = ").push_bind(v.clone());
    }
    q.push(" WHERE id = ")
        .push_bind(id)
        .push(concat!(" RETURNING ", cad_file_columns!()));
    let Some(file) = q
        .build_query_as::<CadFile>()
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    db::audit::record(
        &mut tx,
        Some(actor),
        "file.update",
        "cad_file",
        &id.to_string(),
        serde_json::json!({
            "name": changes.name.as_ref().map(|n| &n.0),
            "tags": changes.tags,
            "project_name": changes.project_name,
            "part_name": changes.part_name,
            "description_changed": changes.description.is_some(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(file))
}

/// Every S3 key that belongs to a file: each version's object and each thumbnail.
pub async fn object_keys(
    conn: &mut PgConnection,
    file: &CadFile,
) -> Result<Vec<String>, FilesError> {
    let mut keys: Vec<String> =
        sqlx::query_scalar("SELECT s3_key FROM cad_file_versions WHERE file_id = $1")
            .bind(file.id)
            .fetch_all(&mut *conn)
            .await?;
    let thumbs: Vec<String> = file
        .thumbnails
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("key").and_then(|k| k.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !thumbs.is_empty() {
        // Thumbnails are content-addressed: identical files share them, so keep those another
        // file still points at.
        let shared: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT t->>'key' FROM cad_files f, jsonb_array_elements(f.thumbnails) t \
             WHERE f.id <> $1 AND t->>'key' = ANY($2)",
        )
        .bind(file.id)
        .bind(&thumbs)
        .fetch_all(&mut *conn)
        .await?;
        keys.extend(thumbs.into_iter().filter(|k| !shared.contains(k)));
    }
    if !keys.contains(&file.s3_key) {
        keys.push(file.s3_key.clone());
    }
    Ok(keys)
}
