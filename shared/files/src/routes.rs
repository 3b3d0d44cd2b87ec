//! The files-api router.

use std::time::Duration;

use api_common::{
    ApiError, ApiJson, ApiQuery, ApiResult, CorrelationId, Page, page_limit, parse_id,
};
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use response_pipeline::{Invalidator, tags};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use storage::{ObjectStore, PresignedRequest};
use users::{CurrentUser, User};
use uuid::Uuid;

use crate::listing::ListQuery;
use crate::model::status;
use crate::processing::{FileJobs, ProcessFile};
use crate::repo::{self, FileChanges};
use crate::validate::{self, NewFile};
use crate::{CadFile, FileVersion, FilesError};

/// Limits and lifetimes of the files API.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// How long a presigned upload URL is valid (the guide's flow: 15 minutes).
    pub upload_url_ttl: Duration,
    /// How long a presigned download URL is valid.
    pub download_url_ttl: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// What the files routes need; every client is built once per process.
#[derive(Debug, Clone, FromRef)]
pub struct FilesState {
    /// Database pool.
    pub pool: PgPool,
    /// Pool for read-only listings: a read replica when one is configured, else `pool`.
    #[from_ref(skip)]
    pub reader: PgPool,
    /// The uploads bucket.
    pub store: ObjectStore,
    /// Processing and search-indexing jobs.
    pub jobs: FileJobs,
    /// Limits.
    pub config: FilesConfig,
    /// Removes cached responses a change makes stale.
    pub invalidator: Invalidator,
}

/// The files-api router, ready for `lambda_http::run` or a local server.
pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/files", post(create_file).get(list_files))
        .route(
            "/api/files/{id}",
            get(get_file).put(update_file).delete(delete_file),
        )
        .route("/api/files/{id}/complete", post(complete_upload))
        .route(
            "/api/files/{id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/api/files/{id}/versions/{version}/complete",
            post(complete_version),
        )
        .route("/api/files/{id}/download", get(download))
        .route("/api/files/{id}/thumbnail", get(thumbnail))
        .with_state(state)
}

fn require_writer(user: &User) -> ApiResult<()> {
    if user.role().can_write_files() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "viewers cannot upload or change files".into(),
        ))
    }
}

fn require_owner_or_admin(user: &User, file: &CadFile) -> ApiResult<()> {
    require_writer(user)?;
    if file.uploaded_by == user.id || user.role().is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the file's owner or an admin can do this".into(),
        ))
    }
}

async fn load(state: &FilesState, raw_id: &str) -> ApiResult<CadFile> {
    let id = parse_id(raw_id, "file")?;
    repo::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("file {id}")))
}

/// What cached responses know a file by.
pub fn file_facts(file: &CadFile) -> tags::FileFacts {
    tags::FileFacts {
        id: file.id.to_string(),
        uploaded_by: file.uploaded_by.to_string(),
        project: file.project_name.clone(),
        tags: file.tags.clone(),
        search_terms: Vec::new(),
    }
}

/// Invalidates the cached responses a change from `before` to `after` makes stale.
async fn invalidate_file(state: &FilesState, before: Option<&CadFile>, after: Option<&CadFile>) {
    let before = before.map(file_facts);
    let after = after.map(file_facts);
    state
        .invalidator
        .invalidate(&tags::for_file_change(before.as_ref(), after.as_ref()))
        .await;
}

/// Queues the search-document refresh after a committed change. The change stands even when the
/// queue is unreachable: the failure is logged as an error and the nightly (or an admin's)
/// reindex-all job repairs the document.
async fn queue_reindex(state: &FilesState, file_id: Uuid, user_id: Uuid, correlation: &str) {
    if let Err(e) = state.jobs.index(file_id, Some(user_id), correlation).await {
        tracing::error!(%file_id, error = %e, "could not queue search reindexing");
    }
}

/// An upload the client performs: the file (or version) and where to PUT its bytes.
#[derive(Debug, Serialize)]
struct UploadSession<T> {
    #[serde(flatten)]
    record: T,
    upload: PresignedRequest,
}

async fn create_file(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<NewFile>,
) -> ApiResult<(StatusCode, Json<UploadSession<CadFile>>)> {
    require_writer(&me)?;
    let file = body.validate()?;
    let row = repo::create(&state.pool, me.id, &file).await?;
    invalidate_file(&state, None, Some(&row)).await;
    let upload = state
        .store
        .presign_put(&row.s3_key, &row.mime_type, state.config.upload_url_ttl)
        .await
        .map_err(FilesError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(UploadSession {
            record: row,
            upload,
        }),
    ))
}

async fn get_file(
    State(state): State<FilesState>,
    CurrentUser(_me): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CadFile>> {
    Ok(Json(load(&state, &id).await?))
}

async fn list_files(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<CadFile>>> {
    let limit = page_limit(query.limit)?;
    let listing = query.validate(me.id)?;
    // A replica may lag a second behind; listings tolerate that (single reads do not).
    let mut rows = listing.fetch(&state.reader, limit + 1).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|f| listing.cursor_after(f))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows,
        next_cursor,
    }))
}

/// Body of PUT /api/files/{id}: descriptive fields only; content changes go through versions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFile {
    name: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    project_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    part_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
}

/// Distinguishes an absent field (leave as is) from `null` (clear it).
fn nullable<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

async fn update_file(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateFile>,
) -> ApiResult<Json<CadFile>> {
    let file = load(&state, &id).await?;
    require_owner_or_admin(&me, &file)?;
    let changes = FileChanges {
        name: body
            .name
            .as_deref()
            .map(validate::validate_name)
            .transpose()?,
        tags: body.tags.map(validate::normalise_tags).transpose()?,
        project_name: body
            .project_name
            .map(|v| validate::optional_label("project_name", v))
            .transpose()?,
        part_name: body
            .part_name
            .map(|v| validate::optional_label("part_name", v))
            .transpose()?,
        description: body
            .description
            .map(validate::optional_description)
            .transpose()?,
    };
    let updated = repo::update(&state.pool, me.id, file.id, &changes)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("file {}", file.id)))?;
    invalidate_file(&state, Some(&file), Some(&updated)).await;
    queue_reindex(&state, updated.id, me.id, &correlation).await;
    Ok(Json(updated))
}

async fn delete_file(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "file")?;
    let mut tx = state.pool.begin().await.map_err(FilesError::from)?;
    let file = sqlx::query_as::<_, CadFile>(concat!(
        "SELECT ",
        crate::cad_file_columns!(),
        " FROM cad_files WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(FilesError::from)?
    .ok_or_else(|| ApiError::NotFound(format!("file {id}")))?;
    require_owner_or_admin(&me, &file)?;
    // Searches that matched the file must forget it; once the row is gone its document is too.
    let search_terms: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(tsvector_to_array(search_vector), '{}') FROM cad_files WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(FilesError::from)?;
    let keys = repo::object_keys(&mut tx, &file).await?;
    sqlx::query("DELETE FROM cad_files WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(FilesError::from)?;
    db::audit::record(
        &mut tx,
        Some(me.id),
        "file.delete",
        "cad_file",
        &id.to_string(),
        serde_json::json!({"name": file.original_name, "objects": keys.len()}),
    )
    .await
    .map_err(FilesError::from)?;
    // Objects go first: if S3 fails the row stays and the delete can be retried, rather than a
    // row-less object lingering unseen in the bucket.
    state
        .store
        .delete_many(&keys)
        .await
        .map_err(FilesError::from)?;
    tx.commit().await.map_err(FilesError::from)?;
    let mut before = file_facts(&file);
    before.search_terms = search_terms;
    state
        .invalidator
        .invalidate(&tags::for_file_change(Some(&before), None))
        .await;
    queue_reindex(&state, file.id, me.id, &correlation).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Answer of a completion: the file as it is now and the queued job.
#[derive(Debug, Serialize)]
struct Completed {
    file: CadFile,
    version: FileVersion,
    job_id: Uuid,
}

async fn complete_upload(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Completed>)> {
    let file = load(&state, &id).await?;
    require_owner_or_admin(&me, &file)?;
    if file.status != status::UPLOADING {
        return Err(ApiError::Conflict(format!(
            "the upload of this file is already complete (status {})",
            file.status
        )));
    }
    let version = repo::version(&state.pool, file.id, file.current_version)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("file {} has no version row", file.id)))?;
    complete(&state, &me, &headers, version).await
}

async fn complete_version(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    headers: HeaderMap,
    Path((id, number)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Completed>)> {
    let file = load(&state, &id).await?;
    require_owner_or_admin(&me, &file)?;
    let number: i32 = number
        .parse()
        .map_err(|_| ApiError::NotFound(format!("version {number}")))?;
    let version = repo::version(&state.pool, file.id, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("version {number} of file {}", file.id)))?;
    complete(&state, &me, &headers, version).await
}

/// Verifies the uploaded object against the declaration, then marks the version current and
/// queues its processing, atomically with respect to the queue send.
async fn complete(
    state: &FilesState,
    me: &User,
    headers: &HeaderMap,
    version: FileVersion,
) -> ApiResult<(StatusCode, Json<Completed>)> {
    if version.status != "uploading" {
        return Err(ApiError::Conflict(format!(
            "version {} is already complete",
            version.version
        )));
    }
    let info = state
        .store
        .head(&version.s3_key)
        .await
        .map_err(FilesError::from)?
        .ok_or_else(|| {
            ApiError::Conflict(
                "nothing has been uploaded yet: PUT the file to the upload URL first".into(),
            )
        })?;
    if info.size != version.file_size as u64 {
        return Err(ApiError::Conflict(format!(
            "the uploaded object is {} bytes but {} bytes were declared; upload it again",
            info.size, version.file_size
        )));
    }
    let mut tx = state.pool.begin().await.map_err(FilesError::from)?;
    let Some((file, version)) =
        repo::mark_completed(&mut tx, me.id, &version, info.etag.as_deref()).await?
    else {
        return Err(ApiError::Conflict(format!(
            "version {} is already complete",
            version.version
        )));
    };
    let correlation_id = headers
        .get(api_common::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let job = ProcessFile {
        file_id: file.id,
        version: Some(version.version),
    };
    let job_id = state
        .jobs
        .process(&job, file.uploaded_by, &correlation_id)
        .await?;
    tx.commit().await.map_err(FilesError::from)?;
    // Owner, project and tags do not change on completion; status, size and version do.
    invalidate_file(state, None, Some(&file)).await;
    tracing::info!(file_id = %file.id, version = version.version, %job_id, "upload complete, processing queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(Completed {
            file,
            version,
            job_id,
        }),
    ))
}

async fn list_versions(
    State(state): State<FilesState>,
    CurrentUser(_me): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<FileVersion>>> {
    let file = load(&state, &id).await?;
    Ok(Json(repo::versions(&state.pool, file.id).await?))
}

/// Body of POST /api/files/{id}/versions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVersion {
    /// Defaults to the file's current name.
    name: Option<String>,
    size: i64,
    content_type: String,
    change_note: Option<String>,
}

async fn create_version(
    State(state): State<FilesState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewVersion>,
) -> ApiResult<(StatusCode, Json<UploadSession<FileVersion>>)> {
    let file = load(&state, &id).await?;
    require_owner_or_admin(&me, &file)?;
    let upload = NewFile {
        name: body.name.unwrap_or_else(|| file.original_name.clone()),
        size: body.size,
        content_type: body.content_type,
        tags: Vec::new(),
        project_name: None,
        part_name: None,
        description: body.change_note.clone(),
    }
    .validate()?;
    let version = repo::create_version(
        &state.pool,
        file.id,
        &upload,
        upload.description.as_deref(),
        me.id,
    )
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("file {}", file.id)))?;
    state
        .invalidator
        .invalidate(&[tags::file(&file.id.to_string())])
        .await;
    let presigned = state
        .store
        .presign_put(
            &version.s3_key,
            &version.mime_type,
            state.config.upload_url_ttl,
        )
        .await
        .map_err(FilesError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(UploadSession {
            record: version,
            upload: presigned,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    version: Option<i32>,
}

/// A presigned download of the current (or a given) version.
#[derive(Debug, Serialize)]
struct Download {
    file_id: Uuid,
    version: i32,
    filename: String,
    size: i64,
    download: PresignedRequest,
}

async fn download(
    State(state): State<FilesState>,
    CurrentUser(_me): CurrentUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> ApiResult<Json<Download>> {
    let file = load(&state, &id).await?;
    let number = query.version.unwrap_or(file.current_version);
    let version = repo::version(&state.pool, file.id, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("version {number} of file {}", file.id)))?;
    if version.status != "uploaded" {
        return Err(ApiError::Conflict(format!(
            "version {number} has not been uploaded yet"
        )));
    }
    let presigned = state
        .store
        .presign_get(
            &version.s3_key,
            &version.original_name,
            state.config.download_url_ttl,
        )
        .await
        .map_err(FilesError::from)?;
    Ok(Json(Download {
        file_id: file.id,
        version: number,
        filename: version.original_name,
        size: version.file_size,
        download: presigned,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThumbnailQuery {
    width: Option<u32>,
    format: Option<String>,
}

/// Redirects to one rendered thumbnail: its CDN URL when a CDN is configured, else a short-lived
/// presigned S3 URL. Without `width`, the smallest at least 320 px wide; `format` png (default)
/// or webp.
async fn thumbnail(
    State(state): State<FilesState>,
    CurrentUser(_me): CurrentUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ThumbnailQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;

    let format = query.format.as_deref().unwrap_or("png");
    if format != "png" && format != "webp" {
        return Err(ApiError::invalid("format", "must be png or webp"));
    }
    let file = load(&state, &id).await?;
    let mut candidates: Vec<(u64, &serde_json::Value)> = file
        .thumbnails
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t.get("format").and_then(|f| f.as_str()) == Some(format))
        .filter_map(|t| t.get("width").and_then(|w| w.as_u64()).map(|w| (w, t)))
        .collect();
    candidates.sort_by_key(|(w, _)| *w);
    let chosen = match query.width {
        Some(w) => candidates.iter().find(|(cw, _)| *cw == u64::from(w)),
        None => candidates
            .iter()
            .find(|(cw, _)| *cw >= 320)
            .or(candidates.last()),
    };
    let Some((width, thumb)) = chosen else {
        return Err(ApiError::NotFound(match file.status.as_str() {
            "ready" => format!("no {format} thumbnail of that width for file {}", file.id),
            other => format!("file {} has no thumbnails yet (status {other})", file.id),
        }));
    };
    let location = match thumb.get("url").and_then(|u| u.as_str()) {
        Some(url) => url.to_owned(),
        None => {
            let key = thumb
                .get("key")
                .and_then(|k| k.as_str())
                .ok_or_else(|| ApiError::Internal("thumbnail without a key".into()))?;
            state
                .store
                .presign_get(
                    key,
                    &format!("{}-{width}.{format}", file.id),
                    state.config.download_url_ttl,
                )
                .await
                .map_err(FilesError::from)?
                .url
        }
    };
    Ok(axum::response::Redirect::temporary(&location).into_response())
}
