//! UNNEST batch inserts against the real PostgreSQL, and the multi-VALUES insert they replace.

mod support;

use std::time::{Duration, Instant};

use db::UnnestInsert;
use db::perf::QueryMonitor;
use sqlx::{AssertSqlSafe, PgPool};
use support::{TestDb, config, observe};

#[derive(Clone)]
struct Item {
    name: String,
    qty: i32,
}

fn items(n: usize) -> impl Iterator<Item = Item> {
    (0..n).map(|i| Item {
        name: format!("item-{i}"),
        qty: i as i32,
    })
}

async fn items_table(pool: &PgPool) {
    sqlx::query("CREATE TABLE items (name text NOT NULL, qty int4 NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
}

fn unnest_insert() -> UnnestInsert<Item> {
    UnnestInsert::new("items")
        .unwrap()
        .column("name", "text", |i: &Item| i.name.clone())
        .unwrap()
        .column("qty", "int4", |i: &Item| i.qty)
        .unwrap()
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The naive way: `VALUES ($1, $2), ($3, $4), …` with two bind parameters per row.
async fn naive_values_insert(pool: &PgPool, rows: &[Item]) -> Result<u64, sqlx::Error> {
    let mut sql = String::from("INSERT INTO items (name, qty) VALUES ");
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for r in rows {
        q = q.bind(r.name.clone()).bind(r.qty);
    }
    Ok(q.execute(pool).await?.rows_affected())
}

#[tokio::test]
async fn a_hundred_thousand_rows_in_one_call() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    items_table(&pool).await;
    let monitor = QueryMonitor::new(config());
    let (_guard, _) = observe(&monitor);

    let insert = unnest_insert().chunk_rows(25_000);
    let started = Instant::now();
    let outcome = insert
        .execute_in_transaction(&pool, items(100_000))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcome.rows_inserted, 100_000);
    assert_eq!(outcome.statements, 4);
    assert_eq!(outcome.parameters_per_statement, 2);
    assert_eq!(outcome.largest_chunk, 25_000);
    assert_eq!(count(&pool).await, 100_000);
    let (sum, max): (i64, i32) = sqlx::query_as("SELECT sum(qty), max(qty) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((sum, max), (4_999_950_000, 99_999));

    // Cross-check with what sqlx itself reported: four executions of the one UNNEST statement.
    let stats = monitor
        .stats_for(&insert.sql())
        .unwrap_or_else(|| panic!("{:#?}", monitor.statement_stats(10)));
    assert_eq!(stats.calls, 4);
    assert_eq!(stats.rows, 100_000);
    assert_eq!(
        stats.fingerprint,
        r#"insert into "items"("name", "qty") select * from unnest(?::text[], ?::int4[])"#
    );
    println!("UNNEST: 100,000 rows, 4 statements of 2 parameters, {took:?}");
}

#[tokio::test]
async fn the_default_chunking_and_an_empty_batch() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    items_table(&pool).await;
    let insert = unnest_insert();
    let mut conn = pool.acquire().await.unwrap();
    let outcome = insert.execute(&mut conn, items(20_001)).await.unwrap();
    assert_eq!((outcome.statements, outcome.rows_inserted), (3, 20_001));
    let outcome = insert.execute(&mut conn, items(0)).await.unwrap();
    assert_eq!((outcome.statements, outcome.rows_inserted), (0, 0));
    drop(conn);
    assert_eq!(count(&pool).await, 20_001);
}

#[tokio::test]
async fn a_failing_chunk_rolls_the_whole_batch_back() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    sqlx::query("CREATE TABLE items (name text NOT NULL, qty int4 NOT NULL CHECK (qty < 15000))")
        .execute(&pool)
        .await
        .unwrap();
    let err = unnest_insert()
        .chunk_rows(10_000)
        .execute_in_transaction(&pool, items(20_000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
    assert_eq!(count(&pool).await, 0);
}

#[tokio::test]
async fn multi_values_fails_above_65535_parameters_where_unnest_does_not() {
    let t = TestDb::create().await;
    let pool = t.pool(2);
    items_table(&pool).await;

    // 40,000 rows × 2 columns = 80,000 parameters: over the protocol's limit.
    let rows: Vec<Item> = items(40_000).collect();
    let err = naive_values_insert(&pool, &rows).await.unwrap_err();
    println!("multi-VALUES with 80,000 parameters: {err}");
    assert_eq!(count(&pool).await, 0);
    let outcome = unnest_insert()
        .chunk_rows(40_000)
        .execute_in_transaction(&pool, rows)
        .await
        .unwrap();
    assert_eq!(
        (outcome.statements, outcome.parameters_per_statement),
        (1, 2)
    );
    assert_eq!(count(&pool).await, 40_000);

    // At a size both can do (32,000 rows = 64,000 parameters), compare them.
    sqlx::query("TRUNCATE items").execute(&pool).await.unwrap();
    let rows: Vec<Item> = items(32_000).collect();
    let mut naive = Duration::ZERO;
    let mut unnest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(naive_values_insert(&pool, &rows).await.unwrap(), 32_000);
        naive += started.elapsed();
        let started = Instant::now();
        let o = unnest_insert()
            .chunk_rows(32_000)
            .execute_in_transaction(&pool, rows.iter().cloned())
            .await
            .unwrap();
        assert_eq!(o.rows_inserted, 32_000);
        unnest += started.elapsed();
    }
    assert_eq!(count(&pool).await, 6 * 32_000);
    println!(
        "32,000 rows, mean of 3: multi-VALUES (64,000 parameters) {:?}, UNNEST (2 parameters) {:?}",
        naive / 3,
        unnest / 3
    );
}
