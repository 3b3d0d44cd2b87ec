//! The response cache through the real API: MISS then HIT, precise invalidation on writes,
//! private isolation, and Redis dying and coming back in the middle of a test.

use auth::Role;
use integration_tests::{PrivateRedis, TestApp, cache_service, json_body};
use reqwest::Method;
use serde_json::{Value, json};

fn x_cache(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get_with_cache(app: &TestApp, token: &str, path: &str) -> (String, Value) {
    let resp = app.get(token, path).await;
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let outcome = x_cache(&resp);
    (outcome, json_body(resp).await)
}

async fn create(app: &TestApp, token: &str, name: &str, project: &str, tags: &[&str]) -> String {
    let resp = app
        .send_json(
            Method::POST,
            token,
            "/api/files",
            &json!({"name": name, "size": 10, "content_type": "model/stl", "project_name": project, "tags": tags}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    json_body(resp).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn repeated_gets_hit_and_writes_are_visible_at_once() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let id = create(&app, &token, "a.stl", "P", &["steel"]).await;
    let path = format!("/api/files/{id}");
    assert_eq!(get_with_cache(&app, &token, &path).await.0, "MISS");
    let (outcome, before) = get_with_cache(&app, &token, &path).await;
    assert_eq!(outcome, "HIT");
    assert_eq!(before["tags"], json!(["steel"]));

    let resp = app
        .send_json(Method::PUT, &token, &path, &json!({"tags": ["aluminium"]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(x_cache(&resp), "BYPASS", "mutations are never cached");
    let (outcome, after) = get_with_cache(&app, &token, &path).await;
    assert_eq!(outcome, "MISS");
    assert_eq!(
        after["tags"],
        json!(["aluminium"]),
        "the PUT is visible on the next GET"
    );

    let resp = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.get(&token, &path).await.status(),
        404,
        "the DELETE is visible on the next GET"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_change_invalidates_its_file_and_listings_but_not_others() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let a = create(&app, &token, "a.stl", "Rover", &["steel"]).await;
    let b = create(&app, &token, "b.stl", "Lander", &["abs"]).await;
    let paths = [
        format!("/api/files/{a}"),
        format!("/api/files/{b}"),
        "/api/files?project=Rover".to_owned(),
        "/api/files?project=Lander".to_owned(),
        "/api/files?tags=abs".to_owned(),
        "/api/files?tags=steel".to_owned(),
        "/api/files".to_owned(),
    ];
    for p in &paths {
        get_with_cache(&app, &token, p).await;
        assert_eq!(get_with_cache(&app, &token, p).await.0, "HIT", "{p}");
    }
    let resp = app
        .send_json(
            Method::PUT,
            &token,
            &format!("/api/files/{a}"),
            &json!({"description": "changed"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let expect = [
        (&paths[0], "MISS"),
        (&paths[1], "HIT"),
        (&paths[2], "MISS"),
        (&paths[3], "HIT"),
        (&paths[4], "HIT"),
        (&paths[5], "MISS"),
        (&paths[6], "MISS"),
    ];
    for (p, outcome) in expect {
        assert_eq!(
            get_with_cache(&app, &token, p).await.0,
            outcome,
            "{p} after changing file a"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn private_routes_never_cross_callers_and_user_updates_invalidate() {
    let app = TestApp::spawn().await;
    let alice = app.token_for("alice-sub", Role::Engineer);
    let bob = app.token_for("bob-sub", Role::Engineer);
    for _ in 0..2 {
        assert_eq!(
            get_with_cache(&app, &alice, "/api/users/me").await.1["cognito_sub"],
            "alice-sub"
        );
        assert_eq!(
            get_with_cache(&app, &bob, "/api/users/me").await.1["cognito_sub"],
            "bob-sub"
        );
    }
    let (outcome, me) = get_with_cache(&app, &alice, "/api/users/me").await;
    assert_eq!(outcome, "HIT");
    let id = me["id"].as_str().unwrap();
    let resp = app
        .send_json(
            Method::PUT,
            &alice,
            &format!("/api/users/{id}"),
            &json!({"display_name": "Alice A."}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (outcome, me) = get_with_cache(&app, &alice, "/api/users/me").await;
    assert_eq!(outcome, "MISS");
    assert_eq!(me["display_name"], "Alice A.");
    assert_eq!(
        get_with_cache(&app, &bob, "/api/users/me").await.0,
        "HIT",
        "bob's entry is untouched"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn redis_dying_mid_test_degrades_to_bypass_and_caching_resumes() {
    let mut redis = PrivateRedis::start().await;
    let prefix = "itest-private:".to_owned();
    let cache = cache_service(&redis.url(), &prefix).await;
    let app = TestApp::spawn_with_cache(Some(cache), String::new()).await;
    let token = app.new_user_token(Role::Engineer);
    let id = create(&app, &token, "a.stl", "P", &[]).await;
    let path = format!("/api/files/{id}");
    assert_eq!(get_with_cache(&app, &token, &path).await.0, "MISS");
    assert_eq!(get_with_cache(&app, &token, &path).await.0, "HIT");

    redis.stop();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (outcome, body) = get_with_cache(&app, &token, &path).await;
        assert_eq!(outcome, "BYPASS");
        assert_eq!(body["id"], id.as_str(), "served from the database");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
    // Writes still work (their invalidation fails loudly in the log, not in the response).
    let resp = app
        .send_json(Method::PUT, &token, &path, &json!({"tags": ["while-down"]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        get_with_cache(&app, &token, &path).await.1["tags"],
        json!(["while-down"])
    );

    redis.restart().await;
    let mut resumed = false;
    for _ in 0..100 {
        let (outcome, _) = get_with_cache(&app, &token, &path).await;
        if outcome == "MISS" {
            resumed = true;
            break;
        }
        assert_eq!(outcome, "BYPASS");
        // The breaker probes again after its cool-down (500 ms in tests).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed, "caching resumes after Redis restarts");
    let (outcome, body) = get_with_cache(&app, &token, &path).await;
    assert_eq!(outcome, "HIT");
    assert_eq!(body["tags"], json!(["while-down"]));
    app.cleanup().await;
}

#[tokio::test]
async fn the_warmer_fills_every_coding_before_callers_ask() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    for i in 0..15 {
        create(&app, &token, &format!("part-{i}.stl"), "Rover", &["steel"]).await;
    }
    let router = local::function_app(&app.services, "files-api").unwrap();
    let paths = response_pipeline::warm::parse_paths("/api/files,/api/files?sort=name");
    response_pipeline::warm::check_paths(&paths).unwrap();
    let claims = [("sub", "service:cache-warmer"), ("custom:role", "viewer")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let warmed =
        response_pipeline::warm::warm(&router, &paths, &auth::request_context(claims, "GET", "/"))
            .await;
    assert_eq!(warmed.len(), 2);
    for w in &warmed {
        assert_eq!(w.status, 200, "{w:?}");
        assert_eq!(w.encodings, vec!["zstd", "br", "gzip"], "{w:?}");
        assert!(w.bytes > 1024);
    }
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .build()
        .unwrap();
    for path in &paths {
        for enc in ["zstd", "br", "gzip"] {
            let resp = raw
                .get(app.url(path))
                .bearer_auth(&token)
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            assert_eq!(
                x_cache(&resp),
                "HIT",
                "{path} {enc}: the very first caller hits"
            );
            assert_eq!(resp.headers()["content-encoding"], enc);
        }
    }
    app.cleanup().await;
}
