//! The response pipeline end to end: real HTTP clients through the local server, and API Gateway
//! v2 events through lambda_http, for br, gzip, zstd and identity; conditional requests.

use auth::Role;
use base64::Engine;
use integration_tests::{TestApp, json_body};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use reqwest::Method;
use response_pipeline::Encoding;
use response_pipeline::compress::decompress;
use serde_json::{Value, json};

async fn seed_files(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        let resp = app
            .send_json(
                Method::POST,
                token,
                "/api/files",
                &json!({"name": format!("part-{i}.stl"), "size": 100 + i, "content_type": "model/stl",
                        "tags": ["steel", format!("batch-{}", i % 3)], "project_name": "Rover"}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
}

#[tokio::test]
async fn real_clients_get_each_coding_and_the_same_json() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    seed_files(&app, &token, 12).await;
    // A client that does not decode, to see the wire.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .build()
        .unwrap();
    let mut reference: Option<Value> = None;
    for enc in [
        Encoding::Identity,
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
    ] {
        let resp = raw
            .get(app.url("/api/files?limit=50"))
            .bearer_auth(&token)
            .header("accept-encoding", enc.token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let got = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            got.as_deref(),
            (enc != Encoding::Identity).then(|| enc.token()),
            "{enc}"
        );
        assert_eq!(resp.headers()["vary"], "accept-encoding");
        assert!(resp.headers()["etag"].to_str().unwrap().starts_with('"'));
        let wire = resp.bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&decompress(enc, &wire).unwrap()).unwrap();
        // Every field survives: nulls, empty values, RFC 3339 timestamps.
        let first = &body["items"][0];
        assert!(first["description"].is_null() && first["sha256"].is_null());
        assert_eq!(first["thumbnails"], json!([]));
        assert!(
            chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap()).is_ok()
        );
        assert!(body.as_object().unwrap().contains_key("next_cursor"));
        match &reference {
            None => reference = Some(body),
            Some(r) => assert_eq!(&body, r, "{enc} decodes to the same document"),
        }
    }
    // A client that decodes for itself (reqwest's gzip/brotli/zstd support).
    let decoding = reqwest::Client::new();
    let body: Value = decoding
        .get(app.url("/api/files?limit=50"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(Some(&body), reference.as_ref());
    app.cleanup().await;
}

#[tokio::test]
async fn conditional_gets_answer_304_without_a_body() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    seed_files(&app, &token, 3).await;
    let first = app.get(&token, "/api/files").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .http
        .get(app.url("/api/files"))
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    // A change makes the old tag stale.
    seed_files(&app, &token, 1).await;
    let changed = app
        .http
        .get(app.url("/api/files"))
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    // Caller-specific routes are private; mutations are never stored.
    let me = app.get(&token, "/api/users/me").await;
    assert_eq!(me.headers()["cache-control"], "private, no-cache");
    let created = app
        .send_json(
            Method::POST,
            &token,
            "/api/files",
            &json!({"name": "z.stl", "size": 1, "content_type": "model/stl"}),
        )
        .await;
    assert_eq!(created.headers()["cache-control"], "no-store");
    let err = json_body(app.get(&token, "/api/files?limit=0").await).await;
    assert_eq!(err["error"]["field"], "limit");
    app.cleanup().await;
}

#[tokio::test]
async fn lambda_responses_are_base64_with_the_right_flags_for_every_coding() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    seed_files(&app, &token, 12).await;
    let router = local::function_app(&app.services, "files-api").unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/events/files-api/list-files.json");
    let template: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut reference: Option<Value> = None;
    for enc in [
        Encoding::Identity,
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
    ] {
        let mut event = template.clone();
        event["rawQueryString"] = Value::String("limit=50".into());
        event["queryStringParameters"] = json!({"limit": "50"});
        event["headers"]["accept-encoding"] = Value::String(enc.token().into());
        let request: LambdaRequest = serde_json::from_value(event).unwrap();
        let mut adapter = lambda_http::Adapter::from(router.clone());
        let response = adapter
            .ready()
            .await
            .unwrap()
            .call(LambdaEvent::new(request, Context::default()))
            .await
            .unwrap();
        let response = serde_json::to_value(&response).unwrap();
        assert_eq!(response["statusCode"], 200, "{enc}");
        let text = response["body"].as_str().unwrap();
        let wire = if enc == Encoding::Identity {
            assert_eq!(
                response["isBase64Encoded"], false,
                "identity JSON goes as text"
            );
            assert!(response["headers"].get("content-encoding").is_none());
            text.as_bytes().to_vec()
        } else {
            assert_eq!(
                response["isBase64Encoded"], true,
                "{enc} must be base64 for API Gateway"
            );
            assert_eq!(response["headers"]["content-encoding"], enc.token());
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap()
        };
        assert_eq!(response["headers"]["vary"], "accept-encoding");
        let body: Value = serde_json::from_slice(&decompress(enc, &wire).unwrap()).unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 12);
        match &reference {
            None => reference = Some(body),
            Some(r) => assert_eq!(&body, r),
        }
    }
    app.cleanup().await;
}
