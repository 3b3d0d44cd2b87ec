//! users-api: provisioning, profiles, roles, admin listing.

use auth::Role;
use integration_tests::{TestApp, json_body};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn first_request_provisions_the_caller_with_the_token_role() {
    let app = TestApp::spawn().await;
    let token = app.token_for("cognito-sub-1", Role::Engineer);
    let me = json_body(app.get(&token, "/api/users/me").await).await;
    assert_eq!(me["cognito_sub"], "cognito-sub-1");
    assert_eq!(me["role"], "engineer");
    assert_eq!(me["email"], "cognito-sub-1@example.com");
    assert!(me["last_login_at"].is_string());
    // The same caller again: the same row, not a second one.
    let again = json_body(app.get(&token, "/api/users/me").await).await;
    assert_eq!(again["id"], me["id"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_first_requests_create_one_user() {
    let app = TestApp::spawn().await;
    let token = app.token_for("racer", Role::Viewer);
    let futures = (0..8).map(|_| app.get(&token, "/api/users/me"));
    for resp in futures::future::join_all(futures).await {
        assert_eq!(resp.status(), 200);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn reading_users_is_for_self_or_admin() {
    let app = TestApp::spawn().await;
    let alice = app.new_user_token(Role::Engineer);
    let bob = app.new_user_token(Role::Viewer);
    let admin = app.new_user_token(Role::Admin);
    let alice_id = json_body(app.get(&alice, "/api/users/me").await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        app.get(&alice, &format!("/api/users/{alice_id}"))
            .await
            .status(),
        200
    );
    let resp = app.get(&bob, &format!("/api/users/{alice_id}")).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(json_body(resp).await["error"]["code"], "forbidden");
    assert_eq!(
        app.get(&admin, &format!("/api/users/{alice_id}"))
            .await
            .status(),
        200
    );

    let unknown = uuid::Uuid::new_v4();
    let resp = app.get(&admin, &format!("/api/users/{unknown}")).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json_body(resp).await["error"]["code"], "not_found");
    assert_eq!(app.get(&admin, "/api/users/not-a-uuid").await.status(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn users_update_their_profile_but_not_their_role() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let id = json_body(app.get(&token, "/api/users/me").await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/users/{id}");

    let resp = app
        .send_json(Method::PUT, &token, &path, &json!({"username": "new.name", "display_name": "New Name", "preferences": {"units": "mm"}}))
        .await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(body["username"], "new.name");
    assert_eq!(body["display_name"], "New Name");
    assert_eq!(body["preferences"]["units"], "mm");

    // null clears, absence keeps.
    let body = json_body(
        app.send_json(Method::PUT, &token, &path, &json!({"display_name": null}))
            .await,
    )
    .await;
    assert!(body["display_name"].is_null());
    assert_eq!(body["username"], "new.name");

    let resp = app
        .send_json(Method::PUT, &token, &path, &json!({"role": "admin"}))
        .await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .send_json(Method::PUT, &token, &path, &json!({"is_active": false}))
        .await;
    assert_eq!(resp.status(), 403);

    for (body, field) in [
        (json!({"username": "x"}), "username"),
        (json!({"preferences": [1, 2]}), "preferences"),
        (json!({"email": "a@b.c"}), "email"),
        (json!({"username": 12}), "username"),
    ] {
        let resp = app.send_json(Method::PUT, &token, &path, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(json_body(resp).await["error"]["field"], field, "{body}");
    }
    let resp = app
        .http
        .put(app.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        json_body(resp).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );

    let other = app.new_user_token(Role::Engineer);
    let resp = app
        .send_json(Method::PUT, &other, &path, &json!({"username": "hijack"}))
        .await;
    assert_eq!(resp.status(), 403);

    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE action = 'user.update'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn admins_manage_roles_and_activation_but_never_remove_the_last_admin() {
    let app = TestApp::spawn().await;
    let admin = app.new_user_token(Role::Admin);
    let admin_id = json_body(app.get(&admin, "/api/users/me").await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let eng = app.new_user_token(Role::Engineer);
    let eng_id = json_body(app.get(&eng, "/api/users/me").await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let resp = app
        .send_json(
            Method::PUT,
            &admin,
            &format!("/api/users/{eng_id}"),
            &json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(json_body(resp).await["role"], "viewer");
    // The database role is authoritative once the row exists: the engineer token now acts as a viewer.
    let resp = app
        .send_json(
            Method::POST,
            &eng,
            "/api/files",
            &json!({"name": "a.stl", "size": 10, "content_type": "model/stl"}),
        )
        .await;
    assert_eq!(resp.status(), 403);

    let resp = app
        .send_json(
            Method::PUT,
            &admin,
            &format!("/api/users/{eng_id}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app.get(&eng, "/api/users/me").await;
    assert_eq!(
        resp.status(),
        403,
        "a deactivated user is refused everywhere"
    );

    let resp = app
        .send_json(
            Method::PUT,
            &admin,
            &format!("/api/users/{admin_id}"),
            &json!({"role": "engineer"}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    let resp = app
        .send_json(
            Method::PUT,
            &admin,
            &format!("/api/users/{admin_id}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    app.cleanup().await;
}

#[tokio::test]
async fn admin_listing_filters_and_pages_with_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.new_user_token(Role::Admin);
    app.get(&admin, "/api/users/me").await;
    for role in [
        Role::Engineer,
        Role::Engineer,
        Role::Engineer,
        Role::Viewer,
        Role::Viewer,
    ] {
        let t = app.new_user_token(role);
        assert_eq!(app.get(&t, "/api/users/me").await.status(), 200);
    }
    let viewer = app.new_user_token(Role::Viewer);
    assert_eq!(app.get(&viewer, "/api/users").await.status(), 403);

    let mut seen = Vec::new();
    let mut path = "/api/users?limit=2".to_owned();
    loop {
        let page = json_body(app.get(&admin, &path).await).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every user exactly once across pages");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    let engineers = json_body(
        app.get(&admin, "/api/users?role=engineer&active=true")
            .await,
    )
    .await;
    assert_eq!(engineers["items"].as_array().unwrap().len(), 3);
    assert!(engineers["next_cursor"].is_null());

    for (q, field) in [
        ("role=wizard", "role"),
        ("limit=0", "limit"),
        ("cursor=bogus", "cursor"),
        ("active=maybe", "active"),
    ] {
        let resp = app.get(&admin, &format!("/api/users?{q}")).await;
        assert_eq!(resp.status(), 400, "{q}");
        assert_eq!(json_body(resp).await["error"]["field"], field, "{q}");
    }
    app.cleanup().await;
}
