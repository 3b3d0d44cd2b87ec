//! The emulated API Gateway: tokens are checked before any handler runs.

use auth::Role;
use auth::local::{DEFAULT_AUDIENCE, LocalAuthority, TokenRequest};
use integration_tests::{TestApp, json_body};

#[tokio::test]
async fn missing_or_bad_tokens_are_refused_like_the_gateway_does() {
    let app = TestApp::spawn().await;
    for auth in [None, Some("Bearer nonsense"), Some("Basic abc")] {
        let mut req = app.http.get(app.url("/api/users/me"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(json_body(resp).await["message"], "Unauthorized");
    }
    // Signed by someone else, and expired.
    let foreign = LocalAuthority::new(b"other-secret", "https://elsewhere", DEFAULT_AUDIENCE);
    let request = TokenRequest {
        subject: "x".into(),
        email: "x@example.com".into(),
        username: "x".into(),
        role: Role::Admin,
        ttl_seconds: 60,
    };
    let resp = app
        .get(&foreign.mint(&request).unwrap(), "/api/users/me")
        .await;
    assert_eq!(resp.status(), 401);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "a refused request must not provision a user");

    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Viewer);
    let resp = app.get(&token, "/api/nothing-here").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_body(resp).await["error"]["code"], "not_found");
    app.cleanup().await;
}
