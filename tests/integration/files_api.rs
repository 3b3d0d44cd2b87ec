//! files-api: uploads through presigned URLs, completion, versions, listing, edits, deletion.

use auth::Role;
use integration_tests::{TestApp, json_body};
use md5::Digest;
use reqwest::Method;
use serde_json::{Value, json};

fn cube_bytes() -> Vec<u8> {
    let path = integration_tests::cad_testdata().join("20mm-xyz-cube.stl");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Creates a file declaration and returns the response body.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let resp = app
        .send_json(Method::POST, token, "/api/files", &body)
        .await;
    assert_eq!(resp.status(), 201, "create {body}");
    json_body(resp).await
}

/// PUTs bytes to a presigned upload as a browser or CLI would.
async fn upload(app: &TestApp, session: &Value, bytes: Vec<u8>) {
    let mut req = app
        .http
        .put(session["upload"]["url"].as_str().unwrap())
        .body(bytes);
    for (k, v) in session["upload"]["headers"].as_object().unwrap() {
        req = req.header(k.as_str(), v.as_str().unwrap());
    }
    let resp = req.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "presigned PUT: {}",
        resp.status()
    );
}

async fn receive_jobs(app: &TestApp) -> Vec<Value> {
    let out = app
        .sqs
        .receive_message()
        .queue_url(&app.processing_queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn upload_round_trip_ends_with_a_processing_job_on_the_queue() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let bytes = cube_bytes();
    let session = create(
        &app,
        &token,
        json!({"name": "20mm cube.stl", "size": bytes.len(), "content_type": "model/stl",
               "tags": ["Calibration", "cube"], "project_name": "Printer", "part_name": "Cube"}),
    )
    .await;
    let id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(session["status"], "uploading");
    assert_eq!(session["tags"], json!(["calibration", "cube"]));
    assert_eq!(session["upload"]["method"], "PUT");
    // Valid 15 minutes, as the guide's upload flow says.
    let expires =
        chrono::DateTime::parse_from_rfc3339(session["upload"]["expires_at"].as_str().unwrap())
            .unwrap();
    let ttl = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((880..=900).contains(&ttl), "presigned TTL {ttl}s");
    assert!(
        session["upload"]["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Expires=900")
    );

    // Completing before the bytes are there is refused.
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 409);

    upload(&app, &session, bytes.clone()).await;
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let done = json_body(resp).await;
    assert_eq!(done["file"]["status"], "processing");
    let expected_md5 = hex::encode(md5::Md5::digest(&bytes));
    assert_eq!(
        done["file"]["checksum"],
        expected_md5.as_str(),
        "the S3 ETag is stored as the checksum"
    );

    let jobs = receive_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["type"], "process-file");
    assert_eq!(job["id"], done["job_id"]);
    assert_eq!(job["payload"]["file_id"], id.as_str());
    assert_eq!(job["payload"]["version"], 1);
    assert_eq!(job["user_id"], session["uploaded_by"]);
    assert!(!job["correlation_id"].as_str().unwrap().is_empty());

    // A second completion is a conflict and queues nothing.
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 409);

    // Anyone signed in can read and download it; the bytes come back intact.
    let viewer = app.new_user_token(Role::Viewer);
    let file = json_body(app.get(&viewer, &format!("/api/files/{id}")).await).await;
    assert_eq!(file["status"], "processing");
    let dl = json_body(app.get(&viewer, &format!("/api/files/{id}/download")).await).await;
    let url = reqwest::Url::parse(dl["download"]["url"].as_str().unwrap()).unwrap();
    // S3 answers with this Content-Disposition (moto ignores the parameter, so check the request).
    let disposition = url
        .query_pairs()
        .find(|(k, _)| k == "response-content-disposition")
        .map(|(_, v)| v.into_owned())
        .expect("the download asks S3 for a Content-Disposition");
    assert!(
        disposition.contains("filename=\"20mm cube.stl\""),
        "{disposition}"
    );
    let got = app.http.get(url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    app.cleanup().await;
}

#[tokio::test]
async fn a_short_upload_is_refused_at_completion() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let session = create(
        &app,
        &token,
        json!({"name": "part.stl", "size": 1000, "content_type": "model/stl"}),
    )
    .await;
    upload(&app, &session, vec![7u8; 999]).await;
    let id = session["id"].as_str().unwrap();
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 409);
    let body = json_body(resp).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("999 bytes"),
        "{body}"
    );
    assert!(
        receive_jobs(&app).await.is_empty(),
        "nothing queued for a refused upload"
    );
    let file = json_body(app.get(&token, &format!("/api/files/{id}")).await).await;
    assert_eq!(
        file["status"], "uploading",
        "still completable after a correct re-upload"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn invalid_declarations_are_400s_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let ok = json!({"name": "a.stl", "size": 10, "content_type": "model/stl"});
    let cases = [
        (json!({"size": 10, "content_type": "model/stl"}), "name"),
        (
            json!({"name": "a.stl", "size": 104857601, "content_type": "model/stl"}),
            "size",
        ),
        (
            json!({"name": "a.stl", "size": -1, "content_type": "model/stl"}),
            "size",
        ),
        (
            json!({"name": "a.stl", "size": "ten", "content_type": "model/stl"}),
            "size",
        ),
        (
            json!({"name": "holiday.jpg", "size": 10, "content_type": "image/jpeg"}),
            "name",
        ),
        (
            json!({"name": "../../etc/passwd.stl", "size": 10, "content_type": "model/stl"}),
            "name",
        ),
        (
            json!({"name": "a.stl", "size": 10, "content_type": "not a mime"}),
            "content_type",
        ),
        (
            json!({"name": "a.stl", "size": 10, "content_type": "model/stl", "tags": ["ok", ""]}),
            "tags[1]",
        ),
        (
            json!({"name": "a.stl", "size": 10, "content_type": "model/stl", "tags": ["ok", 5]}),
            "tags[1]",
        ),
        (
            json!({"name": "a.stl", "size": 10, "content_type": "model/stl", "owner": "me"}),
            "owner",
        ),
    ];
    for (body, field) in cases {
        let resp = app
            .send_json(Method::POST, &token, "/api/files", &body)
            .await;
        assert_eq!(resp.status(), 400, "{body}");
        let err = json_body(resp).await;
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
        assert_eq!(err["error"]["code"], "bad_request");
    }
    // Exactly 100 MB is allowed.
    let resp = app
        .send_json(
            Method::POST,
            &token,
            "/api/files",
            &json!({"name": "big.stl", "size": 104857600, "content_type": "model/stl"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    // Malformed JSON and a missing content type.
    let resp = app
        .http
        .post(app.url("/api/files"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .http
        .post(app.url("/api/files"))
        .bearer_auth(&token)
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM cad_files")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the valid declaration was stored");
    app.cleanup().await;
}

#[tokio::test]
async fn only_owners_and_admins_change_files_and_viewers_only_read() {
    let app = TestApp::spawn().await;
    let owner = app.new_user_token(Role::Engineer);
    let other = app.new_user_token(Role::Engineer);
    let viewer = app.new_user_token(Role::Viewer);
    let admin = app.new_user_token(Role::Admin);
    let decl = json!({"name": "a.stl", "size": 10, "content_type": "model/stl"});
    let resp = app
        .send_json(Method::POST, &viewer, "/api/files", &decl)
        .await;
    assert_eq!(resp.status(), 403);
    let file = create(&app, &owner, decl.clone()).await;
    let id = file["id"].as_str().unwrap();
    let path = format!("/api/files/{id}");

    for token in [&other, &viewer] {
        assert_eq!(
            app.send_json(Method::PUT, token, &path, &json!({"tags": ["x"]}))
                .await
                .status(),
            403
        );
        assert_eq!(
            app.http
                .delete(app.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            app.send_json(Method::POST, token, &format!("{path}/complete"), &json!({}))
                .await
                .status(),
            403
        );
        assert_eq!(
            app.send_json(
                Method::POST,
                token,
                &format!("{path}/versions"),
                &json!({"size": 5, "content_type": "model/stl"})
            )
            .await
            .status(),
            403
        );
        assert_eq!(app.get(token, &path).await.status(), 200, "everyone reads");
    }
    let resp = app
        .send_json(Method::PUT, &admin, &path, &json!({"tags": ["admin-edit"]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["tags"], json!(["admin-edit"]));
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_files_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Admin);
    let missing = uuid::Uuid::new_v4();
    for id in [missing.to_string(), "not-a-uuid".to_owned()] {
        let base = format!("/api/files/{id}");
        let checks = [
            app.get(&token, &base).await,
            app.send_json(Method::PUT, &token, &base, &json!({"tags": []}))
                .await,
            app.http
                .delete(app.url(&base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            app.send_json(
                Method::POST,
                &token,
                &format!("{base}/complete"),
                &json!({}),
            )
            .await,
            app.get(&token, &format!("{base}/versions")).await,
            app.send_json(
                Method::POST,
                &token,
                &format!("{base}/versions"),
                &json!({"size": 1, "content_type": "model/stl"}),
            )
            .await,
            app.send_json(
                Method::POST,
                &token,
                &format!("{base}/versions/1/complete"),
                &json!({}),
            )
            .await,
            app.get(&token, &format!("{base}/download")).await,
        ];
        for resp in checks {
            assert_eq!(resp.status(), 404, "{}", resp.url());
            assert_eq!(json_body(resp).await["error"]["code"], "not_found");
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn updates_change_descriptive_fields_and_null_clears() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let file = create(&app, &token, json!({"name": "a.stl", "size": 10, "content_type": "model/stl", "project_name": "P", "description": "d"})).await;
    let path = format!("/api/files/{}", file["id"].as_str().unwrap());
    let resp = app
        .send_json(
            Method::PUT,
            &token,
            &path,
            &json!({"name": "renamed.obj", "tags": ["B", "a"], "project_name": null}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let got = json_body(app.get(&token, &path).await).await;
    assert_eq!(got["original_name"], "renamed.obj");
    assert_eq!(got["tags"], json!(["b", "a"]));
    assert!(got["project_name"].is_null());
    assert_eq!(got["description"], "d", "absent fields are left alone");
    for (body, field) in [
        (json!({"status": "ready"}), "status"),
        (json!({"tags": vec!["x"; 40]}), "tags"),
        (json!({"name": "a.exe"}), "name"),
    ] {
        let resp = app.send_json(Method::PUT, &token, &path, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(json_body(resp).await["error"]["field"], field);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn delete_removes_the_row_and_every_object() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let bytes = cube_bytes();
    let session = create(
        &app,
        &token,
        json!({"name": "c.stl", "size": bytes.len(), "content_type": "model/stl"}),
    )
    .await;
    upload(&app, &session, bytes.clone()).await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        app.send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({})
        )
        .await
        .status(),
        202
    );
    // A second version, uploaded too.
    let v2 = json_body(
        app.send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/versions"),
            &json!({"size": 3, "content_type": "model/stl"}),
        )
        .await,
    )
    .await;
    upload(&app, &v2, vec![1, 2, 3]).await;
    let keys = [
        session["s3_key"].as_str().unwrap(),
        v2["s3_key"].as_str().unwrap(),
    ];
    for key in keys {
        assert!(app.services.store.head(key).await.unwrap().is_some());
    }
    let resp = app
        .http
        .delete(app.url(&format!("/api/files/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for key in keys {
        assert!(
            app.services.store.head(key).await.unwrap().is_none(),
            "{key} still in S3"
        );
    }
    assert_eq!(
        app.get(&token, &format!("/api/files/{id}")).await.status(),
        404
    );
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM cad_file_versions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(versions, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_new_version_is_a_new_presigned_upload() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    let bytes = cube_bytes();
    let session = create(
        &app,
        &token,
        json!({"name": "c.stl", "size": bytes.len(), "content_type": "model/stl"}),
    )
    .await;
    let id = session["id"].as_str().unwrap();
    upload(&app, &session, bytes.clone()).await;
    assert_eq!(
        app.send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/complete"),
            &json!({})
        )
        .await
        .status(),
        202
    );
    receive_jobs(&app).await;

    let resp = app
        .send_json(Method::POST, &token, &format!("/api/files/{id}/versions"), &json!({"name": "c-v2.stl", "size": 84, "content_type": "model/stl", "change_note": "thicker"}))
        .await;
    assert_eq!(resp.status(), 201);
    let v2 = json_body(resp).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["status"], "uploading");
    assert_ne!(v2["s3_key"], session["s3_key"]);
    assert!(v2["upload"]["url"].as_str().unwrap().contains("v2"));

    // Until version 2 is complete, version 1 stays current.
    let file = json_body(app.get(&token, &format!("/api/files/{id}")).await).await;
    assert_eq!(file["current_version"], 1);
    let mut stl = vec![0u8; 84];
    stl[..5].copy_from_slice(b"solid");
    upload(&app, &v2, stl.clone()).await;
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/versions/2/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let done = json_body(resp).await;
    assert_eq!(done["file"]["current_version"], 2);
    assert_eq!(done["file"]["file_size"], 84);
    assert_eq!(done["file"]["original_name"], "c-v2.stl");
    let jobs = receive_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["payload"]["version"], 2);

    let versions = json_body(app.get(&token, &format!("/api/files/{id}/versions")).await).await;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    assert_eq!(versions[0]["change_note"], "thicker");

    let old = json_body(
        app.get(&token, &format!("/api/files/{id}/download?version=1"))
            .await,
    )
    .await;
    let got = app
        .http
        .get(old["download"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    let resp = app
        .get(&token, &format!("/api/files/{id}/download?version=9"))
        .await;
    assert_eq!(resp.status(), 404);
    let resp = app
        .send_json(
            Method::POST,
            &token,
            &format!("/api/files/{id}/versions"),
            &json!({"size": 104857601, "content_type": "model/stl"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    app.cleanup().await;
}

/// Sets creation times so date filters and orders are deterministic.
async fn backdate(app: &TestApp, id: &str, iso: &str) {
    sqlx::query("UPDATE cad_files SET created_at = $2::timestamptz WHERE id = $1::uuid")
        .bind(id)
        .bind(iso)
        .execute(&app.pool)
        .await
        .unwrap();
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["original_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    let alice = app.new_user_token(Role::Engineer);
    let bob = app.new_user_token(Role::Engineer);
    let bob_id = json_body(app.get(&bob, "/api/users/me").await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let specs = [
        (
            &alice,
            "bracket.stl",
            100,
            "model/stl",
            json!(["steel", "bracket"]),
            "Rover",
            "Arm",
            "2024-01-01T00:00:00Z",
        ),
        (
            &alice,
            "wheel.step",
            5000,
            "application/step",
            json!(["aluminium"]),
            "Rover",
            "Wheel",
            "2024-02-01T00:00:00Z",
        ),
        (
            &bob,
            "Axle.obj",
            300,
            "model/obj",
            json!(["steel"]),
            "Rover",
            "Wheel",
            "2024-03-01T00:00:00Z",
        ),
        (
            &bob,
            "gear.dxf",
            42,
            "image/vnd.dxf",
            json!(["steel", "gear"]),
            "Clock",
            "Gear",
            "2024-04-01T00:00:00Z",
        ),
        (
            &alice,
            "case.3mf",
            9000,
            "model/3mf",
            json!([]),
            "Clock",
            "Case",
            "2024-05-01T00:00:00Z",
        ),
    ];
    for (token, name, size, ct, tags, project, part, at) in specs {
        let f = create(&app, token, json!({"name": name, "size": size, "content_type": ct, "tags": tags, "project_name": project, "part_name": part})).await;
        backdate(&app, f["id"].as_str().unwrap(), at).await;
    }
    let list = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        let alice = &alice;
        async move {
            let resp = app.get(alice, &format!("/api/files?{q}")).await;
            assert_eq!(resp.status(), 200, "{q}");
            json_body(resp).await
        }
    };
    assert_eq!(
        names(&list("").await),
        [
            "case.3mf",
            "gear.dxf",
            "Axle.obj",
            "wheel.step",
            "bracket.stl"
        ]
    );
    assert_eq!(
        names(&list("tags=steel,gear").await),
        ["gear.dxf", "Axle.obj", "bracket.stl"]
    );
    assert_eq!(
        names(&list("tags=steel,gear&tags_mode=all").await),
        ["gear.dxf"]
    );
    assert_eq!(
        names(&list("project=Rover&part=Wheel").await),
        ["Axle.obj", "wheel.step"]
    );
    assert_eq!(
        names(&list(&format!("uploaded_by={bob_id}")).await),
        ["gear.dxf", "Axle.obj"]
    );
    assert_eq!(
        names(&list("uploaded_by=me").await),
        ["case.3mf", "wheel.step", "bracket.stl"]
    );
    assert_eq!(
        names(&list("created_from=2024-02-01T00:00:00Z&created_to=2024-04-01T00:00:00Z").await),
        ["Axle.obj", "wheel.step"]
    );
    assert_eq!(
        names(&list("min_size=100&max_size=5000").await),
        ["Axle.obj", "wheel.step", "bracket.stl"]
    );
    assert_eq!(names(&list("content_type=model/obj").await), ["Axle.obj"]);
    assert_eq!(
        names(&list("status=uploading&sort=name").await),
        [
            "Axle.obj",
            "bracket.stl",
            "case.3mf",
            "gear.dxf",
            "wheel.step"
        ]
    );
    assert_eq!(
        names(&list("sort=size&order=desc").await),
        [
            "case.3mf",
            "wheel.step",
            "Axle.obj",
            "bracket.stl",
            "gear.dxf"
        ]
    );
    assert_eq!(
        names(&list("sort=created_at&order=asc").await),
        [
            "bracket.stl",
            "wheel.step",
            "Axle.obj",
            "gear.dxf",
            "case.3mf"
        ]
    );

    // Keyset pages in every order visit every file exactly once.
    for order in [
        "sort=created_at",
        "sort=name",
        "sort=size&order=desc",
        "sort=name&order=desc",
    ] {
        let full = names(&list(order).await);
        let mut paged = Vec::new();
        let mut q = format!("{order}&limit=2");
        loop {
            let page = list(&q).await;
            paged.extend(names(&page));
            match page["next_cursor"].as_str() {
                Some(c) => q = format!("{order}&limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(paged, full, "{order}");
    }

    let page = list("sort=name&limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    for (q, field) in [
        (format!("sort=size&cursor={cursor}"), "cursor"),
        ("sort=colour".to_owned(), "sort"),
        ("uploaded_by=someone".to_owned(), "uploaded_by"),
        ("created_from=yesterday".to_owned(), "created_from"),
        ("min_size=10&max_size=1".to_owned(), "max_size"),
        ("status=lost".to_owned(), "status"),
        ("limit=1000".to_owned(), "limit"),
        ("colour=red".to_owned(), "colour"),
    ] {
        let resp = app.get(&alice, &format!("/api/files?{q}")).await;
        assert_eq!(resp.status(), 400, "{q}");
        assert_eq!(json_body(resp).await["error"]["field"], field, "{q}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn static_segments_are_not_shadowed_by_id_routes() {
    let app = TestApp::spawn().await;
    let token = app.new_user_token(Role::Engineer);
    // /api/users/me must reach the "me" handler, not GET /api/users/{id} with id "me" (which would 404).
    assert_eq!(app.get(&token, "/api/users/me").await.status(), 200);
    let f = create(
        &app,
        &token,
        json!({"name": "a.stl", "size": 10, "content_type": "model/stl"}),
    )
    .await;
    let id = f["id"].as_str().unwrap();
    // /api/files/{id}/versions is its own route, and GET /api/files lists rather than 404s.
    assert_eq!(
        app.get(&token, &format!("/api/files/{id}/versions"))
            .await
            .status(),
        200
    );
    assert_eq!(app.get(&token, "/api/files").await.status(), 200);
    app.cleanup().await;
}
