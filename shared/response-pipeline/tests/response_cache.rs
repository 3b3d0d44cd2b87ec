//! The response cache in front of small routers, against the real Redis (shared, unique key
//! prefix per test): MISS/HIT/STALE/BYPASS, per-coding variants, 304s, private isolation, and one
//! computation for many concurrent misses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth::Role;
use auth::local::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, LocalAuthority, TokenRequest};
use auth::request_context;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use response_pipeline::compress::decompress;
use response_pipeline::{
    Encoding, PipelineConfig, ResponseCacheConfig, ResponseCacheLayer, ResponsePipelineLayer,
};
use tokio::sync::Notify;
use tower::ServiceExt;

async fn cache_for_test() -> (cache::CacheService, String) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("rc-test:{}:", uuid::Uuid::new_v4().simple());
    let mut config = cache::CacheConfig::from_url(&url).unwrap();
    config.key_prefix = prefix.clone();
    config.op_timeout = Duration::from_millis(500);
    (cache::CacheService::connect(config).await.unwrap(), prefix)
}

/// A body above the compression threshold that says who computed it and how many times.
fn body_for(tag: &str, n: usize) -> String {
    let rows: Vec<String> = (0..60)
        .map(|i| format!("{{\"row\":{i},\"who\":\"{tag}\"}}"))
        .collect();
    format!("{{\"computation\":{n},\"rows\":[{}]}}", rows.join(","))
}

struct Counting {
    computations: AtomicUsize,
}

fn app(cache: cache::CacheService, config: ResponseCacheConfig, counting: Arc<Counting>) -> Router {
    let c1 = counting.clone();
    let c2 = counting.clone();
    let c3 = counting.clone();
    let pipeline = PipelineConfig::default();
    Router::new()
        .route(
            "/api/files/{id}",
            get(move |Path(id): Path<String>| {
                let c = c1.clone();
                async move {
                    let n = c.computations.fetch_add(1, Ordering::SeqCst) + 1;
                    if id == "missing" {
                        return (
                            StatusCode::NOT_FOUND,
                            [("content-type", "application/json")],
                            "{}".to_owned(),
                        );
                    }
                    (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        body_for(&id, n),
                    )
                }
            }),
        )
        .route(
            "/api/users/me",
            get(move |req: Request<Body>| {
                let c = c2.clone();
                async move {
                    let n = c.computations.fetch_add(1, Ordering::SeqCst) + 1;
                    let sub = req
                        .extensions()
                        .get::<lambda_http::request::RequestContext>()
                        .and_then(|ctx| auth::claims_of(ctx).map(|c| c["sub"].clone()))
                        .unwrap_or_else(|| "anonymous".to_owned());
                    ([("content-type", "application/json")], body_for(&sub, n))
                }
            }),
        )
        .route(
            "/api/files",
            post(move || {
                let c = c3.clone();
                async move {
                    c.computations.fetch_add(1, Ordering::SeqCst);
                    (
                        StatusCode::CREATED,
                        [("content-type", "application/json")],
                        body_for("post", 0),
                    )
                }
            }),
        )
        .layer(ResponsePipelineLayer::new(pipeline.clone()))
        .layer(ResponseCacheLayer::new(Some(cache), config, pipeline))
}

fn request(path: &str, subject: Option<&str>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(sub) = subject {
        let authority = LocalAuthority::new(b"s", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let token = authority
            .mint(&TokenRequest {
                subject: sub.into(),
                email: format!("{sub}@example.com"),
                username: sub.into(),
                role: Role::Engineer,
                ttl_seconds: 60,
            })
            .unwrap();
        let claims = authority.verify(&token).unwrap();
        req.extensions_mut()
            .insert(request_context(claims, "GET", path));
    }
    req
}

async fn send(app: &Router, req: Request<Body>) -> (Response<Body>, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, Body::empty()), bytes)
}

fn x_cache(resp: &Response<Body>) -> &str {
    resp.headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn miss_then_hit_serves_the_stored_coding_and_answers_304s() {
    let (cache, _) = cache_for_test().await;
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    let app = app(
        cache.clone(),
        ResponseCacheConfig::default(),
        counting.clone(),
    );
    let (first, first_body) = send(
        &app,
        request("/api/files/a", Some("u1"), &[("accept-encoding", "zstd")]),
    )
    .await;
    assert_eq!(x_cache(&first), "MISS");
    assert_eq!(first.headers()["content-encoding"], "zstd");
    let (second, second_body) = send(
        &app,
        request("/api/files/a", Some("u2"), &[("accept-encoding", "zstd")]),
    )
    .await;
    assert_eq!(
        x_cache(&second),
        "HIT",
        "catalogue data is shared between callers"
    );
    assert_eq!(second_body, first_body, "served the stored zstd bytes");
    assert_eq!(second.headers()["etag"], first.headers()["etag"]);
    assert_eq!(
        second.headers()["cache-control"],
        first.headers()["cache-control"]
    );
    assert_eq!(counting.computations.load(Ordering::SeqCst), 1);

    // Another coding is made from the stored identity body, once, without the handler.
    for accept in ["br", "gzip", "identity", "br"] {
        let (resp, body) = send(
            &app,
            request("/api/files/a", Some("u1"), &[("accept-encoding", accept)]),
        )
        .await;
        assert_eq!(x_cache(&resp), "HIT");
        let enc = match accept {
            "br" => Encoding::Brotli,
            "gzip" => Encoding::Gzip,
            _ => Encoding::Identity,
        };
        let plain = decompress(enc, &body).unwrap();
        assert_eq!(plain, decompress(Encoding::Zstd, &first_body).unwrap());
    }
    assert_eq!(counting.computations.load(Ordering::SeqCst), 1);

    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let (nm, body) = send(
        &app,
        request("/api/files/a", Some("u1"), &[("if-none-match", &etag)]),
    )
    .await;
    assert_eq!(nm.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(x_cache(&nm), "HIT");
    assert!(body.is_empty());
    let stats = cache.stats();
    assert!(stats["cadFileMetadata"].hits >= 5, "{stats:?}");
}

#[tokio::test]
async fn private_entries_are_never_served_to_another_caller() {
    let (cache, _) = cache_for_test().await;
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    let app = app(cache, ResponseCacheConfig::default(), counting.clone());
    let (a1, a1_body) = send(&app, request("/api/users/me", Some("alice"), &[])).await;
    let (b1, b1_body) = send(&app, request("/api/users/me", Some("bob"), &[])).await;
    assert_eq!((x_cache(&a1), x_cache(&b1)), ("MISS", "MISS"));
    let (a2, a2_body) = send(&app, request("/api/users/me", Some("alice"), &[])).await;
    let (b2, b2_body) = send(&app, request("/api/users/me", Some("bob"), &[])).await;
    assert_eq!((x_cache(&a2), x_cache(&b2)), ("HIT", "HIT"));
    assert_eq!(a2_body, a1_body);
    assert_eq!(b2_body, b1_body);
    assert!(String::from_utf8(a2_body).unwrap().contains("alice"));
    assert!(String::from_utf8(b2_body).unwrap().contains("bob"));
    // No caller at all: nothing safe to key a private entry by.
    let (anon, _) = send(&app, request("/api/users/me", None, &[])).await;
    assert_eq!(x_cache(&anon), "BYPASS");
}

#[tokio::test]
async fn a_hundred_concurrent_misses_compute_once() {
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    // Hold the first computation until every request has entered the cache layer: the others
    // must then all be waiting on the lock, not computing.
    let entered = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    let gate = {
        let entered = entered.clone();
        let all_in = all_in.clone();
        axum::middleware::from_fn(move |req: Request<Body>, next: axum::middleware::Next| {
            let entered = entered.clone();
            let all_in = all_in.clone();
            async move {
                if entered.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                    all_in.notify_waiters();
                }
                next.run(req).await
            }
        })
    };
    let held = {
        let entered = entered.clone();
        let all_in = all_in.clone();
        axum::middleware::from_fn(move |req: Request<Body>, next: axum::middleware::Next| {
            let entered = entered.clone();
            let all_in = all_in.clone();
            async move {
                // Inside the cache layer: only a computing request gets here.
                while entered.load(Ordering::SeqCst) < 100 {
                    let wait = all_in.notified();
                    if entered.load(Ordering::SeqCst) >= 100 {
                        break;
                    }
                    wait.await;
                }
                next.run(req).await
            }
        })
    };
    // The gate counts requests before the cache layer; the holder sits inside it.
    let (cache2, _) = cache_for_test().await;
    let pipeline = PipelineConfig::default();
    let c = counting.clone();
    let app = Router::new()
        .route(
            "/api/files/{id}",
            get(move |Path(id): Path<String>| {
                let c = c.clone();
                async move {
                    let n = c.computations.fetch_add(1, Ordering::SeqCst) + 1;
                    ([("content-type", "application/json")], body_for(&id, n))
                }
            }),
        )
        .layer(held)
        .layer(ResponsePipelineLayer::new(pipeline.clone()))
        .layer(ResponseCacheLayer::new(
            Some(cache2),
            ResponseCacheConfig::default(),
            pipeline,
        ))
        .layer(gate);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                send(
                    &app,
                    request(
                        "/api/files/hot",
                        Some(&format!("u{i}")),
                        &[("accept-encoding", "identity")],
                    ),
                )
                .await
            })
        })
        .collect();
    let mut bodies = std::collections::HashSet::new();
    let mut outcomes = std::collections::HashMap::new();
    for t in tasks {
        let (resp, body) = t.await.unwrap();
        assert_eq!(resp.status(), 200);
        *outcomes.entry(x_cache(&resp).to_owned()).or_insert(0) += 1;
        bodies.insert(body);
    }
    assert_eq!(
        counting.computations.load(Ordering::SeqCst),
        1,
        "outcomes {outcomes:?}"
    );
    assert_eq!(outcomes.get("MISS"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("HIT"), Some(&99), "{outcomes:?}");
    assert_eq!(bodies.len(), 1, "everyone got the one computed body");
}

#[tokio::test]
async fn stale_entries_are_served_while_one_caller_recomputes() {
    let (cache, _) = cache_for_test().await;
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    let config = ResponseCacheConfig {
        ttl_override: Some((Duration::from_millis(300), Duration::from_secs(30))),
        ..ResponseCacheConfig::default()
    };
    let release = Arc::new(Notify::new());
    let hold_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = {
        let release = release.clone();
        let hold_next = hold_next.clone();
        axum::middleware::from_fn(move |req: Request<Body>, next: axum::middleware::Next| {
            let release = release.clone();
            let hold_next = hold_next.clone();
            async move {
                if hold_next.swap(false, Ordering::SeqCst) {
                    release.notified().await;
                }
                next.run(req).await
            }
        })
    };
    let pipeline = PipelineConfig::default();
    let c = counting.clone();
    let app = Router::new()
        .route(
            "/api/files/{id}",
            get(move |Path(id): Path<String>| {
                let c = c.clone();
                async move {
                    let n = c.computations.fetch_add(1, Ordering::SeqCst) + 1;
                    ([("content-type", "application/json")], body_for(&id, n))
                }
            }),
        )
        .layer(holder)
        .layer(ResponsePipelineLayer::new(pipeline.clone()))
        .layer(ResponseCacheLayer::new(Some(cache), config, pipeline));

    let (first, first_body) = send(&app, request("/api/files/s", None, &[])).await;
    assert_eq!(x_cache(&first), "MISS");
    // Let the entry go stale (its 300 ms TTL is the thing under test, not a stand-in for work).
    tokio::time::sleep(Duration::from_millis(400)).await;
    hold_next.store(true, Ordering::SeqCst);
    let app2 = app.clone();
    let refresher =
        tokio::spawn(async move { send(&app2, request("/api/files/s", None, &[])).await });
    // While the refresher holds the lock (it is parked inside the handler stack), others get STALE.
    let mut stale = None;
    for _ in 0..200 {
        let (resp, body) = send(&app, request("/api/files/s", None, &[])).await;
        if x_cache(&resp) == "STALE" {
            stale = Some(body);
            break;
        }
        tokio::task::yield_now().await;
    }
    let stale = stale.expect("a STALE response while the refresh is in progress");
    assert_eq!(stale, first_body);
    release.notify_one();
    let (refreshed, refreshed_body) = refresher.await.unwrap();
    assert_eq!(x_cache(&refreshed), "MISS");
    assert!(
        String::from_utf8(refreshed_body.clone())
            .unwrap()
            .contains("\"computation\":2")
    );
    let (after, after_body) = send(&app, request("/api/files/s", None, &[])).await;
    assert_eq!(x_cache(&after), "HIT");
    assert_eq!(after_body, refreshed_body);
    assert_eq!(counting.computations.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn only_successful_gets_are_cached_and_no_cache_bypasses() {
    let (cache, _) = cache_for_test().await;
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    let app = app(cache, ResponseCacheConfig::default(), counting.clone());
    for _ in 0..2 {
        let (resp, _) = send(&app, request("/api/files/missing", None, &[])).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(x_cache(&resp), "MISS");
    }
    assert_eq!(
        counting.computations.load(Ordering::SeqCst),
        2,
        "a 404 is not cached"
    );

    let post = Request::post("/api/files").body(Body::empty()).unwrap();
    let (resp, _) = send(&app, post).await;
    assert_eq!(
        (resp.status(), x_cache(&resp)),
        (StatusCode::CREATED, "BYPASS")
    );

    send(&app, request("/api/files/b", None, &[])).await;
    let (resp, body) = send(
        &app,
        request("/api/files/b", None, &[("cache-control", "no-cache")]),
    )
    .await;
    assert_eq!(x_cache(&resp), "BYPASS");
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("\"computation\":5"),
        "recomputed"
    );
    let (resp, body) = send(&app, request("/api/files/b", None, &[])).await;
    assert_eq!(x_cache(&resp), "HIT");
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("\"computation\":5"),
        "and stored for the next caller"
    );
}

#[tokio::test]
async fn without_redis_every_response_is_a_bypass() {
    let counting = Arc::new(Counting {
        computations: AtomicUsize::new(0),
    });
    // A port nothing listens on: the cache is configured but unreachable.
    let mut config = cache::CacheConfig::from_url("redis://127.0.0.1:1").unwrap();
    config.op_timeout = Duration::from_millis(50);
    config.connect_timeout = Duration::from_millis(100);
    let cache = cache::CacheService::connect(config).await.unwrap();
    let app = app(cache, ResponseCacheConfig::default(), counting.clone());
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (resp, _) = send(&app, request("/api/files/x", None, &[])).await;
        assert_eq!((resp.status(), x_cache(&resp)), (StatusCode::OK, "BYPASS"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never hangs on a dead cache"
        );
    }
    assert_eq!(counting.computations.load(Ordering::SeqCst), 3);
}
