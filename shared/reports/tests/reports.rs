//! Reports against real PostgreSQL and moto (`make services`): a job run through the worker
//! runtime writes CSV/JSON to S3, its presigned links download, the result is recorded on the
//! job, and the ready notification is enqueued; POST /api/reports validation.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use axum::http::StatusCode;
use jobs::idempotency::{IdempotencyStore, create_idempotency_table};
use jobs::local_source::{QueueSetup, create_queues};
use jobs::runtime::Outcome;
use jobs::tracking::create_tracking_table;
use jobs::{
    Clients, DynamoJobStore, Job, JobStatus, JobTracking, JobType, Producer, QueueDirectory,
    QueueName, Worker, WorkerConfig,
};
use notifications::{Notifier, SendNotification};
use reports::{
    DateRange, GenerateReport, ReportFormat, ReportKind, ReportsConfig, ReportsError,
    ReportsHandler, ReportsState,
};
use response_pipeline::Invalidator;
use serde_json::{Value, json};
use storage::ObjectStore;
use support::{TestDb, aws, call};
use uuid::Uuid;

struct Env {
    db: TestDb,
    clients: Clients,
    dir: QueueDirectory,
    tracking: JobTracking,
    store: Arc<DynamoJobStore>,
    bucket: String,
}

impl Env {
    async fn new() -> Env {
        let db = TestDb::new().await;
        let clients = Clients::new(&aws().await);
        let tag = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let bucket = format!("rtest-{tag}");
        clients
            .s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket (is moto running?)");
        let dir = create_queues(
            &clients.sqs,
            &format!("rtest-{tag}-"),
            &QueueSetup::default(),
        )
        .await
        .expect("queues");
        let jobs_table = format!("rtest-{tag}-jobs");
        let idem_table = format!("rtest-{tag}-idem");
        create_tracking_table(&clients.dynamodb, &jobs_table)
            .await
            .unwrap();
        create_idempotency_table(&clients.dynamodb, &idem_table)
            .await
            .unwrap();
        let ttl = Duration::from_secs(86_400);
        let tracking = JobTracking::new(clients.dynamodb.clone(), jobs_table, ttl);
        let store = Arc::new(DynamoJobStore {
            idempotency: IdempotencyStore::new(clients.dynamodb.clone(), idem_table, ttl),
            tracking: tracking.clone(),
        });
        Env {
            db,
            clients,
            dir,
            tracking,
            store,
            bucket,
        }
    }

    fn producer(&self) -> Producer {
        Producer::new(&self.clients, self.dir.clone(), self.tracking.clone())
    }

    fn handler(&self) -> ReportsHandler {
        ReportsHandler::new(
            self.db.pool.clone(),
            ObjectStore::new(self.clients.s3.clone(), self.bucket.clone()),
            Some(Notifier::new(self.producer())),
            ReportsConfig {
                bucket: self.bucket.clone(),
                link_ttl: Duration::from_secs(3600),
            },
        )
    }

    /// Runs one job through the worker runtime, as Lambda would deliver it.
    async fn run(&self, job: &Job) -> Outcome {
        let worker = Worker::new(
            WorkerConfig::new(
                QueueName::Reports,
                self.dir.get(QueueName::Reports).unwrap().clone(),
            ),
            &self.clients,
            self.store.clone(),
            self.handler(),
        );
        let mut m = SqsMessage::default();
        m.message_id = Some(Uuid::new_v4().to_string());
        m.receipt_handle = Some("rh".into());
        m.body = Some(job.to_json().unwrap());
        m.attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        worker.process(m, None).await
    }

    /// Jobs waiting in a queue.
    async fn queued(&self, q: QueueName) -> Vec<Job> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.dir.get(q).unwrap().url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .map(|m| Job::from_json(m.body().unwrap()).unwrap())
            .collect()
    }
}

async fn file(db: &TestDb, owner: Uuid, project: Option<&str>, size: i64, at: &str) {
    sqlx::query(
        "INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, project_name, created_at) \
         VALUES ($1, 'f.step', 'f.step', $2, 'model/step', 'k', 'ready', $3, $4::timestamptz)",
    )
    .bind(owner)
    .bind(size)
    .bind(project)
    .bind(at)
    .execute(&db.pool)
    .await
    .unwrap();
}

fn report_job(kind: ReportKind, format: ReportFormat, user: Uuid) -> Job {
    let payload = GenerateReport {
        kind,
        format,
        range: DateRange {
            from: "2026-01-10".parse().unwrap(),
            to: "2026-01-12".parse().unwrap(),
        },
        requested_by: user,
    };
    Job::new(
        JobType::GenerateReport,
        serde_json::to_value(payload).unwrap(),
    )
    .with_user(user)
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn usage_report_job_writes_csv_and_json_links_download_and_notifies() {
    let env = Env::new().await;
    let (admin, _) = env.db.user("admin").await;
    let (eng, _) = env.db.user("engineer").await;
    let eng_name: String = sqlx::query_scalar("SELECT username FROM users WHERE id = $1")
        .bind(eng)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    let admin_name: String = sqlx::query_scalar("SELECT username FROM users WHERE id = $1")
        .bind(admin)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    file(&env.db, eng, Some("Alpha"), 100, "2026-01-10T08:00:00Z").await;
    file(&env.db, eng, Some("Alpha"), 200, "2026-01-10T23:59:59Z").await;
    file(&env.db, eng, None, 50, "2026-01-11T00:00:00Z").await;
    file(
        &env.db,
        eng,
        Some("Beta, \"the sequel\""),
        10,
        "2026-01-11T12:00:00Z",
    )
    .await;
    file(&env.db, admin, Some("Alpha"), 1000, "2026-01-10T12:00:00Z").await;
    file(&env.db, admin, Some("Alpha"), 7777, "2026-01-13T00:00:00Z").await; // after the range
    file(&env.db, eng, Some("Alpha"), 8888, "2026-01-09T23:59:59Z").await; // before it

    let job = report_job(ReportKind::Usage, ReportFormat::Both, admin);
    assert_eq!(env.run(&job).await, Outcome::Succeeded);

    // The result reference is recorded on the job.
    let record = env.tracking.get(job.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    let result = record.result.expect("result recorded");
    let files = result["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "two CSV tables and one JSON: {result}");
    assert_eq!(files[0]["key"], format!("reports/{admin}/{}.csv", job.id));
    assert_eq!(
        files[1]["key"],
        format!("reports/{admin}/{}.daily_uploads.csv", job.id)
    );
    assert_eq!(files[2]["key"], format!("reports/{admin}/{}.json", job.id));
    assert_eq!(result["url"], files[0]["url"]);

    // The presigned link downloads the CSV with the expected rows (a plain HTTP client).
    let http = reqwest::Client::new();
    let res = http
        .get(files[0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("user_id,username,project,files,bytes\r\n"),
        "{text}"
    );
    assert_eq!(
        csv_rows(&text),
        vec![
            vec![
                admin.to_string(),
                admin_name.clone(),
                "Alpha".into(),
                "1".into(),
                "1000".into()
            ],
            vec![
                eng.to_string(),
                eng_name.clone(),
                "Alpha".into(),
                "2".into(),
                "300".into()
            ],
            vec![
                eng.to_string(),
                eng_name.clone(),
                String::new(),
                "1".into(),
                "50".into()
            ],
            vec![
                eng.to_string(),
                eng_name.clone(),
                "Beta, \"the sequel\"".into(),
                "1".into(),
                "10".into()
            ],
        ]
    );
    let daily = http
        .get(files[1]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&daily),
        vec![
            vec!["2026-01-10", "3", "1300", "2"],
            vec!["2026-01-11", "2", "60", "1"],
            vec!["2026-01-12", "0", "0", "0"],
        ]
    );
    let json_res = http
        .get(files[2]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(json_res.headers()["content-type"], "application/json");
    let doc: Value = json_res.json().await.unwrap();
    assert_eq!(doc["report"], "usage");
    assert_eq!(doc["scope"], "all");
    assert_eq!(
        doc["range"],
        json!({"from": "2026-01-10", "to": "2026-01-12"})
    );
    assert_eq!(
        doc["tables"]["by_user_project"]["rows"][2],
        json!({
            "user_id": eng, "username": eng_name, "project": null, "files": 1, "bytes": 50
        })
    );
    assert_eq!(
        doc["tables"]["daily_uploads"]["rows"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The ready notification was enqueued with the link; delivering it creates the in-app row.
    let queued = env.queued(QueueName::Notifications).await;
    assert_eq!(queued.len(), 1);
    let n: SendNotification = queued[0].payload_as().unwrap();
    assert_eq!(n.user_id, admin);
    assert_eq!(n.kind, "report.ready");
    assert_eq!(n.data["url"], result["url"]);
    assert_eq!(n.data["job_id"], job.id.to_string());
    assert_eq!(
        Some(queued[0].id),
        result["notification_job_id"]
            .as_str()
            .map(|s| s.parse().unwrap())
    );
    let delivered = notifications::NotificationsHandler::new(
        env.db.pool.clone(),
        reqwest::Client::new(),
        aws_sdk_sesv2::Client::new(&aws().await),
        &Default::default(),
    )
    .deliver(&queued[0])
    .await
    .unwrap();
    assert_eq!(delivered.in_app_inserted, Some(true));
    let stored = notifications::repo::list(&env.db.pool, admin, true, None, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].data["url"], result["url"]);

    // An engineer's usage report covers only their own files.
    let own = report_job(ReportKind::Usage, ReportFormat::Csv, eng);
    let outcome = env.handler().generate(&own, None).await.unwrap();
    let text = http
        .get(&outcome.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r[0] == eng.to_string()));
    assert_eq!(outcome.files.len(), 2);
    env.db.drop_db().await;
}

#[tokio::test]
async fn audit_and_performance_reports() {
    let env = Env::new().await;
    let (admin, _) = env.db.user("admin").await;
    let (eng, _) = env.db.user("engineer").await;
    for (action, at, details) in [
        (
            "file.create",
            "2026-01-10T01:00:00Z",
            json!({"name": "=cmd|' /C calc'!A0"}),
        ),
        (
            "user.update",
            "2026-01-12T23:00:00Z",
            json!({"role": ["viewer", "engineer"]}),
        ),
        ("file.delete", "2026-01-13T00:00:01Z", json!({})),
    ] {
        sqlx::query("INSERT INTO audit_logs (user_id, action, resource_type, resource_id, details, created_at) VALUES ($1, $2, 'x', 'r1', $3, $4::timestamptz)")
            .bind(admin).bind(action).bind(details).bind(at)
            .execute(&env.db.pool).await.unwrap();
    }
    // Engineers are refused at generation too (permanent failure, straight to the DLQ).
    let refused = env
        .handler()
        .generate(&report_job(ReportKind::Audit, ReportFormat::Csv, eng), None)
        .await
        .unwrap_err();
    assert!(matches!(refused, ReportsError::Forbidden(_)), "{refused}");
    assert!(!jobs::JobError::from(refused).is_retryable());
    let denied = report_job(ReportKind::Audit, ReportFormat::Csv, eng);
    assert_eq!(env.run(&denied).await, Outcome::DeadLettered);

    let out = env
        .handler()
        .generate(
            &report_job(ReportKind::Audit, ReportFormat::Csv, admin),
            None,
        )
        .await
        .unwrap();
    let text = reqwest::get(&out.url).await.unwrap().text().await.unwrap();
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 2, "the row after the range is left out: {text}");
    assert_eq!(rows[0][4], "file.create");
    assert_eq!(rows[0][8], r#"{"name":"=cmd|' /C calc'!A0"}"#);
    assert_eq!(rows[1][4], "user.update");
    assert_eq!(rows[1][8], r#"{"role":["viewer","engineer"]}"#);

    // Performance: processing outcomes and failures (DB-derived).
    sqlx::query(
        "INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, processing_error, created_at) \
         VALUES ($1, 'a', '=bad.step', 10, 'm', 'k', 'failed', 'parse error, line 3', '2026-01-11T00:00:00Z'), \
                ($1, 'b', 'ok.step', 30, 'm', 'k', 'ready', NULL, '2026-01-11T00:00:00Z')",
    )
    .bind(eng)
    .execute(&env.db.pool)
    .await
    .unwrap();
    let perf = env
        .handler()
        .generate(
            &report_job(ReportKind::Performance, ReportFormat::Json, admin),
            None,
        )
        .await
        .unwrap();
    assert_eq!(perf.files.len(), 1);
    let doc: Value = reqwest::get(&perf.url).await.unwrap().json().await.unwrap();
    assert_eq!(
        doc["tables"]["files_by_status"]["rows"],
        json!([
            {"status": "uploading", "files": 0, "bytes": 0, "share_pct": 0.0},
            {"status": "processing", "files": 0, "bytes": 0, "share_pct": 0.0},
            {"status": "ready", "files": 1, "bytes": 30, "share_pct": 50.0},
            {"status": "failed", "files": 1, "bytes": 10, "share_pct": 50.0},
        ])
    );
    assert_eq!(doc["tables"]["search_latency"]["rows"][0]["queries"], 0);
    let failures = &doc["tables"]["processing_failures"]["rows"];
    assert_eq!(failures.as_array().unwrap().len(), 1);
    assert_eq!(failures[0]["error"], "parse error, line 3");
    env.db.drop_db().await;
}

#[tokio::test]
async fn post_reports_validates_and_enqueues() {
    let env = Env::new().await;
    let app = reports::router(ReportsState {
        pool: env.db.pool.clone(),
        invalidator: Invalidator::new(None),
        producer: env.producer(),
    });
    let eng = format!("eng-{}", Uuid::new_v4());
    let admin = format!("adm-{}", Uuid::new_v4());
    let today = chrono::Utc::now().date_naive();
    let future = (today + chrono::Days::new(5)).to_string();
    let cases = [
        (json!({}), "kind"),
        (json!({"kind": "sales"}), "kind"),
        (json!({"kind": "usage", "format": "xml"}), "format"),
        (json!({"kind": "usage", "from": "2026-13-01"}), "from"),
        (
            json!({"kind": "usage", "from": "2026-02-10", "to": "2026-02-01"}),
            "from",
        ),
        (json!({"kind": "usage", "to": future}), "to"),
        (
            json!({"kind": "usage", "from": "2020-01-01", "to": "2022-01-01"}),
            "from",
        ),
        (json!({"kind": "usage", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            &app,
            "POST",
            "/api/reports",
            &eng,
            "engineer",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = call(
        &app,
        "POST",
        "/api/reports",
        &eng,
        "engineer",
        Some(json!({"kind": "audit"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        env.queued(QueueName::Reports).await.is_empty(),
        "nothing enqueued for refused requests"
    );

    let (status, answer) = call(
        &app,
        "POST",
        "/api/reports",
        &admin,
        "admin",
        Some(json!({"kind": "audit", "format": "both", "from": "2026-01-01", "to": "2026-01-31"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, usage) = call(
        &app,
        "POST",
        "/api/reports",
        &eng,
        "engineer",
        Some(json!({"kind": "usage"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{usage}");
    assert_eq!(usage["format"], "csv");
    assert_eq!(usage["range"]["to"], today.to_string());
    assert_eq!(
        usage["range"]["from"],
        (today - chrono::Days::new(29)).to_string()
    );

    let mut queued = env.queued(QueueName::Reports).await;
    queued.extend(env.queued(QueueName::Reports).await);
    assert_eq!(queued.len(), 2);
    let audit = queued
        .iter()
        .find(|j| j.id.to_string() == answer["job_id"])
        .expect("audit job queued");
    let p: GenerateReport = audit.payload_as().unwrap();
    assert_eq!((p.kind, p.format), (ReportKind::Audit, ReportFormat::Both));
    assert_eq!(p.range.from.to_string(), "2026-01-01");
    assert_eq!(Some(p.requested_by), audit.user_id);
    assert_eq!(answer["status_url"], format!("/api/jobs/{}", audit.id));
    env.db.drop_db().await;
}
