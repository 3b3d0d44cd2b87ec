//! Helpers of `make bench` (infra/bench/bench.py) that need the crates' own code:
//!
//!   bench-runner seed-search N     insert N searchable files for the demo engineer (once), then
//!                                  recompute every search document with search::document::reindex_all
//!   bench-runner db [ITERATIONS]   time the API's hot queries, one at a time, through the same
//!                                  functions the routes call; prints JSON
//!
//! DATABASE_URL names the bench database (the one the bench servers migrated).

use std::time::{Duration, Instant};

use files::listing::ListQuery;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// Marks the rows this tool inserted, so seeding happens once per bench database.
const SEARCH_KEY_PREFIX: &str = "uploads/bench-search/";
const WARM_UP: usize = 20;

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("usage: bench-runner seed-search N | db [ITERATIONS]")]
    Usage,
    #[error("DATABASE_URL is not set")]
    NoDatabase,
    #[error("the demo engineer is missing: start the local server once against this database")]
    NoDemoUser,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("files: {0}")]
    Files(#[from] files::FilesError),
    #[error("search: {0}")]
    Search(#[from] search::SearchError),
    #[error("api: {0:?}")]
    Api(String),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench-runner: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("DATABASE_URL").map_err(|_| BenchError::NoDatabase)?;
    // One connection: every figure is the latency of one query on an idle connection, the same
    // shape as `pgbench -S -c 1`, the baseline it is compared with.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await?;
    let me: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE cognito_sub = 'demo-engineer'")
        .fetch_optional(&pool)
        .await?
        .ok_or(BenchError::NoDemoUser)?;
    let number = |i: usize, default: usize| -> Result<usize, BenchError> {
        args.get(i)
            .map_or(Ok(default), |v| v.parse().map_err(|_| BenchError::Usage))
    };
    let out = match args.first().map(String::as_str) {
        Some("seed-search") => seed_search(&pool, me, number(1, 10_000)?).await?,
        Some("db") => time_queries(&pool, me, number(1, 200)?.max(1)).await?,
        _ => return Err(BenchError::Usage),
    };
    println!("{out}");
    Ok(())
}

/// Inserts `n` varied files (names, materials, projects, descriptions drawn from small
/// vocabularies so a two-word query matches a few hundred of them), then reindexes the table.
/// They are dated a day back so the newest-first listing the HTTP benchmarks fetch still shows
/// the 100 listing rows of seed_listing.sql.
async fn seed_search(pool: &PgPool, me: Uuid, n: usize) -> Result<Value, BenchError> {
    let existing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM cad_files WHERE s3_key LIKE $1 || '%'")
            .bind(SEARCH_KEY_PREFIX)
            .fetch_one(pool)
            .await?;
    let started = Instant::now();
    let missing = (n as i64 - existing).max(0);
    if missing > 0 {
        sqlx::query(
            "WITH v AS (SELECT ARRAY['bracket','housing','gear','shaft','plate','flange','bearing','valve','nozzle','rotor'] AS part,
                               ARRAY['steel','aluminium','abs','titanium','brass'] AS material,
                               ARRAY['Rover','Lander','Drone','Turbine','Press','Crane','Pump'] AS project)
             INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, tags,
                                    project_name, part_name, description, metadata, created_at, updated_at)
             SELECT $1, name, name, 20000 + i * 131, 'model/stl', $2 || i, 'ready',
                    ARRAY[material[1 + i % 5], 'batch-' || (i % 11), CASE WHEN i % 2 = 0 THEN 'prototype' ELSE 'production' END],
                    project[1 + i % 7], initcap(part[1 + (i / 3) % 10]) || ' ' || (i % 97),
                    'A ' || material[1 + i % 5] || ' ' || part[1 + (i / 3) % 10] || ' for the ' || project[1 + i % 7]
                        || ' assembly, revision ' || (i % 5) || ', tolerances per drawing D-' || i,
                    jsonb_build_object('format', 'stl', 'triangles', 1000 + i * 13, 'watertight', i % 7 <> 0,
                                       'units', 'mm', 'material', material[1 + i % 5]),
                    t, t
             FROM v, generate_series($3::int + 1, $3::int + $4::int) i,
                  LATERAL (SELECT part[1 + (i / 3) % 10] || '-' || i || '-rev' || (i % 4) || '.stl' AS name,
                                  now() - interval '1 day' - i * interval '1 second' AS t) n",
        )
        .bind(me)
        .bind(SEARCH_KEY_PREFIX)
        .bind(existing as i32)
        .bind(missing as i32)
        .execute(pool)
        .await?;
    }
    let inserted_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let reindexed = search::document::reindex_all(pool, 1000, |_| async {}).await?;
    sqlx::query("ANALYZE cad_files").execute(pool).await?;
    Ok(json!({
        "search_files": existing + missing,
        "inserted": missing,
        "insert_s": inserted_s,
        "reindexed": reindexed,
        "reindex_s": started.elapsed().as_secs_f64(),
    }))
}

fn listing(query: ListQuery, me: Uuid) -> Result<files::listing::Listing, BenchError> {
    query
        .validate(me)
        .map_err(|e| BenchError::Api(format!("{e:?}")))
}

fn search_of(text: &str, me: Uuid) -> Result<search::query::Search, BenchError> {
    let query = ListQuery {
        q: Some(text.to_owned()),
        limit: Some(20),
        ..ListQuery::default()
    };
    search::query::Search::from_query(query, me).map_err(|e| BenchError::Api(format!("{e:?}")))
}

/// Latency summary of one query, in milliseconds.
fn summary(mut samples: Vec<f64>, rows: usize) -> Value {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let pct = |p: f64| samples[((n as f64 * p).ceil() as usize).clamp(1, n) - 1];
    json!({
        "n": n,
        "rows": rows,
        "avg_ms": samples.iter().sum::<f64>() / n as f64,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": samples[n - 1],
    })
}

/// Times `f` `iterations` times after a warm-up; returns the summary and the row count it saw.
async fn time<F, Fut>(iterations: usize, mut f: F) -> Result<Value, BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BenchError>>,
{
    let mut rows = 0;
    for _ in 0..WARM_UP {
        rows = f().await?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        rows = f().await?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(summary(samples, rows))
}

async fn time_queries(pool: &PgPool, me: Uuid, iterations: usize) -> Result<Value, BenchError> {
    let some_id: Uuid = sqlx::query_scalar(
        "SELECT id FROM cad_files WHERE uploaded_by = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(me)
    .fetch_one(pool)
    .await?;
    let total_files: i64 = sqlx::query_scalar("SELECT count(*) FROM cad_files")
        .fetch_one(pool)
        .await?;

    let default_listing = listing(
        ListQuery {
            limit: Some(100),
            ..ListQuery::default()
        },
        me,
    )?;
    let filtered_listing = listing(
        ListQuery {
            tags: Some("steel".into()),
            project: Some("Rover".into()),
            uploaded_by: Some("me".into()),
            min_size: Some(10_000),
            limit: Some(50),
            ..ListQuery::default()
        },
        me,
    )?;
    let by_name = listing(
        ListQuery {
            sort: Some(files::listing::SortField::Name),
            limit: Some(50),
            ..ListQuery::default()
        },
        me,
    )?;
    let search = search_of("steel bracket", me)?;

    let mut queries = serde_json::Map::new();
    queries.insert(
        "file_by_id".into(),
        time(iterations, || async {
            Ok(files::repo::find(pool, some_id).await?.map_or(0, |_| 1))
        })
        .await?,
    );
    queries.insert(
        "files_listing_100".into(),
        time(iterations, || async {
            Ok(default_listing.fetch(pool, 101).await?.len())
        })
        .await?,
    );
    queries.insert(
        "files_listing_filtered".into(),
        time(iterations, || async {
            Ok(filtered_listing.fetch(pool, 51).await?.len())
        })
        .await?,
    );
    queries.insert(
        "files_listing_by_name".into(),
        time(iterations, || async {
            Ok(by_name.fetch(pool, 51).await?.len())
        })
        .await?,
    );
    // What GET /api/search runs: the ranked query, the history insert, and the query's lexemes.
    queries.insert(
        "search".into(),
        time(iterations, || async {
            let page = search.run(pool, me).await?;
            search::document::query_terms(pool, &search.text).await?;
            Ok(page.items.len())
        })
        .await?,
    );
    Ok(json!({
        "iterations": iterations,
        "files_in_table": total_files,
        "queries": queries,
    }))
}
