//! GET /api/files: filters, sort orders and keyset pagination over `cad_files`.

use api_common::{ApiError, decode_cursor, encode_cursor};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::validate::{normalise_tags, optional_label, validate_content_type};
use crate::{CadFile, FilesError};

/// The query string of the listing, as the client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Full-text query: only for /api/search (the listing refuses it).
    pub q: Option<String>,
    /// Comma-separated tags.
    pub tags: Option<String>,
    /// `any` (default) or `all` of `tags`.
    pub tags_mode: Option<TagsMode>,
    /// Exact project.
    pub project: Option<String>,
    /// Exact part.
    pub part: Option<String>,
    /// Uploader id, or `me`.
    pub uploaded_by: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub created_to: Option<DateTime<Utc>>,
    /// At least this many bytes.
    pub min_size: Option<i64>,
    /// At most this many bytes.
    pub max_size: Option<i64>,
    /// Exact content type.
    pub content_type: Option<String>,
    /// Processing status.
    pub status: Option<String>,
    /// `created_at` (default), `name` or `size`.
    pub sort: Option<SortField>,
    /// `desc` (default for created_at) or `asc`.
    pub order: Option<SortOrder>,
    /// Page size.
    pub limit: Option<u32>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// How several tags combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagsMode {
    /// Files with at least one of the tags.
    Any,
    /// Files with every tag.
    All,
}

/// Sortable columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    /// Creation time.
    CreatedAt,
    /// Original name, case-insensitive.
    Name,
    /// Size in bytes.
    Size,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// The position after the last row of a page, bound to the sort it was made for.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    sort: SortField,
    order: SortOrder,
    value: serde_json::Value,
    id: Uuid,
}

/// Validated filters, shared by the listing and the search.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    tags: Vec<String>,
    tags_mode: Option<TagsMode>,
    project: Option<String>,
    part: Option<String>,
    uploaded_by: Option<Uuid>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    min_size: Option<i64>,
    max_size: Option<i64>,
    content_type: Option<String>,
    status: Option<String>,
}

/// A validated listing request.
#[derive(Debug, Clone)]
pub struct Listing {
    filters: Filters,
    sort: SortField,
    order: SortOrder,
    after: Option<(SortKey, Uuid)>,
}

/// A typed sort-column value taken from a cursor.
#[derive(Debug, Clone)]
enum SortKey {
    CreatedAt(DateTime<Utc>),
    Name(String),
    Size(i64),
}

impl SortKey {
    fn from_cursor(sort: SortField, value: serde_json::Value) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid("cursor", "not a cursor returned by this API");
        match sort {
            SortField::CreatedAt => serde_json::from_value(value)
                .map(SortKey::CreatedAt)
                .map_err(|_| bad()),
            SortField::Name => value
                .as_str()
                .map(|s| SortKey::Name(s.to_owned()))
                .ok_or_else(bad),
            SortField::Size => value.as_i64().map(SortKey::Size).ok_or_else(bad),
        }
    }
}

impl ListQuery {
    /// Validates the filters; `me` is the caller's id, for `uploaded_by=me`.
    pub fn filters(&mut self, me: Uuid) -> Result<Filters, ApiError> {
        let tags = match self.tags.take() {
            Some(t) => normalise_tags(t.split(',').map(str::to_owned).collect())?,
            None => Vec::new(),
        };
        let uploaded_by = match self.uploaded_by.as_deref() {
            None => None,
            Some("me") => Some(me),
            Some(raw) => Some(
                Uuid::parse_str(raw)
                    .map_err(|_| ApiError::invalid("uploaded_by", "a user id or `me`"))?,
            ),
        };
        if let (Some(from), Some(to)) = (self.created_from, self.created_to)
            && from > to
        {
            return Err(ApiError::invalid(
                "created_to",
                "must not be before created_from",
            ));
        }
        if let (Some(min), Some(max)) = (self.min_size, self.max_size)
            && min > max
        {
            return Err(ApiError::invalid("max_size", "must not be below min_size"));
        }
        let status = match self.status.take() {
            Some(s) if ["uploading", "processing", "ready", "failed"].contains(&s.as_str()) => {
                Some(s)
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "status",
                    "one of uploading, processing, ready, failed",
                ));
            }
            None => None,
        };
        Ok(Filters {
            tags,
            tags_mode: self.tags_mode,
            project: optional_label("project", self.project.take())?,
            part: optional_label("part", self.part.take())?,
            uploaded_by,
            created_from: self.created_from,
            created_to: self.created_to,
            min_size: self.min_size,
            max_size: self.max_size,
            content_type: self
                .content_type
                .as_deref()
                .map(validate_content_type)
                .transpose()
                .map_err(|_| ApiError::invalid("content_type", "a MIME type"))?,
            status,
        })
    }

    /// Validates the query as a listing; `me` is the caller's id, for `uploaded_by=me`.
    pub fn validate(mut self, me: Uuid) -> Result<Listing, ApiError> {
        if self.q.is_some() {
            return Err(ApiError::invalid(
                "q",
                "full-text queries go to /api/search, which takes the same filters",
            ));
        }
        let filters = self.filters(me)?;
        let sort = self.sort.unwrap_or(SortField::CreatedAt);
        let order = self.order.unwrap_or(match sort {
            SortField::CreatedAt => SortOrder::Desc,
            SortField::Name | SortField::Size => SortOrder::Asc,
        });
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => {
                let pos: Position = decode_cursor(c)?;
                if pos.sort != sort || pos.order != order {
                    return Err(ApiError::invalid(
                        "cursor",
                        "this cursor belongs to a listing with another sort order",
                    ));
                }
                Some((SortKey::from_cursor(sort, pos.value)?, pos.id))
            }
        };
        Ok(Listing {
            filters,
            sort,
            order,
            after,
        })
    }
}

impl Filters {
    /// Appends ` AND …` conditions for every filter set.
    pub fn push_where(&self, q: &mut QueryBuilder<Postgres>) {
        if !self.tags.is_empty() {
            q.push(match self.tags_mode.unwrap_or(TagsMode::Any) {
                TagsMode::Any => " AND tags && ",
                TagsMode::All => " AND tags @> ",
            })
            .push_bind(self.tags.clone());
        }
        if let Some(p) = &self.project {
            q.push(" AND project_name = ").push_bind(p.clone());
        }
        if let Some(p) = &self.part {
            q.push(" AND part_name = ").push_bind(p.clone());
        }
        if let Some(u) = self.uploaded_by {
            q.push(" AND uploaded_by = ").push_bind(u);
        }
        if let Some(t) = self.created_from {
            q.push(" AND created_at >= ").push_bind(t);
        }
        if let Some(t) = self.created_to {
            q.push(" AND created_at < ").push_bind(t);
        }
        if let Some(n) = self.min_size {
            q.push(" AND file_size >= ").push_bind(n);
        }
        if let Some(n) = self.max_size {
            q.push(" AND file_size <= ").push_bind(n);
        }
        if let Some(ct) = &self.content_type {
            q.push(" AND mime_type = ").push_bind(ct.clone());
        }
        if let Some(s) = &self.status {
            q.push(" AND status = ").push_bind(s.clone());
        }
    }
}

impl Listing {
    /// The cursor pointing after `file` in this listing's order.
    pub fn cursor_after(&self, file: &CadFile) -> String {
        let value = match self.sort {
            SortField::CreatedAt => serde_json::json!(file.created_at),
            SortField::Name => serde_json::json!(file.original_name.to_lowercase()),
            SortField::Size => serde_json::json!(file.file_size),
        };
        encode_cursor(&Position {
            sort: self.sort,
            order: self.order,
            value,
            id: file.id,
        })
    }

    /// Runs the listing, returning at most `limit` rows.
    pub async fn fetch(&self, pool: &PgPool, limit: u32) -> Result<Vec<CadFile>, FilesError> {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
            "SELECT ",
            crate::cad_file_columns!(),
            " FROM cad_files WHERE true"
        ));
        self.filters.push_where(&mut q);
        let column = match self.sort {
            SortField::CreatedAt => "created_at",
            SortField::Name => "lower(original_name)",
            SortField::Size => "file_size",
        };
        let (cmp, dir) = match self.order {
            SortOrder::Asc => (">", "ASC"),
            SortOrder::Desc => ("<", "DESC"),
        };
        if let Some((key, id)) = &self.after {
            q.push(format!(" AND ({column}, id) {cmp} ("));
            match key {
                SortKey::CreatedAt(t) => q.push_bind(*t),
                SortKey::Name(n) => q.push_bind(n.clone()),
                SortKey::Size(n) => q.push_bind(*n),
            };
            q.push(", ").push_bind(*id).push(")");
        }
        q.push(format!(" ORDER BY {column} {dir}, id {dir} LIMIT "))
            .push_bind(i64::from(limit));
        Ok(q.build_query_as::<CadFile>().fetch_all(pool).await?)
    }
}
