//! The pipeline in front of small routers: negotiation, thresholds, 304s, Cache-Control, the
//! Lambda size guard, and that JSON passes through byte for byte.

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use response_pipeline::compress::decompress;
use response_pipeline::{Encoding, PipelineConfig, ResponsePipelineLayer};
use tower::ServiceExt;

fn big_json() -> String {
    let items: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            serde_json::json!({"id": i, "name": format!("part-{i}.stl"), "description": null,
                                     "tags": [], "created_at": "2026-11-26T10:00:00.123456Z"})
        })
        .collect();
    serde_json::json!({"items": items, "next_cursor": null}).to_string()
}

fn app() -> Router {
    let json = big_json();
    Router::new()
        .route(
            "/api/files",
            get(move || {
                let j = json.clone();
                async move { ([("content-type", "application/json")], j) }
            }),
        )
        .route(
            "/api/files/{id}",
            get(|| async { ([("content-type", "application/json")], "{\"small\":true}") }),
        )
        .route(
            "/api/users/me",
            get(|| async { ([("content-type", "application/json")], "x".repeat(5000)) }),
        )
        .route(
            "/api/files/{id}/thumbnail",
            get(|| async { ([("content-type", "image/png")], vec![0u8; 5000]) }),
        )
        .route(
            "/api/files/{id}/raw",
            get(|| async { ([("content-type", "model/stl")], vec![b'a'; 5000]) }),
        )
        .route(
            "/api/files",
            post(|| async {
                (
                    StatusCode::CREATED,
                    [("content-type", "application/json")],
                    "y".repeat(3000),
                )
            }),
        )
        .route(
            "/api/huge",
            get(|| async {
                // Incompressible text over the Lambda limit: pseudo-random hex.
                let mut x: u64 = 0x243f6a8885a308d3;
                let s: Vec<u8> = (0..7_000_000)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b"0123456789abcdef"[(x & 15) as usize]
                    })
                    .collect();
                ([("content-type", "text/plain")], s)
            }),
        )
        .layer(ResponsePipelineLayer::new(PipelineConfig::default()))
}

async fn call(method: &str, path: &str, headers: &[(&str, &str)]) -> (Response<Body>, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, Body::empty()), bytes)
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn every_coding_is_negotiated_and_decodes_to_the_same_json() {
    let expected = big_json().into_bytes();
    for (accept, enc) in [
        ("br", Encoding::Brotli),
        ("gzip", Encoding::Gzip),
        ("zstd", Encoding::Zstd),
        ("identity", Encoding::Identity),
        ("gzip;q=0.5, zstd;q=0.9, br;q=0.1", Encoding::Zstd),
    ] {
        let (resp, body) = call("GET", "/api/files", &[("accept-encoding", accept)]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header(&resp, "content-encoding"),
            (enc != Encoding::Identity).then(|| enc.token()),
            "{accept}"
        );
        assert_eq!(header(&resp, "vary"), Some("accept-encoding"));
        assert_eq!(
            header(&resp, "content-length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            body.len()
        );
        let plain = decompress(enc, &body).unwrap();
        assert_eq!(
            plain, expected,
            "{accept}: nulls, empty lists and timestamps are kept byte for byte"
        );
        if enc != Encoding::Identity {
            assert!(
                body.len() * 5 < expected.len(),
                "{accept}: {} of {}",
                body.len(),
                expected.len()
            );
        }
    }
}

#[tokio::test]
async fn small_bodies_and_binary_types_are_sent_as_they_are() {
    let (resp, body) = call("GET", "/api/files/1", &[("accept-encoding", "br")]).await;
    assert_eq!(header(&resp, "content-encoding"), None);
    assert_eq!(
        header(&resp, "vary"),
        None,
        "a body under 1 KB is not negotiable"
    );
    assert_eq!(body, b"{\"small\":true}");
    for path in ["/api/files/1/thumbnail", "/api/files/1/raw"] {
        let (resp, body) = call("GET", path, &[("accept-encoding", "br, gzip, zstd")]).await;
        assert_eq!(header(&resp, "content-encoding"), None, "{path}");
        assert_eq!(body.len(), 5000);
    }
}

#[tokio::test]
async fn strong_etags_give_304s_across_codings() {
    let (resp, _) = call("GET", "/api/files", &[("accept-encoding", "gzip")]).await;
    let etag = header(&resp, "etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with("-gzip\""), "{etag}");
    for accept in ["gzip", "br", "identity"] {
        let (resp, body) = call(
            "GET",
            "/api/files",
            &[("accept-encoding", accept), ("if-none-match", &etag)],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{accept}");
        assert!(body.is_empty());
        assert!(header(&resp, "etag").is_some());
        assert!(header(&resp, "cache-control").is_some());
    }
    let (resp, body) = call("GET", "/api/files", &[("if-none-match", "\"0123\"")]).await;
    assert_eq!(resp.status(), 200);
    assert!(!body.is_empty());
    let (resp, _) = call("POST", "/api/files", &[("if-none-match", "*")]).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "conditional GETs only");
    assert_eq!(header(&resp, "etag"), None);
}

#[tokio::test]
async fn cache_control_follows_the_route_table() {
    let (resp, _) = call("GET", "/api/users/me", &[]).await;
    assert_eq!(header(&resp, "cache-control"), Some("private, no-cache"));
    let (resp, _) = call("GET", "/api/files", &[]).await;
    assert_eq!(
        header(&resp, "cache-control"),
        Some("public, max-age=0, s-maxage=60, stale-while-revalidate=300")
    );
    let (resp, _) = call("GET", "/api/files?uploaded_by=me", &[]).await;
    assert_eq!(header(&resp, "cache-control"), Some("private, no-cache"));
    let (resp, _) = call("POST", "/api/files", &[]).await;
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_response_over_the_lambda_limit_is_a_clear_json_error() {
    // 7 MB of hex fits once compressed (about half, even base64-encoded)...
    let (resp, _) = call("GET", "/api/huge", &[("accept-encoding", "gzip")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // ...but not as it is.
    let (resp, body) = call("GET", "/api/huge", &[]).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "response_too_large");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("next_cursor")
    );
}
