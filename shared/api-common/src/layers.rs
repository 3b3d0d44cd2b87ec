//! The one place where the response layers every API function shares are stacked, in order.

use axum::Router;
use axum::http::Request;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::ApiError;

/// Header carrying the request id (API Gateway's id when present, else a fresh UUID).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps an API function's router in the shared layers (outermost first): request id, tracing,
/// and a JSON 404 for unknown routes.
pub fn apply(router: Router) -> Router {
    let header = http::HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .fallback(|| async { ApiError::NotFound("route".to_owned()) })
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}
