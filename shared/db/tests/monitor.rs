//! The query monitor against the real PostgreSQL: statistics from sqlx's own events, slow
//! statements explained (never executed twice), recommendations, pool and acquire statistics.

mod support;

use std::time::{Duration, Instant};

use db::Db;
use db::perf::{PgStatStatements, PlanMethod, QueryMonitor, RecommendationKind, SlowQuery};
use sqlx::{AssertSqlSafe, Row};
use support::{TestDb, big_table, config, observe};

fn contains_key(v: &serde_json::Value, key: &str) -> bool {
    match v {
        serde_json::Value::Object(m) => {
            m.contains_key(key) || m.values().any(|x| contains_key(x, key))
        }
        serde_json::Value::Array(a) => a.iter().any(|x| contains_key(x, key)),
        _ => false,
    }
}

fn only_slow(m: &QueryMonitor, needle: &str) -> SlowQuery {
    let matching: Vec<SlowQuery> = m
        .slow_queries()
        .into_iter()
        .filter(|s| s.fingerprint.contains(needle))
        .collect();
    assert_eq!(matching.len(), 1, "slow log for {needle}: {matching:#?}");
    matching.into_iter().next().unwrap()
}

#[tokio::test]
async fn different_literal_values_aggregate_under_one_fingerprint() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g")
        .execute(&pool)
        .await
        .unwrap();
    let monitor = QueryMonitor::new(config());
    let (_guard, _) = observe(&monitor);

    for id in 1..=5 {
        // Literal values inlined in the text …
        let sql = format!("SELECT name FROM items WHERE id = {id}");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
    }
    for id in [7, 8, 9] {
        // … and bound parameters, differently spelt: one statement.
        sqlx::query("select  NAME from ITEMS\n where id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    }
    sqlx::query("SELECT name FROM items WHERE id IN (1, 2, 3, 4)")
        .fetch_all(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT name FROM items WHERE id IN ($1, $2)")
        .bind(1)
        .bind(2)
        .fetch_all(&pool)
        .await
        .unwrap();

    let s = monitor
        .stats_for("select name from items where id = 1")
        .unwrap();
    assert_eq!(s.fingerprint, "select name from items where id = ?");
    assert_eq!(s.calls, 8);
    assert_eq!(s.rows, 8, "one row returned per call");
    assert!(
        s.max_ms >= s.p95_ms && s.p95_ms > 0.0 && s.mean_ms > 0.0,
        "{s:?}"
    );
    let in_list = monitor
        .stats_for("select name from items where id in (1)")
        .unwrap();
    assert_eq!(
        in_list.fingerprint,
        "select name from items where id in (?)"
    );
    assert_eq!((in_list.calls, in_list.rows), (2, 6));
    // One acquire per query (ten since the monitor started), timed by sqlx and seen too.
    assert!(
        monitor.acquire_stats().count >= 10,
        "{:?}",
        monitor.acquire_stats()
    );
    // Nothing here was slow.
    assert!(monitor.slow_queries().is_empty());
}

#[tokio::test]
async fn a_slow_select_is_logged_with_its_plan_and_recommendations() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    big_table(&pool).await;
    let monitor = QueryMonitor::new(config());
    monitor.explain_with(&pool);
    let (_guard, capture) = observe(&monitor);

    // pg_sleep only makes the statement under observation slow; the scan and its
    // misestimate (v % 2 = 0 is estimated at 0.5 % of the rows, it is 50 %) are real.
    let rows = sqlx::query("SELECT id FROM big, pg_sleep(0.15) WHERE v % 2 = 0")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    // With a parameter: explained as the generic plan.
    let rows = sqlx::query("SELECT id FROM big, pg_sleep(0.15) WHERE tag = $1")
        .bind("tag7")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    assert!(
        monitor.settle(Duration::from_secs(10)).await,
        "EXPLAINs finished"
    );

    let literal = only_slow(&monitor, "v % ?");
    assert!(literal.duration_ms >= 150.0);
    assert_eq!(literal.rows_returned, 100_000);
    assert_eq!(literal.plan_status, "explained");
    assert_eq!(literal.plan_method, Some(PlanMethod::Explain));
    let plan = literal.plan.as_ref().expect("plan kept");
    assert!(
        !contains_key(plan, "Actual Total Time"),
        "never EXPLAIN ANALYZE"
    );
    let seq = literal
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::SeqScanLargeTable)
        .expect("seq scan flagged");
    assert_eq!(seq.relation.as_deref(), Some("big"));
    assert_eq!(seq.table_rows, Some(200_000.0));
    assert!(
        seq.suggestion.starts_with("add an index on big (v)"),
        "{}",
        seq.suggestion
    );
    let mis = literal
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::RowMisestimate)
        .expect("misestimate flagged");
    assert_eq!(mis.actual_rows, Some(100_000));
    assert!(mis.factor.unwrap() >= 10.0, "{mis:?}");
    assert!(mis.suggestion.contains("ANALYZE on big"));

    let generic = only_slow(&monitor, "tag = ?");
    assert_eq!(generic.plan_method, Some(PlanMethod::GenericPlan));
    assert_eq!(generic.plan_status, "explained");
    let plan = generic.plan.as_ref().unwrap();
    assert!(
        plan.to_string().contains("Seq Scan"),
        "the generic plan is a real plan, not a NULL-folded Result: {plan}"
    );
    let seq = generic
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::SeqScanLargeTable)
        .expect("seq scan flagged on the generic plan");
    assert!(
        seq.suggestion.starts_with("add an index on big (tag)"),
        "{}",
        seq.suggestion
    );

    // Each slow statement was logged once, as a warning carrying fingerprint, numbers and plan.
    let logged = capture.take();
    assert_eq!(logged.len(), 2, "{logged:#?}");
    for e in &logged {
        assert_eq!(e["level"], "WARN");
        assert!(e.contains_key("fingerprint_id") && e.contains_key("duration_ms"));
        assert!(e["plan"].contains("Seq Scan"), "{e:?}");
        assert!(e["recommendations"].contains("add an index on big"));
    }
    // The statistics count them as slow calls too.
    let s = monitor
        .stats_for("SELECT id FROM big, pg_sleep(0.15) WHERE tag = 'x'")
        .unwrap();
    assert_eq!((s.calls, s.slow_calls), (1, 1));
}

#[tokio::test]
async fn a_sort_that_does_not_fit_in_work_mem_is_flagged() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    big_table(&pool).await;
    let monitor = QueryMonitor::new(config());
    monitor.explain_with(&pool);
    let (_guard, _) = observe(&monitor);

    sqlx::query("SELECT id, pad FROM big, pg_sleep(0.12) ORDER BY pad")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(monitor.settle(Duration::from_secs(10)).await);
    let slow = only_slow(&monitor, "order by pad");
    let sort = slow
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::SortSpill)
        .unwrap_or_else(|| panic!("sort spill flagged: {slow:#?}"));
    let work_mem: String = sqlx::query_scalar("SHOW work_mem")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        sort.work_mem_bytes,
        db::perf::plan::parse_memory_setting(&work_mem)
    );
    assert!(sort.estimated_bytes.unwrap() > sort.work_mem_bytes.unwrap() as f64);
    assert!(sort.suggestion.contains("raise work_mem"));
}

#[tokio::test]
async fn slow_writes_are_explained_without_analyze_and_run_once() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    sqlx::query("CREATE TABLE w (id int PRIMARY KEY, v int NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO w VALUES (1, 10)")
        .execute(&pool)
        .await
        .unwrap();
    let monitor = QueryMonitor::new(config());
    monitor.explain_with(&pool);
    let (_guard, _) = observe(&monitor);

    // A slow INSERT without parameters (plain EXPLAIN) …
    sqlx::query("INSERT INTO w (id, v) SELECT 2, 20 FROM pg_sleep(0.15)")
        .execute(&pool)
        .await
        .unwrap();
    // … one with parameters (PREPARE + EXPLAIN EXECUTE, generic plan) …
    sqlx::query("INSERT INTO w (v, id) SELECT $1, $2 FROM pg_sleep(0.15)")
        .bind(30)
        .bind(3)
        .execute(&pool)
        .await
        .unwrap();
    // … and a slow UPDATE that would show a second run in its result.
    sqlx::query("UPDATE w SET v = v + 1 FROM pg_sleep(0.15) WHERE id = $1")
        .bind(1)
        .execute(&pool)
        .await
        .unwrap();
    assert!(monitor.settle(Duration::from_secs(10)).await);

    let rows: Vec<(i32, i32)> = sqlx::query_as("SELECT id, v FROM w ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![(1, 11), (2, 20), (3, 30)],
        "every write ran exactly once"
    );

    let plain = only_slow(&monitor, "w(id, v)");
    assert_eq!(plain.plan_method, Some(PlanMethod::Explain));
    assert_eq!(plain.rows_affected, 1);
    let prepared = only_slow(&monitor, "w(v, id)");
    assert_eq!(prepared.plan_method, Some(PlanMethod::GenericPlan));
    let update = only_slow(&monitor, "update w");
    assert_eq!(update.rows_affected, 1);
    for s in [&plain, &prepared, &update] {
        assert_eq!(s.plan_status, "explained", "{s:#?}");
        let plan = s.plan.as_ref().unwrap();
        assert_eq!(plan[0]["Plan"]["Node Type"], "ModifyTable");
        assert!(!contains_key(plan, "Actual Rows"), "never EXPLAIN ANALYZE");
    }
    assert_eq!(update.plan_method, Some(PlanMethod::GenericPlan));
}

#[tokio::test]
async fn one_explain_per_fingerprint_per_interval() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    sqlx::query("CREATE TABLE w (id int)")
        .execute(&pool)
        .await
        .unwrap();
    let monitor = QueryMonitor::new(config());
    monitor.explain_with(&pool);
    let (_guard, capture) = observe(&monitor);

    for i in 0..3 {
        sqlx::query("SELECT count(*) FROM w, pg_sleep(0.11) WHERE id = $1")
            .bind(i)
            .fetch_one(&pool)
            .await
            .unwrap();
        // Let the first EXPLAIN finish so the later ones can reuse its plan.
        assert!(monitor.settle(Duration::from_secs(10)).await);
    }
    let slow = monitor.slow_queries();
    assert_eq!(slow.len(), 3);
    let explained: Vec<_> = slow
        .iter()
        .filter(|s| s.plan_status == "explained")
        .collect();
    assert_eq!(explained.len(), 1, "{slow:#?}");
    let reused: Vec<_> = slow
        .iter()
        .filter(|s| s.plan_status.starts_with("reused"))
        .collect();
    assert_eq!(reused.len(), 2);
    for r in reused {
        assert!(r.plan.is_some());
        assert_eq!(r.plan_explained_at, explained[0].plan_explained_at);
    }
    assert_eq!(capture.take().len(), 3, "every slow statement is logged");
}

#[tokio::test]
async fn pool_statistics_and_acquire_waits() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    let monitor = QueryMonitor::new(config());
    let (_guard, _) = observe(&monitor);
    let db = Db::new(pool.clone());

    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let stats = db.pool_stats();
    assert_eq!(stats.writer.size, 2);
    assert_eq!(stats.writer.in_use, 2);
    assert_eq!(stats.writer.idle, 0);
    assert_eq!(stats.writer.max_connections, 2);
    assert!(stats.reader.is_none());

    // A third acquire has to wait until a connection comes back: that wait is measured.
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // the contention being measured
    drop(a);
    waiter.await.unwrap().unwrap();
    let acquire = monitor.acquire_stats();
    assert_eq!(acquire.count, 3, "{acquire:?}");
    assert!(acquire.max_ms >= 190.0, "{acquire:?}");
    assert!(acquire.p95_ms <= acquire.max_ms);

    drop(b);
    // A dropped connection goes back to the pool in a background task: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.pool_stats().writer.idle < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = db.pool_stats();
    assert_eq!(stats.writer.size, 2);
    assert_eq!(stats.writer.in_use, 0);
    assert_eq!(stats.writer.idle, 2);
}

#[tokio::test]
async fn the_report_gathers_every_section() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    big_table(&pool).await;
    let monitor = QueryMonitor::new(config());
    monitor.explain_with(&pool);
    let (_guard, _) = observe(&monitor);
    for v in 1..=3 {
        sqlx::query("SELECT id FROM big WHERE id = $1")
            .bind(v as i64)
            .fetch_optional(&pool)
            .await
            .unwrap();
    }
    sqlx::query("SELECT count(*) FROM big, pg_sleep(0.12) WHERE tag = 'tag1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(monitor.settle(Duration::from_secs(10)).await);

    let report = monitor.report(&Db::new(pool.clone()), 5).await;
    let json = serde_json::to_value(&report).unwrap();
    assert!(report.statements_observed >= 4);
    assert!(report.top_statements.len() <= 5);
    assert!(
        report.top_statements[0].fingerprint.contains("pg_sleep"),
        "busiest first: {:#?}",
        report.top_statements
    );
    assert_eq!(json["slow_threshold_ms"], 100.0);
    assert_eq!(json["slow_queries"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["slow_queries"][0]["recommendations"][0]["kind"],
        "seq_scan_large_table"
    );
    assert!(json["pools"]["writer"]["max_connections"] == 2);
    assert!(json["pools"]["acquire"]["count"].as_u64().unwrap() >= 4);
    // This server does not preload pg_stat_statements.
    match &report.pg_stat_statements {
        PgStatStatements::NotAvailable { reason } => {
            assert!(reason.contains("shared_preload_libraries"), "{reason}")
        }
        other => panic!("expected not available here: {other:?}"),
    }
    assert_eq!(json["pg_stat_statements"]["status"], "not_available");
    let one = sqlx::query("SELECT 1 AS one")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one.get::<i32, _>("one"), 1);
}
