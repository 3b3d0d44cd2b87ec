//! The guide's CacheMiddleware: successful GET responses cached in Redis per the route table,
//! stored already compressed per coding so a hit spends no CPU on compression, with
//! stale-while-revalidate and a stampede lock so N concurrent misses compute once, and `X-Cache`
//! on every response. Redis trouble never fails a request: it is a BYPASS.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use bytes::Bytes;
use cache::{CacheService, LockOutcome, Lookup, NamedCache};
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use lambda_http::request::RequestContext;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::etag::{etag_for, if_none_match_matches};
use crate::negotiate::negotiate;
use crate::route_policy::{RouteClass, RouteRequest, classify, policy};
use crate::service::{PreparedBody, encode, is_negotiable};
use crate::{Encoding, PipelineConfig, tags};

/// Extra invalidation tags a handler attaches to its response (e.g. a search's lexemes), added
/// to those of the route table when the response is cached.
#[derive(Debug, Clone, Default)]
pub struct CacheTags(pub Vec<String>);

/// Largest request body hashed into a cache key (POST search); larger requests bypass the cache.
const MAX_KEYED_BODY: usize = 64 * 1024;

/// The `X-Cache` response header.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// How the response cache behaves around misses.
#[derive(Debug, Clone)]
pub struct ResponseCacheConfig {
    /// How long the stampede lock is held at most (the recomputation's budget).
    pub lock_ttl: Duration,
    /// How long a caller that lost the lock waits for the winner's entry before computing itself.
    pub wait_for_peer: Duration,
    /// How often a waiting caller looks for the entry.
    pub poll_interval: Duration,
    /// Replaces every profile's TTL and grace (tests and load experiments; None in production).
    pub ttl_override: Option<(Duration, Duration)>,
}

impl Default for ResponseCacheConfig {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(5),
            wait_for_peer: Duration::from_secs(3),
            poll_interval: Duration::from_millis(15),
            ttl_override: None,
        }
    }
}

/// A cached response: the identity body, every coding computed so far, and what a hit needs to
/// answer exactly as the handler did.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    status: u16,
    content_type: String,
    cache_control: String,
    hash: String,
    /// Unix milliseconds after which the entry is stale (served only while someone recomputes).
    fresh_until_ms: i64,
    #[serde(with = "serde_bytes")]
    identity: Vec<u8>,
    /// (coding token, body) pairs.
    variants: Vec<(String, serde_bytes::ByteBuf)>,
    /// Tags the handler added (kept so a rewrite of the entry keeps them).
    extra_tags: Vec<String>,
}

impl Cached {
    fn variant(&self, encoding: Encoding) -> Option<Bytes> {
        if encoding == Encoding::Identity {
            return Some(Bytes::copy_from_slice(&self.identity));
        }
        self.variants
            .iter()
            .find(|(t, _)| t == encoding.token())
            .map(|(_, b)| Bytes::copy_from_slice(b))
    }
}

/// Layer installing the response cache. Without a cache service every response is a BYPASS.
#[derive(Clone)]
pub struct ResponseCacheLayer {
    shared: Arc<Shared>,
}

struct Shared {
    cache: Option<CacheService>,
    config: ResponseCacheConfig,
    pipeline: PipelineConfig,
}

impl ResponseCacheLayer {
    /// A layer over `cache` (None: caching disabled, e.g. no Redis configured).
    pub fn new(
        cache: Option<CacheService>,
        config: ResponseCacheConfig,
        pipeline: PipelineConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache,
                config,
                pipeline,
            }),
        }
    }
}

impl<S> Layer<S> for ResponseCacheLayer {
    type Service = ResponseCache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseCache {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct ResponseCache<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// Outcome reported in `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
    Stale,
    Bypass,
}

impl Outcome {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Stale => "STALE",
            Outcome::Bypass => "BYPASS",
        })
    }
}

/// Everything decided about a cacheable request before calling anything.
struct Plan {
    named: NamedCache,
    ttl: Duration,
    grace: Duration,
    key: String,
    tags: Vec<String>,
    encoding: Encoding,
    if_none_match: Option<String>,
    refresh: bool,
}

impl<S> Service<Request<Body>> for ResponseCache<S>
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
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move { Ok(handle(inner, shared, req).await) })
    }
}

async fn handle<S>(mut inner: S, shared: Arc<Shared>, mut req: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let body_hash = if req.method() == Method::POST {
        match keyed_body(req).await {
            Ok((rebuilt, hash)) => {
                req = rebuilt;
                hash
            }
            Err(resp) => return with_outcome(resp, Outcome::Bypass),
        }
    } else {
        None
    };
    let Some(plan) = plan(&shared, &req, body_hash.as_deref()) else {
        return with_outcome(call(&mut inner, req).await, Outcome::Bypass);
    };
    if plan.refresh {
        // The client asked for a fresh answer: compute, and store it for everyone else.
        let resp = compute_and_store(&mut inner, &shared, &plan, strip_conditional(req)).await;
        return with_outcome(resp, Outcome::Bypass);
    }
    match plan.named.get::<Cached>(&plan.key).await {
        Lookup::Hit(entry) if now_ms() < entry.fresh_until_ms => {
            serve(&shared, &plan, entry, Outcome::Hit).await
        }
        Lookup::Hit(stale) => match plan.named.try_lock(&plan.key, shared.config.lock_ttl).await {
            LockOutcome::Acquired(lock) => {
                req = strip_conditional(req);
                let resp = compute_and_store(&mut inner, &shared, &plan, req).await;
                let _ = plan.named.release(&lock).await;
                with_outcome(resp, Outcome::Miss)
            }
            // Someone is already recomputing (or Redis just failed): the stale copy is good enough.
            LockOutcome::Busy | LockOutcome::Unavailable => {
                serve(&shared, &plan, stale, Outcome::Stale).await
            }
        },
        Lookup::Miss => match plan.named.try_lock(&plan.key, shared.config.lock_ttl).await {
            LockOutcome::Acquired(lock) => {
                let resp =
                    compute_and_store(&mut inner, &shared, &plan, strip_conditional(req)).await;
                let _ = plan.named.release(&lock).await;
                with_outcome(resp, Outcome::Miss)
            }
            LockOutcome::Busy => {
                if let Some(entry) = wait_for_peer(&shared, &plan).await {
                    return serve(&shared, &plan, entry, Outcome::Hit).await;
                }
                // The winner is slow or failed: do not make this caller wait any longer.
                let resp =
                    compute_and_store(&mut inner, &shared, &plan, strip_conditional(req)).await;
                with_outcome(resp, Outcome::Miss)
            }
            LockOutcome::Unavailable => with_outcome(call(&mut inner, req).await, Outcome::Bypass),
        },
        Lookup::Unavailable => with_outcome(call(&mut inner, req).await, Outcome::Bypass),
    }
}

fn plan(shared: &Shared, req: &Request<Body>, body_hash: Option<&str>) -> Option<Plan> {
    let cache = shared.cache.as_ref()?;
    if req.method() != Method::GET && body_hash.is_none() {
        return None;
    }
    let route = req.extensions().get::<MatchedPath>()?.as_str().to_owned();
    let policy = policy(req.method(), &route)?;
    let profile = policy.cache?;
    let caller = caller_subject(req);
    let class = classify(req.method(), Some(&route), req.uri().query());
    // Anything not shared catalogue data is keyed by the caller: nobody is ever served another
    // caller's private entry, and without a caller there is nothing safe to key by.
    let private = !matches!(class, RouteClass::Catalogue { .. });
    if private && caller.is_none() {
        return None;
    }
    let route_req = RouteRequest {
        params: path_params(&route, req.uri().path()),
        query: query_pairs(req.uri().query().unwrap_or("")),
        caller: caller.as_ref().map(|(s, _)| s.clone()),
    };
    let mut canonical = format!("{}\n{route}\n", req.method());
    for (k, v) in &route_req.params {
        canonical.push_str(&format!("{k}={v}\n"));
    }
    let mut sorted_query = route_req.query.clone();
    sorted_query.sort();
    for (k, v) in &sorted_query {
        canonical.push_str(&format!("?{k}={v}\n"));
    }
    if let Some(hash) = body_hash {
        canonical.push_str(&format!("body={hash}\n"));
    }
    let mut entry_tags = (policy.tags)(&route_req);
    if private && let Some((subject, role)) = &caller {
        canonical.push_str(&format!("caller={subject}\nrole={role}\n"));
        entry_tags.push(tags::caller(subject));
    }
    let key = format!(
        "resp:{}:{:032x}",
        profile.name(),
        xxhash_rust::xxh3::xxh3_128(canonical.as_bytes())
    );
    let headers = req.headers();
    let (ttl, grace) = shared
        .config
        .ttl_override
        .unwrap_or((profile.ttl(), profile.grace()));
    Some(Plan {
        named: cache.named(profile.name()),
        ttl,
        grace,
        key,
        tags: entry_tags,
        encoding: negotiate(
            headers
                .get_all(ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
        if_none_match: headers
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        refresh: headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|d| matches!(d.trim(), "no-cache" | "no-store" | "max-age=0"))
            }),
    })
}

/// The caller's subject and role from the authorizer claims.
fn caller_subject(req: &Request<Body>) -> Option<(String, String)> {
    let ctx = req.extensions().get::<RequestContext>()?;
    let claims = auth::claims_of(ctx)?;
    let caller = auth::caller_from_claims(claims).ok()?;
    Some((caller.subject, caller.role.as_str().to_owned()))
}

/// Path parameters by aligning the route template with the path.
fn path_params(route: &str, path: &str) -> Vec<(String, String)> {
    route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, v)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), v.to_owned()))
        })
        .collect()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// For a POST whose route caches responses: reads the JSON body (bounded), hashes its canonical
/// form (keys sorted, no insignificant whitespace) and rebuilds the request. `None` when the route
/// does not cache or the body is not JSON (the handler then answers it uncached).
async fn keyed_body(req: Request<Body>) -> Result<(Request<Body>, Option<String>), Response<Body>> {
    let cacheable = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| policy(req.method(), m.as_str()))
        .is_some_and(|p| p.cache.is_some());
    if !cacheable {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_KEYED_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(crate::service::error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than 64 KiB",
            ));
        }
    };
    let hash = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .map(|v| {
            format!(
                "{:032x}",
                xxhash_rust::xxh3::xxh3_128(v.to_string().as_bytes())
            )
        });
    Ok((Request::from_parts(parts, Body::from(bytes)), hash))
}

fn strip_conditional(mut req: Request<Body>) -> Request<Body> {
    // The cache needs the full body to store even when the client has a copy; the 304 is then
    // answered from what was stored.
    req.headers_mut().remove(IF_NONE_MATCH);
    req
}

async fn call<S>(inner: &mut S, req: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match inner.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn with_outcome(mut resp: Response<Body>, outcome: Outcome) -> Response<Body> {
    resp.headers_mut().insert(X_CACHE, outcome.header());
    resp
}

async fn wait_for_peer(shared: &Shared, plan: &Plan) -> Option<Cached> {
    let deadline = tokio::time::Instant::now() + shared.config.wait_for_peer;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(shared.config.poll_interval).await;
        match plan.named.get::<Cached>(&plan.key).await {
            Lookup::Hit(entry) => return Some(entry),
            Lookup::Miss => {}
            Lookup::Unavailable => return None,
        }
    }
    None
}

/// Runs the handler through the pipeline and stores a successful result with its tags.
async fn compute_and_store<S>(
    inner: &mut S,
    shared: &Shared,
    plan: &Plan,
    req: Request<Body>,
) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let resp = call(inner, req).await;
    let Some(prepared) = resp.extensions().get::<PreparedBody>().cloned() else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let sent = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return crate::service::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            );
        }
    };
    let header = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut variants = Vec::new();
    if prepared.sent_encoding != Encoding::Identity {
        variants.push((
            prepared.sent_encoding.token().to_owned(),
            serde_bytes::ByteBuf::from(sent.to_vec()),
        ));
    }
    let extra = parts
        .extensions
        .get::<CacheTags>()
        .cloned()
        .unwrap_or_default();
    let entry = Cached {
        status: parts.status.as_u16(),
        content_type: header(&CONTENT_TYPE),
        cache_control: header(&CACHE_CONTROL),
        hash: prepared.hash.clone(),
        fresh_until_ms: now_ms() + plan.ttl.as_millis() as i64,
        identity: prepared.identity.to_vec(),
        variants,
        extra_tags: extra.0,
    };
    store(plan, &entry).await;
    let matches = plan
        .if_none_match
        .as_deref()
        .is_some_and(|inm| if_none_match_matches(inm, &prepared.hash));
    if matches {
        return not_modified(&entry, prepared.sent_encoding, &shared.pipeline);
    }
    Response::from_parts(parts, Body::from(sent))
}

async fn store(plan: &Plan, entry: &Cached) {
    // Redis keeps the entry through its grace period; a rewrite (a new coding added) keeps the
    // original freshness.
    let fresh_left = Duration::from_millis((entry.fresh_until_ms - now_ms()).max(0) as u64);
    let ttl = fresh_left + plan.grace;
    let tags: Vec<&str> = plan
        .tags
        .iter()
        .chain(&entry.extra_tags)
        .map(String::as_str)
        .collect();
    if let Err(err) = plan.named.set_tagged(&plan.key, entry, ttl, &tags).await {
        tracing::debug!(error = %err, key = %plan.key, "response not cached");
    }
}

/// Answers from a cached entry; a coding not stored yet is computed from the identity body once
/// and added to the entry.
async fn serve(shared: &Shared, plan: &Plan, entry: Cached, outcome: Outcome) -> Response<Body> {
    let negotiable = is_negotiable(&entry.content_type, entry.identity.len(), &shared.pipeline);
    let wanted = if negotiable {
        plan.encoding
    } else {
        Encoding::Identity
    };
    if plan
        .if_none_match
        .as_deref()
        .is_some_and(|inm| if_none_match_matches(inm, &entry.hash))
    {
        return with_outcome(not_modified(&entry, wanted, &shared.pipeline), outcome);
    }
    let (body, used) = match entry.variant(wanted) {
        Some(b) => (b, wanted),
        None => {
            let (b, used) = encode(
                Bytes::copy_from_slice(&entry.identity),
                wanted,
                &shared.pipeline.levels,
            );
            let mut updated = entry.clone();
            if used != Encoding::Identity {
                updated.variants.push((
                    used.token().to_owned(),
                    serde_bytes::ByteBuf::from(b.to_vec()),
                ));
                store(plan, &updated).await;
            }
            (b, used)
        }
    };
    let mut resp = Response::new(Body::from(body.clone()));
    *resp.status_mut() = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&entry.content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&entry.cache_control) {
        headers.insert(CACHE_CONTROL, v);
    }
    if negotiable {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    if used != Encoding::Identity {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(used.token()));
    }
    if let Ok(v) = HeaderValue::from_str(&etag_for(&entry.hash, used)) {
        headers.insert(ETAG, v);
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    with_outcome(resp, outcome)
}

fn not_modified(entry: &Cached, encoding: Encoding, pipeline: &PipelineConfig) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&entry.cache_control) {
        headers.insert(CACHE_CONTROL, v);
    }
    if is_negotiable(&entry.content_type, entry.identity.len(), pipeline) {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Ok(v) = HeaderValue::from_str(&etag_for(&entry.hash, encoding)) {
        headers.insert(ETAG, v);
    }
    resp
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Invalidation handle for the domain crates: removes exactly the entries tagged by a change.
#[derive(Clone, Default)]
pub struct Invalidator {
    cache: Option<CacheService>,
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("enabled", &self.cache.is_some())
            .finish()
    }
}

impl Invalidator {
    /// An invalidator over `cache` (None: nothing is cached, so nothing to invalidate).
    pub fn new(cache: Option<CacheService>) -> Self {
        Self { cache }
    }

    /// Invalidates every entry carrying any of `tags`. Failures are logged loudly, never
    /// returned: the write they follow has already succeeded, and the entries expire with their TTL.
    pub async fn invalidate(&self, tags: &[String]) {
        let Some(cache) = &self.cache else {
            return;
        };
        let named = cache.named("invalidation");
        let results = futures::future::join_all(tags.iter().map(|t| named.invalidate_tag(t))).await;
        let mut removed = 0u64;
        for (tag, result) in tags.iter().zip(results) {
            match result {
                Ok(n) => removed += n,
                Err(err) => {
                    tracing::error!(%tag, error = %err, "cache invalidation failed; entries may be stale until their TTL")
                }
            }
        }
        tracing::debug!(tags = tags.len(), removed, "cache invalidated");
    }
}
