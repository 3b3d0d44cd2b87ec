//! The one place where the layers every API function shares are stacked, in order.

use axum::Router;
use axum::http::Request;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::{PipelineConfig, ResponseCacheConfig, ResponseCacheLayer, ResponsePipelineLayer};

/// Wraps an API function's router in the shared layers. From the outside in: request id,
/// tracing, then, inside routing so the matched route is known, the response cache (Redis;
/// disabled when `cache` is None) and the response pipeline (304s, compression, ETag,
/// Cache-Control, size guard). Unknown routes get a JSON 404.
pub fn apply(router: Router, cache: Option<cache::CacheService>) -> Router {
    apply_monitored(router, cache, None)
}

/// [`apply`] plus the metrics layer outermost inside routing, so a request's latency, status and
/// sizes are recorded under its route template including the time spent in the cache and the
/// pipeline (EMF lines, and the real-time view in Redis).
pub fn apply_monitored(
    router: Router,
    cache: Option<cache::CacheService>,
    monitor: Option<monitoring::Monitor>,
) -> Router {
    let header = http::HeaderName::from_static(api_common::REQUEST_ID_HEADER);
    let pipeline = PipelineConfig::default();
    let router = router
        .fallback(|| async { api_common::ApiError::NotFound("route".to_owned()) })
        .layer(ResponsePipelineLayer::new(pipeline.clone()))
        .layer(ResponseCacheLayer::new(
            cache,
            ResponseCacheConfig::default(),
            pipeline,
        ));
    let router = match monitor {
        Some(m) => router.layer(m.layer()),
        None => router,
    };
    router
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(api_common::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}
