//! The background path end to end, with the five workers running on the local event source
//! against moto's SQS and DynamoDB: an upload becomes `ready` with metadata and thumbnails, its
//! job is visible with progress through the jobs API, it becomes searchable, its owner is
//! notified; a file that is not CAD ends `failed` with a reason; an ai-training job is
//! dead-lettered as not implemented.

use std::time::{Duration, Instant};

use auth::Role;
use integration_tests::{TestApp, json_body};
use reqwest::Method;
use serde_json::{Value, json};

fn testdata(name: &str) -> Vec<u8> {
    let dir = integration_tests::cad_testdata();
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn expected(name: &str) -> Value {
    let dir = integration_tests::cad_testdata();
    let all: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    all[name].clone()
}

/// Creates, uploads and completes a file; returns (file id, job id).
async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let resp = app
        .send_json(
            Method::POST,
            token,
            "/api/files",
            &json!({"name": name, "size": bytes.len(), "content_type": "application/octet-stream",
                    "tags": ["calibration"], "project_name": "Flow test", "part_name": "Cube"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let session = json_body(resp).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let url = session["upload"]["url"].as_str().unwrap();
    let mut put = app.http.put(url).body(bytes);
    for (k, v) in session["upload"]["headers"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    assert!(put.send().await.unwrap().status().is_success());
    let resp = app
        .send_json(
            Method::POST,
            token,
            &format!("/api/files/{id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let done = json_body(resp).await;
    (id, done["job_id"].as_str().unwrap().to_owned())
}

/// Polls GET /api/jobs/{id} until the job is finished; returns every progress figure seen and the
/// final record.
async fn wait_for_job(app: &TestApp, token: &str, job_id: &str) -> (Vec<u64>, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let resp = app.get(token, &format!("/api/jobs/{job_id}")).await;
        assert_eq!(resp.status(), 200);
        let job = json_body(resp).await;
        seen.push(job["progress"].as_u64().unwrap());
        if matches!(job["status"].as_str(), Some("succeeded" | "dead")) {
            return (seen, job);
        }
        assert!(Instant::now() < deadline, "job still {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls a GET until `done` accepts its JSON body.
async fn eventually(
    app: &TestApp,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .header("cache-control", "no-cache")
            .send()
            .await
            .unwrap();
        let body = json_body(resp).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_uploaded_stl_ends_ready_with_metadata_thumbnails_search_and_a_notification() {
    let app = TestApp::spawn_with_workers().await;
    let token = app.new_user_token(Role::Engineer);
    let (id, job_id) = upload(
        &app,
        &token,
        "20mm-xyz-cube.stl",
        testdata("20mm-xyz-cube.stl"),
    )
    .await;

    let (progress, job) = wait_for_job(&app, &token, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["job_type"], "process-file");
    assert_eq!(job["result"]["status"], "ready");
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {progress:?}"
    );

    // Another user may not see the job.
    let other = app.new_user_token(Role::Engineer);
    assert_eq!(
        app.get(&other, &format!("/api/jobs/{job_id}"))
            .await
            .status(),
        403
    );
    // The owner's list has it.
    let mine = json_body(app.get(&token, "/api/jobs?type=process-file").await).await;
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == job_id.as_str())
    );

    // The file is ready, measured like the reference implementation measured it.
    let file = json_body(app.get(&token, &format!("/api/files/{id}")).await).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert!(file["processing_error"].is_null());
    let want = expected("20mm-xyz-cube.stl");
    let md = &file["metadata"];
    assert_eq!(md["triangles"], want["triangles"]);
    assert_eq!(md["watertight"], want["watertight"]);
    let volume = md["volume"].as_f64().unwrap();
    assert!(
        (volume - want["volume"].as_f64().unwrap()).abs() < 0.01 * volume,
        "{md}"
    );
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);

    // Thumbnails: every default width in PNG and WebP, content-addressed, downloadable.
    let thumbs = file["thumbnails"].as_array().unwrap();
    assert_eq!(thumbs.len(), 6, "{thumbs:?}");
    for t in thumbs {
        let key = t["key"].as_str().unwrap();
        assert!(key.starts_with("thumbnails/") && key.ends_with(t["format"].as_str().unwrap()));
        let bytes = app
            .services
            .store
            .get(key, 10 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes.len() as u64, t["bytes"].as_u64().unwrap());
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(app.url(&format!("/api/files/{id}/thumbnail?width=640")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let png = app
        .http
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG comes back");
    let decoded = image_size(&png);
    assert_eq!(decoded, (640, 640));

    // The search-indexing job made it findable by its name and project.
    let found = eventually(&app, &token, "/api/search?q=xyz%20cube", |b| {
        b["items"].as_array().is_some_and(|i| {
            i.iter()
                .any(|h| h["file"]["id"] == id.as_str() || h["id"] == id.as_str())
        })
    })
    .await;
    assert!(!found["items"].as_array().unwrap().is_empty());

    // And the owner was told.
    let notes = eventually(&app, &token, "/api/notifications", |b| {
        b["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|n| n["kind"] == "file.ready"))
    })
    .await;
    assert_eq!(notes["items"][0]["data"]["file_id"], id.as_str());

    app.cleanup().await;
}

/// Width and height from a PNG's IHDR chunk.
fn image_size(png: &[u8]) -> (u32, u32) {
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test]
async fn a_file_that_is_not_cad_ends_failed_with_a_reason() {
    let app = TestApp::spawn_with_workers().await;
    let token = app.new_user_token(Role::Engineer);
    let (id, job_id) = upload(
        &app,
        &token,
        "holiday.stl",
        b"\x89PNG\r\n\x1a\n this is a picture, not a mesh".to_vec(),
    )
    .await;
    let (_, job) = wait_for_job(&app, &token, &job_id).await;
    assert_eq!(
        job["status"], "succeeded",
        "a bad file is a finished job, not a system failure"
    );
    assert_eq!(job["result"]["status"], "failed");
    let file = json_body(app.get(&token, &format!("/api/files/{id}")).await).await;
    assert_eq!(file["status"], "failed");
    let reason = file["processing_error"].as_str().unwrap();
    assert!(!reason.is_empty(), "a human-readable reason");
    assert!(file["thumbnails"].as_array().unwrap().is_empty());
    let notes = eventually(&app, &token, "/api/notifications", |b| {
        b["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|n| n["kind"] == "file.failed"))
    })
    .await;
    assert!(notes["items"][0]["body"].as_str().unwrap().contains(reason));
    app.cleanup().await;
}

#[tokio::test]
async fn ai_training_jobs_are_dead_lettered_as_not_implemented() {
    let app = TestApp::spawn_with_workers().await;
    let sent = app
        .services
        .jobs
        .producer
        .send(jobs::Job::new(
            jobs::JobType::TrainModel,
            json!({"model_id": "m1"}),
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let record = loop {
        let r = app
            .services
            .jobs
            .tracking
            .get(sent.job_id)
            .await
            .unwrap()
            .unwrap();
        if r.status == jobs::JobStatus::Dead {
            break r;
        }
        assert!(Instant::now() < deadline, "still {:?}", r.status);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(record.error.unwrap().contains("not implemented"));
    let dlq = &app
        .services
        .jobs
        .directory
        .get(jobs::QueueName::AiTraining)
        .unwrap()
        .dlq_url;
    let attrs = app
        .sqs
        .get_queue_attributes()
        .queue_url(dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let depth = attrs
        .attributes()
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .unwrap();
    assert_eq!(depth, "1");
    app.cleanup().await;
}

#[tokio::test]
async fn admins_see_all_five_queues_and_live_performance_figures() {
    let app = TestApp::spawn_with_workers().await;
    let admin = app.new_user_token(Role::Admin);
    let engineer = app.new_user_token(Role::Engineer);
    // Some traffic for the live view.
    for _ in 0..5 {
        assert_eq!(app.get(&engineer, "/api/files").await.status(), 200);
    }
    assert_eq!(app.get(&engineer, "/api/admin/queues").await.status(), 403);

    let queues = json_body(app.get(&admin, "/api/admin/queues").await).await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "file-processing",
            "ai-training",
            "search-indexing",
            "notifications",
            "reports"
        ]
    );
    for q in queues["queues"].as_array().unwrap() {
        assert!(q.get("dlq_depth").is_some(), "{q}");
    }

    let perf = eventually(&app, &admin, "/api/admin/performance", |b| {
        b["metrics"]["windows"][0]["requests"].as_u64().unwrap_or(0) >= 5
    })
    .await;
    let w = &perf["metrics"]["windows"][0];
    assert_eq!(w["window"], "5m");
    assert!(w["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{w}");
    assert!(perf["queues"]["items"].as_array().unwrap().len() == 5);
    assert!(perf["alerts"].is_array());

    // The dashboard page is served without a token, as HTML.
    let resp = app
        .http
        .get(app.url("/admin/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    app.cleanup().await;
}
