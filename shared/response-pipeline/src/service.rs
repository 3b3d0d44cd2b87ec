//! The tower layer that takes a handler's response to the wire: 304s, compression, ETag,
//! Cache-Control, size monitoring and the Lambda size guard.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::MatchedPath;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::compress::{MIN_COMPRESS_BYTES, compress, is_compressible};
use crate::etag::{content_hash, etag_for, if_none_match_matches};
use crate::negotiate::negotiate;
use crate::route_policy::classify;
use crate::size::{WARN_BYTES, fits_lambda, lambda_wire_size};
use crate::{Encoding, Levels};

/// Attached to a 200 response to a GET: the representation before compression, so the response
/// cache can store it once and serve every coding from it.
#[derive(Debug, Clone)]
pub struct PreparedBody {
    /// The uncompressed body.
    pub identity: Bytes,
    /// Its content hash (the ETag's base).
    pub hash: String,
    /// The coding of the body actually sent.
    pub sent_encoding: Encoding,
}

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Compression levels.
    pub levels: Levels,
    /// Bodies smaller than this are sent as they are.
    pub min_compress_bytes: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            levels: Levels::default(),
            min_compress_bytes: MIN_COMPRESS_BYTES,
        }
    }
}

/// Layer installing [`ResponsePipeline`].
#[derive(Debug, Clone, Default)]
pub struct ResponsePipelineLayer {
    config: Arc<PipelineConfig>,
}

impl ResponsePipelineLayer {
    /// A layer with the given settings.
    pub fn new(config: PipelineConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for ResponsePipelineLayer {
    type Service = ResponsePipeline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponsePipeline {
            inner,
            config: self.config.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct ResponsePipeline<S> {
    inner: S,
    config: Arc<PipelineConfig>,
}

/// What the pipeline needs to know about the request once the response is ready.
struct RequestFacts {
    method: Method,
    route: Option<String>,
    path: String,
    query: Option<String>,
    accept_encoding: Vec<String>,
    if_none_match: Option<String>,
}

impl<S> Service<Request<Body>> for ResponsePipeline<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let facts = RequestFacts {
            method: req.method().clone(),
            route: req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned()),
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
            accept_encoding: req
                .headers()
                .get_all(ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
            if_none_match: req
                .headers()
                .get(IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        // The clone is ready only if polled; swap so the polled instance serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(finish(response, &facts, &config).await)
        })
    }
}

async fn finish(
    response: Response<Body>,
    facts: &RequestFacts,
    config: &PipelineConfig,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::error!(error = %err, path = %facts.path, "response body failed");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            );
        }
    };
    let route = facts.route.as_deref().unwrap_or(&facts.path);
    // Already encoded upstream (e.g. a cached variant): only watch its size.
    if parts.headers.contains_key(CONTENT_ENCODING) {
        let len = body.len();
        return guard_and_log(parts, body, route, len, true);
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let success = parts.status.is_success();
    let class = classify(
        &facts.method,
        facts.route.as_deref(),
        facts.query.as_deref(),
    );
    if !parts.headers.contains_key(CACHE_CONTROL) {
        let value = if success {
            class.cache_control()
        } else {
            "no-store".to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(CACHE_CONTROL, v);
        }
    }

    let negotiable = is_negotiable(&content_type, body.len(), config);
    let encoding = if negotiable {
        parts
            .headers
            .append(VARY, HeaderValue::from_static("accept-encoding"));
        negotiate(facts.accept_encoding.iter().map(String::as_str))
    } else {
        Encoding::Identity
    };

    let validates = parts.status == StatusCode::OK
        && (facts.method == Method::GET || facts.method == Method::HEAD);
    let hash = validates.then(|| content_hash(&body));
    if let (Some(hash), Some(inm)) = (&hash, &facts.if_none_match)
        && if_none_match_matches(inm, hash)
    {
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [CACHE_CONTROL, VARY] {
            for v in parts.headers.get_all(&name) {
                not_modified.headers_mut().append(name.clone(), v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&etag_for(hash, encoding)) {
            not_modified.headers_mut().insert(ETAG, v);
        }
        tracing::debug!(route, "304 not modified");
        return not_modified;
    }

    let raw_len = body.len();
    let identity = body.clone();
    let (sent, used) = encode(body, encoding, &config.levels);
    if used != Encoding::Identity {
        parts
            .headers
            .insert(CONTENT_ENCODING, HeaderValue::from_static(used.token()));
    }
    if let Some(hash) = &hash
        && let Ok(v) = HeaderValue::from_str(&etag_for(hash, used))
    {
        parts.headers.insert(ETAG, v);
    }
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(sent.len()));
    if let Some(hash) = hash {
        parts.extensions.insert(PreparedBody {
            identity: identity.clone(),
            hash,
            sent_encoding: used,
        });
    }
    // lambda_http sends compressed and non-text bodies base64-encoded.
    let binary = used != Encoding::Identity || !is_compressible(&content_type);
    guard_and_log(parts, sent, route, raw_len, binary)
}

/// Logs the size fields and replaces a response Lambda could not return with a clear 413.
fn guard_and_log(
    parts: http::response::Parts,
    body: Bytes,
    route: &str,
    raw: usize,
    binary: bool,
) -> Response<Body> {
    let sent = body.len();
    let ratio = if sent == 0 {
        1.0
    } else {
        raw as f64 / sent as f64
    };
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 6)
        .sum();
    let wire = lambda_wire_size(&body, binary);
    let too_large = !fits_lambda(wire, header_bytes);
    monitoring::record::response_bytes(raw as u64, sent as u64);
    if raw > WARN_BYTES || too_large {
        tracing::warn!(
            target: "response_size",
            route,
            status = parts.status.as_u16(),
            raw_bytes = raw,
            sent_bytes = sent,
            ratio,
            "large response: clients should paginate"
        );
    } else {
        tracing::info!(
            target: "response_size",
            route,
            status = parts.status.as_u16(),
            raw_bytes = raw,
            sent_bytes = sent,
            ratio
        );
    }
    if too_large {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "response_too_large",
            &format!(
                "the response would be {wire} bytes, over the 6 MB a Lambda function can return; \
                 request fewer items with `limit` and follow `next_cursor` to page through the rest"
            ),
        );
    }
    Response::from_parts(parts, Body::from(body))
}

/// Compresses `body` with `encoding`, falling back to identity when that does not shrink it or
/// fails. Returns the bytes to send and the coding they are in.
pub(crate) fn encode(body: Bytes, encoding: Encoding, levels: &Levels) -> (Bytes, Encoding) {
    if encoding == Encoding::Identity {
        return (body, Encoding::Identity);
    }
    match compress(encoding, &body, levels) {
        // A coding that does not shrink the body is not worth the client's CPU either.
        Ok(packed) if packed.len() < body.len() => (Bytes::from(packed), encoding),
        Ok(_) => (body, Encoding::Identity),
        Err(err) => {
            tracing::warn!(error = %err, %encoding, "compression failed; sending identity");
            (body, Encoding::Identity)
        }
    }
}

/// Whether a body of this type and size is offered in several codings (and so needs `Vary`).
pub(crate) fn is_negotiable(content_type: &str, len: usize, config: &PipelineConfig) -> bool {
    is_compressible(content_type) && len >= config.min_compress_bytes
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
