//! Read-replica routing: the reader pool points at another database here, standing in for a replica.

mod support;

use db::{Db, PoolSettings};
use support::TestDb;

async fn current_database(pool: &db::PgPool) -> String {
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_go_to_the_reader_and_writes_to_the_writer() {
    let primary = TestDb::create().await;
    let replica = TestDb::create().await;
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::from_env()
    };
    let db = Db::with_reader(
        db::lazy_pool(primary.options(), &settings),
        db::replica::reader_pool(replica.options(), &settings),
    );
    assert!(db.has_replica());
    assert_eq!(current_database(db.reader()).await, replica.name);
    assert_eq!(current_database(db.writer()).await, primary.name);

    // The reader is read-only like a real replica: a write sent there by mistake fails.
    let err = sqlx::query("CREATE TABLE oops (id int)")
        .execute(db.reader())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    sqlx::query("CREATE TABLE fine (id int)")
        .execute(db.writer())
        .await
        .unwrap();

    let stats = db.pool_stats();
    // Sequential use needs one connection; sqlx may open a second one in the background.
    assert!((1..=2).contains(&stats.writer.size), "{stats:?}");
    let reader = stats.reader.expect("separate reader pool");
    assert!((1..=2).contains(&reader.size), "{reader:?}");
    assert_eq!(reader.max_connections, 2);
}

#[tokio::test]
async fn without_a_replica_the_reader_is_the_writer() {
    let primary = TestDb::create().await;
    let db = Db::new(primary.pool(2));
    assert!(!db.has_replica());
    assert_eq!(current_database(db.reader()).await, primary.name);
    // Same pool: writes through `reader()` are not blocked, and only one pool is reported.
    sqlx::query("CREATE TABLE t (id int)")
        .execute(db.reader())
        .await
        .unwrap();
    assert!(db.pool_stats().reader.is_none());
}
