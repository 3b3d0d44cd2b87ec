//! The guide's cache warming: requests for the configured hot entries run through the full
//! stack (cache layer included) with `Cache-Control: no-cache`, so each is recomputed and stored
//! fresh, in every coding, before real callers ask.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::Encoding;
use crate::route_policy::{RouteClass, classify, template_for};

/// Outcome of warming one path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warmed {
    /// The path and query warmed.
    pub path: String,
    /// Status of the recomputation.
    pub status: u16,
    /// Codings stored.
    pub encodings: Vec<&'static str>,
    /// Uncompressed size of the entry.
    pub bytes: usize,
}

/// Why a path cannot be warmed.
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// Only shared catalogue entries can be warmed: private ones are keyed by caller.
    #[error("{0}: only shared catalogue routes can be warmed (private entries are per caller)")]
    NotShared(String),
    /// Not a path of the route table.
    #[error("{0}: not a GET route of the API")]
    UnknownRoute(String),
}

/// Parses CACHE_WARM_PATHS-style lists: comma or whitespace separated paths with queries.
pub fn parse_paths(list: &str) -> Vec<String> {
    list.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

/// Checks that each path is a shared catalogue route in the route table.
pub fn check_paths(paths: &[String]) -> Result<(), WarmError> {
    for p in paths {
        let (path, query) = p.split_once('?').unwrap_or((p, ""));
        let template = template_for(path).ok_or_else(|| WarmError::UnknownRoute(p.clone()))?;
        let query = (!query.is_empty()).then_some(query);
        if !matches!(
            classify(&http::Method::GET, Some(template), query),
            RouteClass::Catalogue { .. }
        ) {
            return Err(WarmError::NotShared(p.clone()));
        }
    }
    Ok(())
}

/// Warms every path: one recomputation (identity and zstd stored), then one request per other
/// coding, which the cache layer answers from the stored body and adds to the entry.
pub async fn warm(
    router: &Router,
    paths: &[String],
    context: &lambda_http::request::RequestContext,
) -> Vec<Warmed> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let mut encodings = Vec::new();
        let mut status = 0;
        let mut bytes = 0;
        for (i, enc) in [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip]
            .into_iter()
            .enumerate()
        {
            let mut req = Request::get(path.as_str()).header("accept-encoding", enc.token());
            if i == 0 {
                req = req.header("cache-control", "no-cache");
            }
            let Ok(mut req) = req.body(Body::empty()) else {
                tracing::warn!(%path, "not a valid request path");
                break;
            };
            req.extensions_mut().insert(context.clone());
            let Ok(resp) = router.clone().oneshot(req).await;
            status = resp.status().as_u16();
            if resp.status() != StatusCode::OK {
                tracing::warn!(%path, status, "warming failed");
                break;
            }
            let stored = resp
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(prepared) = resp.extensions().get::<crate::PreparedBody>() {
                bytes = prepared.identity.len();
            }
            let _ = resp.into_body().collect().await;
            if stored.as_deref() == Some(enc.token()) {
                encodings.push(enc.token());
            }
        }
        tracing::info!(%path, status, ?encodings, "cache warmed");
        out.push(Warmed {
            path: path.clone(),
            status,
            encodings,
            bytes,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shared_catalogue_paths_can_be_warmed() {
        let ok = parse_paths("/api/files?limit=50, /api/files?sort=name&limit=50\n/api/files/abc");
        assert_eq!(ok.len(), 3);
        assert!(check_paths(&ok).is_ok());
        assert!(matches!(
            check_paths(&["/api/users/me".into()]),
            Err(WarmError::NotShared(_))
        ));
        assert!(matches!(
            check_paths(&["/api/files?uploaded_by=me".into()]),
            Err(WarmError::NotShared(_))
        ));
        assert!(matches!(
            check_paths(&["/api/nope".into()]),
            Err(WarmError::UnknownRoute(_))
        ));
    }
}
