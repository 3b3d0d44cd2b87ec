//! The sample events under infra/events/, and error cases, replayed as API Gateway v2 events
//! through lambda_http's own adapter: what Lambda would return, serialised exactly as it would be.

use std::path::Path;

use auth::Role;
use axum::Router;
use integration_tests::TestApp;
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use serde_json::Value;

/// The router exactly as each function's main.rs builds it.
fn function_router(app: &TestApp, function: &str) -> Router {
    local::function_app(&app.services, function).expect("a known function")
}

/// Runs one event through lambda_http and returns the serialised Lambda response.
async fn invoke(router: Router, event: &Value) -> Value {
    let request: LambdaRequest =
        serde_json::from_value(event.clone()).expect("a valid API Gateway event");
    let mut adapter = lambda_http::Adapter::from(router);
    let response = adapter
        .ready()
        .await
        .expect("ready")
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("handler never errors at the Lambda level");
    serde_json::to_value(&response).expect("serialisable response")
}

fn body_json(response: &Value) -> Value {
    assert_eq!(
        response["isBase64Encoded"], false,
        "JSON is returned as text: {response}"
    );
    serde_json::from_str(response["body"].as_str().expect("a body")).expect("JSON body")
}

fn load_event(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/events")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event JSON")
}

#[tokio::test]
async fn every_sample_event_runs_through_its_function() {
    let app = TestApp::spawn().await;
    let expectations = [
        ("users-api", "get-me.json", 200),
        ("users-api", "list-users.json", 200),
        ("files-api", "create-file.json", 201),
        ("files-api", "list-files.json", 200),
        ("files-api", "get-file.json", 404),
        ("jobs-api", "get-job.json", 404),
        ("admin-api", "list-queues.json", 200),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/events");
    let mut on_disk: Vec<String> = Vec::new();
    for function in local::API_FUNCTIONS {
        for entry in std::fs::read_dir(dir.join(function)).unwrap() {
            on_disk.push(format!(
                "{function}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    on_disk.sort();
    let mut covered: Vec<String> = expectations
        .iter()
        .map(|(f, e, _)| format!("{f}/{e}"))
        .collect();
    covered.sort();
    assert_eq!(
        on_disk, covered,
        "every sample event has an expectation here"
    );

    for (function, name, status) in expectations {
        let event = load_event(&format!("{function}/{name}"));
        let response = invoke(function_router(&app, function), &event).await;
        assert_eq!(
            response["statusCode"], status,
            "{function}/{name}: {response}"
        );
        let body = body_json(&response);
        match name {
            "get-me.json" => assert_eq!(body["cognito_sub"], "sample-engineer"),
            "list-users.json" => assert!(body["items"].is_array()),
            "create-file.json" => {
                assert_eq!(body["status"], "uploading");
                assert!(
                    body["upload"]["url"]
                        .as_str()
                        .unwrap()
                        .contains("X-Amz-Signature")
                );
            }
            "list-files.json" => assert!(body["items"].is_array()),
            "get-file.json" | "get-job.json" => assert_eq!(body["error"]["code"], "not_found"),
            "list-queues.json" => assert_eq!(body["queues"].as_array().unwrap().len(), 5),
            _ => unreachable!(),
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn error_cases_come_back_as_json_through_lambda_http() {
    let app = TestApp::spawn().await;
    // No authorizer claims at all: the handler refuses on its own, not only the gateway.
    let mut event = load_event("users-api/get-me.json");
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let response = invoke(function_router(&app, "users-api"), &event).await;
    assert_eq!(response["statusCode"], 401);
    assert_eq!(body_json(&response)["error"]["code"], "unauthorized");

    let mut event = load_event("files-api/create-file.json");
    event["body"] = Value::String("{\"name\": \"a.stl\", \"size\": ".into());
    let response = invoke(function_router(&app, "files-api"), &event).await;
    assert_eq!(response["statusCode"], 400);
    assert_eq!(body_json(&response)["error"]["code"], "bad_request");

    let mut event = load_event("files-api/create-file.json");
    event["body"] = Value::String(
        serde_json::json!({"name": "huge.stl", "size": 200_000_000_i64, "content_type": "model/stl"}).to_string(),
    );
    let response = invoke(function_router(&app, "files-api"), &event).await;
    assert_eq!(response["statusCode"], 400);
    assert_eq!(body_json(&response)["error"]["field"], "size");

    // A viewer cannot create files, whatever the route.
    let mut event = load_event("files-api/create-file.json");
    event["requestContext"]["authorizer"]["jwt"]["claims"]["custom:role"] =
        Value::String("viewer".into());
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] =
        Value::String("sample-viewer-2".into());
    let response = invoke(function_router(&app, "files-api"), &event).await;
    assert_eq!(response["statusCode"], 403);

    // Roles from cognito:groups alone, as Cognito sends them without a custom attribute.
    let mut event = load_event("users-api/list-users.json");
    let claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap();
    claims.remove("custom:role");
    claims.insert("sub".into(), Value::String("groups-only-admin".into()));
    claims.insert(
        "cognito:groups".into(),
        Value::String(format!("[viewers {}]", Role::Admin)),
    );
    let response = invoke(function_router(&app, "users-api"), &event).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    app.cleanup().await;
}

/// Each worker's sample SQS event through the worker its main.rs builds: every record is settled
/// (no batch item failure), with the outcome the job deserves.
#[tokio::test]
async fn every_worker_sample_event_is_settled_by_its_worker() {
    let app = TestApp::spawn().await;
    let workers = local::jobs::workers(&app.services).expect("workers");
    let cases = [
        (
            "file-processing-worker",
            "process-file.json",
            jobs::QueueName::FileProcessing,
            "succeeded",
        ),
        (
            "ai-training-worker",
            "train-model.json",
            jobs::QueueName::AiTraining,
            "dead",
        ),
        (
            "search-indexing-worker",
            "index-file.json",
            jobs::QueueName::SearchIndexing,
            "succeeded",
        ),
        // The sample's recipient does not exist in a fresh database: a permanent failure.
        (
            "notifications-worker",
            "send-notification.json",
            jobs::QueueName::Notifications,
            "dead",
        ),
        (
            "reports-worker",
            "generate-report.json",
            jobs::QueueName::Reports,
            "dead",
        ),
    ];
    for (dir, name, queue, want) in cases {
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(load_event(&format!("{dir}/{name}"))).expect("an SQS event");
        let ids: Vec<uuid::Uuid> = event
            .records
            .iter()
            .map(|r| jobs::Job::from_json(r.body.as_deref().unwrap()).unwrap().id)
            .collect();
        let worker = workers
            .iter()
            .find(|w| w.config().queue == queue)
            .expect("a worker per queue");
        let response = worker.handle_batch(event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{dir}/{name}: {:?}",
            response.batch_item_failures
        );
        for id in ids {
            let record = app.services.jobs.tracking.get(id).await.unwrap();
            let status = record.map(|r| r.status.as_str().to_owned());
            assert_eq!(status.as_deref(), Some(want), "{dir}/{name}");
        }
    }
    app.cleanup().await;
}

/// The alarm-notifier's sample SNS event becomes one notification per admin.
#[tokio::test]
async fn the_alarm_sample_event_notifies_every_admin() {
    let app = TestApp::spawn().await;
    for _ in 0..2 {
        let token = app.new_user_token(Role::Admin);
        assert_eq!(app.get(&token, "/api/users/me").await.status(), 200);
    }
    let event: aws_lambda_events::event::sns::SnsEvent =
        serde_json::from_value(load_event("alarm-notifier/alarm-state-change.json")).unwrap();
    let record = &event.records[0];
    let alarm = notifications::alarms::AlarmMessage::parse(&record.sns.message).unwrap();
    assert_eq!(alarm.new_state_value, "ALARM");
    let notifier = notifications::Notifier::new(app.services.jobs.producer.clone());
    let queued = notifications::alarms::dispatch(
        &app.pool,
        &notifier,
        &record.sns.message_id,
        &alarm,
        &notifications::alarms::AlarmRouting {
            webhook_url: None,
            email: Some("oncall@example.com".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(queued, 3, "two admins in-app, one email");
    app.cleanup().await;
}
