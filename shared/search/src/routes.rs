//! GET and POST /api/search.

use api_common::{ApiJson, ApiQuery, ApiResult};
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use files::listing::ListQuery;
use response_pipeline::{CacheTags, Invalidator, tags};
use sqlx::PgPool;
use users::CurrentUser;

use crate::document::query_terms;
use crate::query::Search;

/// What the search routes need.
#[derive(Debug, Clone, FromRef)]
pub struct SearchState {
    /// Database pool.
    pub pool: PgPool,
    /// Needed by the caller extractor (user provisioning invalidates the users listing).
    pub invalidator: Invalidator,
}

/// The /api/search router.
pub fn router(state: SearchState) -> Router {
    Router::new()
        .route("/api/search", get(search_get).post(search_post))
        .with_state(state)
}

async fn search_get(
    State(state): State<SearchState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    run(&state, me, query).await
}

/// POST takes the same fields as JSON, for queries too long or structured for a URL.
async fn search_post(
    State(state): State<SearchState>,
    CurrentUser(me): CurrentUser,
    ApiJson(query): ApiJson<ListQuery>,
) -> ApiResult<Response> {
    run(&state, me, query).await
}

async fn run(state: &SearchState, me: users::User, query: ListQuery) -> ApiResult<Response> {
    let search = Search::from_query(query, me.id)?;
    let page = search.run(&state.pool, me.id).await?;
    // A cached page can only change when a file sharing one of the query's lexemes changes.
    let terms = query_terms(&state.pool, &search.text).await?;
    let mut response = Json(page).into_response();
    response.extensions_mut().insert(CacheTags(
        terms
            .iter()
            .map(|t| tags::search_term(t))
            .chain([tags::search_all()])
            .collect(),
    ));
    Ok(response)
}
