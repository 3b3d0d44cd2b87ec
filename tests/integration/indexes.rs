//! Every index the guide names exists under that name, and PostgreSQL picks it for the query
//! pattern it exists for once the tables hold realistic volumes.

use integration_tests::fresh_database;
use sqlx::PgPool;

/// The guide's "Database Indexes" section.
const GUIDE_INDEXES: &[&str] = &[
    "idx_users_email_active",
    "idx_users_role_active",
    "idx_users_last_login",
    "idx_cad_files_uploaded_by_date",
    "idx_cad_files_tags",
    "idx_cad_files_metadata",
    "idx_cad_files_search_composite",
    "idx_search_queries_user_timestamp",
    "idx_search_queries_query_text",
    "idx_search_results_query_relevance",
];

async fn fill(pool: &PgPool) {
    // Temporary tables live on one connection, so the whole fill uses one.
    let mut conn = pool.acquire().await.expect("connection");
    let statements = [
        "INSERT INTO users (cognito_sub, email, username, role, is_active, last_login_at, created_at) \
         SELECT 'sub-' || i, 'User' || i || '@Example.com', 'user' || i, \
                CASE WHEN i % 200 = 0 THEN 'admin' WHEN i % 3 = 0 THEN 'viewer' ELSE 'engineer' END, \
                i % 10 <> 0, now() - i * interval '1 minute', now() - i * interval '1 hour' \
         FROM generate_series(1, 20000) i",
        "CREATE TEMP TABLE uid AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM users",
        "INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, \
                                tags, project_name, part_name, metadata, created_at) \
         SELECT u.id, 'f' || i || '.stl', 'f' || i || '.stl', 1000 + i, 'model/stl', 'k/' || i, 'ready', \
                ARRAY['tag' || (i % 500), 'common'], 'project-' || (i % 200), 'part-' || (i % 10), \
                jsonb_build_object('format', CASE WHEN i % 1000 = 0 THEN 'step' ELSE 'stl' END, 'triangles', i), \
                now() - i * interval '1 minute' \
         FROM generate_series(1, 60000) i JOIN uid u ON u.n = (i % 2000) + 1",
        "INSERT INTO search_queries (user_id, query_text, created_at) \
         SELECT u.id, CASE WHEN i % 500 = 0 THEN 'planetary gearbox housing' ELSE 'steel bracket ' || (i % 50) END, \
                now() - i * interval '1 minute' \
         FROM generate_series(1, 60000) i JOIN uid u ON u.n = (i % 2000) + 1",
        "CREATE TEMP TABLE qid AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM search_queries",
        "CREATE TEMP TABLE fid AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM cad_files",
        "INSERT INTO search_results (query_id, file_id, relevance_score, rank) \
         SELECT q.id, f.id, (i * 7919 % 1000) / 1000.0, i % 20 \
         FROM generate_series(1, 240000) i JOIN qid q ON q.n = (i % 60000) + 1 JOIN fid f ON f.n = (i % 60000) + 1",
        "ANALYZE",
    ];
    for sql in statements {
        sqlx::query(sql)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// The names of every index the plan uses.
fn indexes_in_plan(plan: &serde_json::Value, out: &mut Vec<String>) {
    match plan {
        serde_json::Value::Object(map) => {
            if let Some(name) = map.get("Index Name").and_then(|v| v.as_str()) {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| indexes_in_plan(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| indexes_in_plan(v, out)),
        _ => {}
    }
}

async fn plan_uses(pool: &PgPool, sql: &str, index: &str) {
    let (plan,): (serde_json::Value,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    let mut used = Vec::new();
    indexes_in_plan(&plan, &mut used);
    assert!(
        used.iter().any(|u| u == index),
        "expected {index} for\n  {sql}\nbut the plan uses {used:?}:\n{plan:#}"
    );
}

#[tokio::test]
async fn guide_indexes_exist_and_serve_their_query_patterns() {
    let (pool, _name) = fresh_database().await;
    let existing: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for name in GUIDE_INDEXES {
        let found = existing.iter().find(|(n, _, _)| n == name);
        let (_, def, valid) = found.unwrap_or_else(|| panic!("index {name} is missing"));
        assert!(
            *valid,
            "{name} is INVALID (a failed concurrent build): {def}"
        );
    }
    fill(&pool).await;

    let user = "(SELECT id FROM users WHERE cognito_sub = 'sub-77')";
    let query = "(SELECT id FROM search_queries WHERE query_text LIKE 'planetary%' LIMIT 1)";
    let cases = [
        (
            "SELECT * FROM users WHERE lower(email) = lower('user42@example.com') AND is_active",
            "idx_users_email_active",
        ),
        (
            "SELECT * FROM users WHERE true AND role = 'admin' AND is_active = true ORDER BY created_at, id LIMIT 51",
            "idx_users_role_active",
        ),
        (
            "SELECT id, username, last_login_at FROM users ORDER BY last_login_at DESC NULLS LAST LIMIT 20",
            "idx_users_last_login",
        ),
        (
            &format!(
                "SELECT * FROM cad_files WHERE true AND uploaded_by = {user} ORDER BY created_at DESC, id DESC LIMIT 51"
            ),
            "idx_cad_files_uploaded_by_date",
        ),
        (
            "SELECT * FROM cad_files WHERE true AND tags && ARRAY['tag7'] ORDER BY created_at DESC, id DESC LIMIT 51",
            "idx_cad_files_tags",
        ),
        (
            "SELECT * FROM cad_files WHERE true AND tags @> ARRAY['tag7', 'common'] ORDER BY created_at DESC, id DESC LIMIT 51",
            "idx_cad_files_tags",
        ),
        (
            "SELECT * FROM cad_files WHERE metadata @> '{\"format\": \"step\"}'",
            "idx_cad_files_metadata",
        ),
        (
            "SELECT * FROM cad_files WHERE true AND project_name = 'project-7' AND part_name = 'part-7' ORDER BY created_at DESC, id DESC LIMIT 51",
            "idx_cad_files_search_composite",
        ),
        (
            &format!(
                "SELECT * FROM search_queries WHERE user_id = {user} ORDER BY created_at DESC LIMIT 20"
            ),
            "idx_search_queries_user_timestamp",
        ),
        (
            "SELECT * FROM search_queries WHERE to_tsvector('english'::regconfig, query_text) @@ plainto_tsquery('english', 'gearbox')",
            "idx_search_queries_query_text",
        ),
        (
            &format!(
                "SELECT * FROM search_results WHERE query_id = {query} ORDER BY relevance_score DESC LIMIT 10"
            ),
            "idx_search_results_query_relevance",
        ),
    ];
    for (sql, index) in cases {
        plan_uses(&pool, sql, index).await;
    }
    let covered: std::collections::HashSet<&str> = cases.iter().map(|(_, i)| *i).collect();
    assert_eq!(
        covered.len(),
        GUIDE_INDEXES.len(),
        "every guide index has a query pattern"
    );
}

#[tokio::test]
async fn no_index_predicate_or_expression_uses_a_volatile_function() {
    let (pool, _name) = fresh_database().await;
    // Any function in an index must be IMMUTABLE: PostgreSQL would refuse at build time, but this
    // also catches a STABLE function smuggled in through a wrapper.
    let offenders: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.proname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_depend d ON d.objid = i.indexrelid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_proc'::regclass \
         JOIN pg_proc p ON p.oid = d.refobjid WHERE p.provolatile <> 'i'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(offenders.is_empty(), "{offenders:?}");
    let predicates: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (name, pred) in predicates {
        for f in [
            "now()",
            "current_timestamp",
            "current_date",
            "random()",
            "clock_timestamp",
        ] {
            assert!(
                !pred.to_lowercase().contains(f),
                "{name} predicate uses {f}: {pred}"
            );
        }
    }
}
