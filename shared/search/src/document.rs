//! The search document: what makes a file findable, and with which weight.

use sqlx::PgPool;
use uuid::Uuid;

use crate::SearchError;

/// The text search configuration of documents and queries. Both sides must use the same one, and
/// so must the cache invalidation (it compares lexemes).
pub const CONFIG: &str = "english";

/// The weighted document of a `cad_files` row: name (A); project, part and tags (B);
/// description (C); every string value of the metadata (D).
const DOCUMENT_SQL: &str = "\
    setweight(to_tsvector('english', coalesce(original_name, '') || ' ' || \
                          regexp_replace(coalesce(original_name, ''), '[._-]+', ' ', 'g')), 'A') || \
    setweight(to_tsvector('english', coalesce(project_name, '') || ' ' || coalesce(part_name, '') || ' ' || \
                          array_to_string(tags, ' ')), 'B') || \
    setweight(to_tsvector('english', coalesce(description, '')), 'C') || \
    setweight(jsonb_to_tsvector('english', metadata, '[\"string\"]'), 'D')";

/// What (re)indexing one file changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexOutcome {
    /// False when the file no longer exists (deleted before the job ran).
    pub found: bool,
    /// Lexemes of the document before.
    pub terms_before: Vec<String>,
    /// Lexemes of the document now.
    pub terms_after: Vec<String>,
}

impl IndexOutcome {
    /// Every lexeme a cached search could have matched this file on, before or after.
    pub fn affected_terms(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .terms_before
            .iter()
            .chain(&self.terms_after)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Recomputes one file's document; returns the lexemes before and after.
pub async fn index_file(pool: &PgPool, file_id: Uuid) -> Result<IndexOutcome, SearchError> {
    let sql = format!(
        "WITH old AS (SELECT id, search_vector FROM cad_files WHERE id = $1 FOR UPDATE) \
         UPDATE cad_files f SET search_vector = {DOCUMENT_SQL} FROM old WHERE f.id = old.id \
         RETURNING coalesce(tsvector_to_array(old.search_vector), '{{}}'), tsvector_to_array(f.search_vector)"
    );
    let row: Option<(Vec<String>, Vec<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(file_id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some((before, after)) => IndexOutcome {
            found: true,
            terms_before: before,
            terms_after: after,
        },
        None => IndexOutcome::default(),
    })
}

/// The lexemes of a file's current document (empty if never indexed or unknown).
pub async fn terms_of(pool: &PgPool, file_id: Uuid) -> Result<Vec<String>, SearchError> {
    let terms: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT coalesce(tsvector_to_array(search_vector), '{}') FROM cad_files WHERE id = $1",
    )
    .bind(file_id)
    .fetch_optional(pool)
    .await?;
    Ok(terms.unwrap_or_default())
}

/// The lexemes of a query text, as the search matches them.
pub async fn query_terms(pool: &PgPool, text: &str) -> Result<Vec<String>, SearchError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(array_agg(DISTINCT lexeme ORDER BY lexeme), '{}') \
         FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lexeme",
    )
    .bind(text)
    .fetch_one(pool)
    .await?)
}

/// Progress of a bulk reindex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReindexProgress {
    /// Files reindexed so far.
    pub done: u64,
    /// Files in total when the reindex started.
    pub total: u64,
}

/// Recomputes every document, `batch` files per statement in id order (keyset), calling
/// `progress` after each batch. Each batch is its own statement: a long reindex never holds locks
/// on the whole table.
pub async fn reindex_all<F, Fut>(
    pool: &PgPool,
    batch: i64,
    mut progress: F,
) -> Result<u64, SearchError>
where
    F: FnMut(ReindexProgress) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM cad_files")
        .fetch_one(pool)
        .await?;
    let sql = format!(
        "WITH batch AS (SELECT id FROM cad_files WHERE id > $1 ORDER BY id LIMIT $2) \
         UPDATE cad_files f SET search_vector = {DOCUMENT_SQL} FROM batch WHERE f.id = batch.id \
         RETURNING f.id"
    );
    let mut after = Uuid::nil();
    let mut done: u64 = 0;
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(after)
            .bind(batch.max(1))
            .fetch_all(pool)
            .await?;
        let Some(last) = ids.iter().max() else {
            break;
        };
        after = *last;
        done += ids.len() as u64;
        progress(ReindexProgress {
            done,
            total: total.max(0) as u64,
        })
        .await;
    }
    Ok(done)
}
