//! Notifications against real PostgreSQL and moto (start both with `make services`), with
//! webhook receivers started on 127.0.0.1:0 inside the tests.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use jobs::{Job, JobError, JobType};
use notifications::webhook::{
    DEFAULT_MAX_AGE, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, http_client,
};
use notifications::{
    NotificationsConfig, NotificationsError, NotificationsHandler, NotificationsState,
    SendNotification, repo, verify_signature,
};
use response_pipeline::Invalidator;
use serde_json::{Value, json};
use support::{TestDb, aws, call};
use uuid::Uuid;

const SECRET: &[u8] = b"test-webhook-secret";

fn job(n: &SendNotification) -> Job {
    Job::new(JobType::SendNotification, serde_json::to_value(n).unwrap()).with_user(n.user_id)
}

fn config(timeout: Duration, email_from: Option<&str>) -> NotificationsConfig {
    NotificationsConfig {
        email_from: email_from.map(str::to_owned),
        webhook_secret: Some(SECRET.to_vec()),
        webhook_timeout: timeout,
    }
}

async fn handler(db: &TestDb, timeout: Duration, email_from: Option<&str>) -> NotificationsHandler {
    let sdk = aws().await;
    NotificationsHandler::new(
        db.pool.clone(),
        http_client(timeout).unwrap(),
        aws_sdk_sesv2::Client::new(&sdk),
        &config(timeout, email_from),
    )
}

/// What a receiver saw: the verification result and the parsed body of each delivery.
type Seen = Arc<Mutex<Vec<(Result<(), String>, Value, HeaderMap)>>>;

/// Starts a receiver answering `status` (or never answering when `hang`) and verifying the
/// signature of everything it receives.
async fn receiver(status: StatusCode, hang: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let verified = verify_signature(
                    SECRET,
                    &header(TIMESTAMP_HEADER),
                    &body,
                    &header(SIGNATURE_HEADER),
                    DEFAULT_MAX_AGE,
                )
                .map_err(|e| e.to_string());
                let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
                s.lock().unwrap().push((verified, parsed, headers.clone()));
                if hang {
                    std::future::pending::<()>().await;
                }
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook?token=abc"), seen)
}

#[tokio::test]
async fn in_app_list_mark_read_and_isolation_through_the_routes() {
    let db = TestDb::new().await;
    let app = notifications::router(NotificationsState {
        pool: db.pool.clone(),
        invalidator: Invalidator::new(None),
    });
    let alice_sub = format!("alice-{}", Uuid::new_v4());
    let bob_sub = format!("bob-{}", Uuid::new_v4());
    // First requests provision both users.
    let (status, page) = call(
        &app,
        "GET",
        "/api/notifications",
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["unread_count"], 0);
    call(&app, "GET", "/api/notifications", &bob_sub, "viewer", None).await;
    let id_of = |sub: String| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM users WHERE cognito_sub = $1")
                .bind(sub)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let alice = id_of(alice_sub.clone()).await;
    let bob = id_of(bob_sub.clone()).await;

    // Five for Alice (through the handler, in-app only), one for Bob.
    let h = handler(&db, Duration::from_secs(5), None).await;
    let mut alice_ids = Vec::new();
    for i in 0..5 {
        let n = SendNotification::new(alice, "file.processed", format!("File {i} ready"))
            .with_body("done")
            .with_data(json!({"file_id": i}));
        let j = job(&n);
        let report = h.deliver(&j).await.unwrap();
        assert_eq!(report.notification_id, Some(j.id));
        assert_eq!(report.in_app_inserted, Some(true));
        alice_ids.push(j.id);
    }
    let bobs = job(&SendNotification::new(bob, "file.processed", "Bob's"));
    h.deliver(&bobs).await.unwrap();

    // A retried job does not duplicate its row.
    let again = h
        .deliver(&job(&SendNotification::new(alice, "x", "y")).with_id(alice_ids[0]))
        .await
        .unwrap();
    assert_eq!(again.in_app_inserted, Some(false));
    assert_eq!(repo::unread_count(&db.pool, alice).await.unwrap(), 5);

    // Pages of 2, newest first, keyset cursor.
    let (status, p1) = call(
        &app,
        "GET",
        "/api/notifications?limit=2",
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    assert_eq!(p1["unread_count"], 5);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = call(
        &app,
        "GET",
        &format!("/api/notifications?limit=2&cursor={cursor}"),
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    let cursor2 = p2["next_cursor"].as_str().unwrap().to_owned();
    let (_, p3) = call(
        &app,
        "GET",
        &format!("/api/notifications?limit=2&cursor={cursor2}"),
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert!(p3["next_cursor"].is_null());
    let listed: Vec<String> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut expected: Vec<String> = alice_ids.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(listed.len(), 5);
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "all of Alice's, none of Bob's");
    assert!(!listed.contains(&bobs.id.to_string()));
    assert_eq!(
        p1["items"][0]["data"],
        json!({"file_id": 4}),
        "newest first"
    );

    // Bob can neither read nor mark Alice's.
    let path = format!("/api/notifications/{}/read", alice_ids[2]);
    let (status, body) = call(&app, "POST", &path, &bob_sub, "viewer", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = call(
        &app,
        "POST",
        "/api/notifications/not-a-uuid/read",
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Alice marks one read; the unread filter and count follow; marking again keeps the time.
    let (status, read) = call(&app, "POST", &path, &alice_sub, "engineer", None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["read_at"].is_string());
    let (_, read_again) = call(&app, "POST", &path, &alice_sub, "engineer", None).await;
    assert_eq!(read_again["read_at"], read["read_at"]);
    let (_, unread) = call(
        &app,
        "GET",
        "/api/notifications?unread=true",
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert_eq!(unread["items"].as_array().unwrap().len(), 4);
    assert_eq!(unread["unread_count"], 4);
    assert!(
        unread["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read_at"].is_null())
    );

    // Read-all touches only the caller's.
    let (status, all) = call(
        &app,
        "POST",
        "/api/notifications/read-all",
        &alice_sub,
        "engineer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["updated"], 4);
    assert_eq!(repo::unread_count(&db.pool, alice).await.unwrap(), 0);
    assert_eq!(repo::unread_count(&db.pool, bob).await.unwrap(), 1);

    // Bad query parameters are 400s naming the parameter.
    for (q, field) in [
        ("limit=0", "limit"),
        ("unread=maybe", "unread"),
        ("cursor=%25%25", "cursor"),
    ] {
        let (status, body) = call(
            &app,
            "GET",
            &format!("/api/notifications?{q}"),
            &alice_sub,
            "engineer",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["error"]["field"], field, "{q}: {body}");
    }
    // Without authorizer claims: 401.
    let res = tower::ServiceExt::oneshot(
        app.clone(),
        axum::http::Request::get("/api/notifications")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    db.drop_db().await;
}

#[tokio::test]
async fn unknown_recipient_and_bad_payload_are_permanent() {
    let db = TestDb::new().await;
    let h = handler(&db, Duration::from_secs(5), None).await;
    let err = h
        .deliver(&job(&SendNotification::new(Uuid::new_v4(), "k", "t")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotificationsError::UnknownRecipient(_)),
        "{err}"
    );
    assert!(!JobError::from(err).is_retryable());
    let bad = Job::new(JobType::SendNotification, json!({"user_id": "nope"}));
    assert!(!JobError::from(h.deliver(&bad).await.unwrap_err()).is_retryable());
    db.drop_db().await;
}

#[tokio::test]
async fn webhook_is_delivered_signed_and_verified_by_the_receiver() {
    let db = TestDb::new().await;
    let (user, _) = db.user("engineer").await;
    let (url, seen) = receiver(StatusCode::NO_CONTENT, false).await;
    let h = handler(&db, Duration::from_secs(5), None).await;
    let n = SendNotification::new(user, "report.ready", "Report ready")
        .with_body("Your report")
        .with_data(json!({"url": "https://x.example.com/r.csv"}))
        .with_webhook(url);
    let j = job(&n);
    let report = h.deliver(&j).await.unwrap();
    assert_eq!(report.webhook_status, Some(204));
    assert_eq!(report.in_app_inserted, Some(true));
    let mut seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), 1);
    let (verified, body, headers) = seen.remove(0);
    assert_eq!(verified, Ok(()), "signature verifies at the receiver");
    assert_eq!(body["id"], j.id.to_string());
    assert_eq!(body["kind"], "report.ready");
    assert_eq!(body["user_id"], user.to_string());
    assert_eq!(body["data"]["url"], "https://x.example.com/r.csv");
    assert_eq!(headers[DELIVERY_HEADER], j.id.to_string().as_str());
    assert!(
        headers[SIGNATURE_HEADER]
            .to_str()
            .unwrap()
            .starts_with("sha256=")
    );
    assert_eq!(headers["content-type"], "application/json");
    db.drop_db().await;
}

#[tokio::test]
async fn webhook_failures_are_classified() {
    let db = TestDb::new().await;
    let (user, _) = db.user("viewer").await;
    let timeout = Duration::from_millis(500);
    let h = handler(&db, timeout, None).await;
    let webhook_only = |url: &str| {
        SendNotification::new(user, "k", "t")
            .in_app(false)
            .with_webhook(url)
    };

    let (url500, seen500) = receiver(StatusCode::INTERNAL_SERVER_ERROR, false).await;
    let err = h.deliver(&job(&webhook_only(&url500))).await.unwrap_err();
    assert!(
        matches!(err, NotificationsError::WebhookTransient(_)),
        "{err}"
    );
    assert!(
        !err.to_string().contains("token=abc"),
        "query strings are not logged: {err}"
    );
    assert!(JobError::from(err).is_retryable());
    assert_eq!(seen500.lock().unwrap()[0].0, Ok(()));

    for (status, transient) in [
        (StatusCode::BAD_REQUEST, false),
        (StatusCode::GONE, false),
        (StatusCode::TOO_MANY_REQUESTS, true),
        (StatusCode::REQUEST_TIMEOUT, true),
        (StatusCode::SERVICE_UNAVAILABLE, true),
    ] {
        let (url, _) = receiver(status, false).await;
        let err = h.deliver(&job(&webhook_only(&url))).await.unwrap_err();
        assert_eq!(err.is_transient(), transient, "{status}: {err}");
        assert_eq!(JobError::from(err).is_retryable(), transient, "{status}");
    }

    // A receiver that never answers: the delivery gives up at the timeout, as a transient failure.
    let (hang_url, hang_seen) = receiver(StatusCode::OK, true).await;
    let started = Instant::now();
    let err = h.deliver(&job(&webhook_only(&hang_url))).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, NotificationsError::WebhookTransient(ref m) if m.contains("did not answer")),
        "{err}"
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(hang_seen.lock().unwrap().len(), 1, "the request did arrive");

    // Nobody listening: transient.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = h
        .deliver(&job(&webhook_only(&format!(
            "http://127.0.0.1:{port}/hook"
        ))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotificationsError::WebhookTransient(_)),
        "{err}"
    );

    // A webhook without a configured secret is refused for good.
    let unsigned = NotificationsHandler::new(
        db.pool.clone(),
        http_client(timeout).unwrap(),
        aws_sdk_sesv2::Client::new(&aws().await),
        &NotificationsConfig::default(),
    );
    let err = unsigned
        .deliver(&job(&webhook_only(&url500)))
        .await
        .unwrap_err();
    assert!(matches!(err, NotificationsError::Config(_)), "{err}");
    db.drop_db().await;
}

/// Sent messages as moto records them (`/moto-api/data.json`, SES backend `Message` models).
async fn moto_sent_messages() -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", support::aws_endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn email_goes_through_ses_and_is_visible_in_moto() {
    let db = TestDb::new().await;
    let (user, sub) = db.user("engineer").await;
    let sdk = aws().await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let from = format!("noreply-{}@cad.example.com", Uuid::new_v4().simple());
    // Unverified sender: SES (and moto) refuse, for good.
    let h = handler(&db, Duration::from_secs(5), Some(&from)).await;
    let n = SendNotification::new(user, "report.ready", "Your report is ready")
        .with_body("Download it within 24 hours.")
        .in_app(false)
        .with_email(None);
    let err = h.deliver(&job(&n)).await.unwrap_err();
    assert!(
        matches!(err, NotificationsError::EmailPermanent(_)),
        "{err}"
    );

    notifications::ensure_sender_identity(&ses, &from)
        .await
        .unwrap();
    notifications::ensure_sender_identity(&ses, &from)
        .await
        .unwrap();
    let report = h.deliver(&job(&n)).await.unwrap();
    let message_id = report.email_message_id.clone().unwrap();
    let to_override = format!("other-{}@example.com", Uuid::new_v4().simple());
    let report2 = h
        .deliver(&job(&n.clone().with_email(Some(to_override.clone()))))
        .await
        .unwrap();

    let sent = moto_sent_messages().await;
    let find = |id: &str| {
        sent.iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let m = find(&message_id);
    assert_eq!(m["source"], from.as_str(), "{m}");
    assert_eq!(m["subject"], "Your report is ready");
    assert_eq!(m["body"], "Download it within 24 hours.");
    assert_eq!(
        m["destinations"]["ToAddresses"],
        json!([format!("{sub}@example.com")]),
        "the user's address from users"
    );
    let m2 = find(report2.email_message_id.as_deref().unwrap());
    assert_eq!(m2["destinations"]["ToAddresses"], json!([to_override]));
    db.drop_db().await;
}
