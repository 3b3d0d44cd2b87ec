//! The tower layer that records every request of an axum router.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Request, Response, StatusCode, header};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::config::RedisWriteMode;
use crate::monitor::{FlushOutcome, Monitor, Scope};
use crate::names::UNMATCHED_ROUTE;

/// Records latency, status class and response size of every request under its route template,
/// with the request's [`Scope`] current while the inner service runs (so [`crate::record`]
/// functions and `Extension<Scope>` reach it), then flushes the scope: EMF at once, Redis as
/// configured by [`RedisWriteMode`].
///
/// Apply it with `Router::layer` (not around the finished router): only then is axum's
/// [`MatchedPath`] in the request extensions; requests no route matched count as `unmatched`.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    monitor: Monitor,
    mode: RedisWriteMode,
}

impl MetricsLayer {
    /// A layer flushing into `monitor`, writing Redis as its configuration says.
    pub fn new(monitor: Monitor) -> Self {
        let mode = monitor.config().redis_write;
        MetricsLayer { monitor, mode }
    }

    /// Overrides how the Redis delta is written.
    pub fn redis_write(mut self, mode: RedisWriteMode) -> Self {
        self.mode = mode;
        self
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            monitor: self.monitor.clone(),
            mode: self.mode,
        }
    }
}

/// The service made by [`MetricsLayer`].
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    monitor: Monitor,
    mode: RedisWriteMode,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
            .to_owned();
        let method = req.method().clone();
        let scope = self.monitor.scope();
        scope.set_route(&method, &route);
        req.extensions_mut().insert(scope.clone());
        let inner = scope.enter(self.inner.call(req));
        MetricsFuture {
            inner,
            state: Some(Pending {
                scope,
                method,
                route,
                start: Instant::now(),
                mode: self.mode,
            }),
            writing: None,
        }
    }
}

struct Pending {
    scope: Scope,
    method: http::Method,
    route: String,
    start: Instant,
    mode: RedisWriteMode,
}

type Flushing = Pin<Box<dyn Future<Output = FlushOutcome> + Send>>;

pin_project! {
    /// Response future of [`MetricsService`].
    pub struct MetricsFuture<F, B, E> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<Scope, F>,
        state: Option<Pending>,
        writing: Option<(Flushing, Result<Response<B>, E>)>,
    }
}

impl<F, B, E> Future for MetricsFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some((mut flushing, result)) = this.writing.take() {
            if flushing.as_mut().poll(cx).is_pending() {
                *this.writing = Some((flushing, result));
                return Poll::Pending;
            }
            return Poll::Ready(result);
        }
        let result = ready!(this.inner.poll(cx));
        let Some(p) = this.state.take() else {
            return Poll::Ready(result);
        };
        let latency = p.start.elapsed();
        let status = match &result {
            Ok(resp) => {
                record_body_size(&p, resp);
                resp.status()
            }
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        p.scope.http(&p.method, &p.route, status.as_u16(), latency);
        match p.mode {
            RedisWriteMode::Background => {
                p.scope.flush_in_background();
                Poll::Ready(result)
            }
            RedisWriteMode::Inline => {
                let scope = p.scope.clone();
                let mut flushing: Flushing = Box::pin(async move { scope.flush().await });
                if flushing.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(result);
                }
                *this.writing = Some((flushing, result));
                Poll::Pending
            }
        }
    }
}

/// Records the body size from an exact size hint unless something inside (the response
/// pipeline, which knows the uncompressed size too) already recorded it.
fn record_body_size<B: Body>(p: &Pending, resp: &Response<B>) {
    if p.scope.has_response_bytes()
        || p.method == http::Method::HEAD
        || resp.status().is_informational()
        || resp.status() == StatusCode::NO_CONTENT
        || resp.status() == StatusCode::NOT_MODIFIED
    {
        return;
    }
    let Some(size) = resp.body().size_hint().exact() else {
        return;
    };
    let encoded = resp
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity");
    if encoded {
        p.scope.response_bytes(None, Some(size));
    } else {
        p.scope.response_bytes(Some(size), Some(size));
    }
}
