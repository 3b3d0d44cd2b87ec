//! Full-text queries: the listing's filters plus a websearch-style text query, ranked by
//! `ts_rank_cd`, paged by keyset on (score, id), recorded in the search history.

use std::time::Instant;

use api_common::{ApiError, decode_cursor, encode_cursor, page_limit};
use files::CadFile;
use files::listing::{Filters, ListQuery};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::SearchError;

const MAX_QUERY_CHARS: usize = 500;

/// A validated search.
#[derive(Debug, Clone)]
pub struct Search {
    /// The text as the user typed it.
    pub text: String,
    filters: Filters,
    filters_echo: serde_json::Value,
    /// Page size.
    pub limit: u32,
    after: Option<(f32, Uuid)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Position {
    score: f32,
    id: Uuid,
}

/// One result.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Hit {
    /// The file.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub file: CadFile,
    /// Relevance (`ts_rank_cd`, higher is better).
    pub score: f32,
}

/// A page of results.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    /// The query text.
    pub query: String,
    /// The filters applied, as given.
    pub filters: serde_json::Value,
    /// Results, best first.
    pub items: Vec<Hit>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
    /// Time spent in the database, in milliseconds.
    pub took_ms: f64,
}

impl Search {
    /// Validates a search given as the listing's query parameters plus `q`; `me` resolves
    /// `uploaded_by=me`.
    pub fn from_query(mut query: ListQuery, me: Uuid) -> Result<Search, ApiError> {
        let text = query
            .q
            .take()
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        if text.is_empty() {
            return Err(ApiError::invalid(
                "q",
                "a search needs a query text; use /api/files to list",
            ));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::invalid(
                "q",
                format!("at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        if query.sort.is_some() || query.order.is_some() {
            return Err(ApiError::invalid(
                "sort",
                "search results are ordered by relevance",
            ));
        }
        let limit = page_limit(query.limit)?;
        let after = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor::<Position>(c).map(|p| (p.score, p.id)))
            .transpose()?;
        let filters_echo = serde_json::json!({
            "tags": query.tags, "tags_mode": query.tags_mode, "project": query.project, "part": query.part,
            "uploaded_by": query.uploaded_by, "created_from": query.created_from, "created_to": query.created_to,
            "min_size": query.min_size, "max_size": query.max_size, "content_type": query.content_type,
            "status": query.status,
        });
        let filters = query.filters(me)?;
        Ok(Search {
            text,
            filters,
            filters_echo,
            limit,
            after,
        })
    }

    /// Runs the search; the first page is recorded in the search history of `user`.
    pub async fn run(&self, pool: &PgPool, user: Uuid) -> Result<SearchPage, SearchError> {
        let started = Instant::now();
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
            "SELECT ",
            files::cad_file_columns!(),
            ", ts_rank_cd(search_vector, query) AS score FROM cad_files, websearch_to_tsquery('english', "
        ));
        q.push_bind(self.text.clone())
            .push(") AS query WHERE search_vector @@ query");
        self.filters.push_where(&mut q);
        if let Some((score, id)) = self.after {
            q.push(" AND (ts_rank_cd(search_vector, query), id) < (")
                .push_bind(score)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(" ORDER BY score DESC, id DESC LIMIT ")
            .push_bind(i64::from(self.limit) + 1);
        let mut items: Vec<Hit> = q.build_query_as().fetch_all(pool).await?;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        let next_cursor = if items.len() > self.limit as usize {
            items.truncate(self.limit as usize);
            items.last().map(|h| {
                encode_cursor(&Position {
                    score: h.score,
                    id: h.file.id,
                })
            })
        } else {
            None
        };
        if self.after.is_none() {
            record(pool, user, &self.text, &self.filters_echo, &items, took_ms).await?;
        }
        Ok(SearchPage {
            query: self.text.clone(),
            filters: self.filters_echo.clone(),
            items,
            next_cursor,
            took_ms,
        })
    }
}

/// Writes one search_queries row and its ranked results (first page) in two statements.
async fn record(
    pool: &PgPool,
    user: Uuid,
    text: &str,
    filters: &serde_json::Value,
    items: &[Hit],
    took_ms: f64,
) -> Result<(), SearchError> {
    let mut tx = pool.begin().await?;
    let query_id: Uuid = sqlx::query_scalar(
        "INSERT INTO search_queries (user_id, query_text, filters, result_count, duration_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user)
    .bind(text)
    .bind(filters)
    .bind(items.len() as i32)
    .bind(took_ms as f32)
    .fetch_one(&mut *tx)
    .await?;
    if !items.is_empty() {
        let ids: Vec<Uuid> = items.iter().map(|h| h.file.id).collect();
        let scores: Vec<f32> = items.iter().map(|h| h.score).collect();
        let ranks: Vec<i32> = (1..=items.len() as i32).collect();
        sqlx::query(
            "INSERT INTO search_results (query_id, file_id, relevance_score, rank) \
             SELECT $1, * FROM UNNEST($2::uuid[], $3::real[], $4::int[])",
        )
        .bind(query_id)
        .bind(&ids)
        .bind(&scores)
        .bind(&ranks)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
