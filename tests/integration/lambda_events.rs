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
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/events");
    let mut on_disk: Vec<String> = Vec::new();
    for function in ["users-api", "files-api"] {
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
            "get-file.json" => assert_eq!(body["error"]["code"], "not_found"),
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
