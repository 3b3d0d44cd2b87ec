//! Test support: a fresh database per test on the shared PostgreSQL (dropped at the end, also
//! when the test panics), pools built like production, a subscriber feeding a monitor.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use db::perf::{MonitorConfig, QueryLayer, QueryMonitor};
use db::{PgPool, PoolSettings};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// Base URL of the server (TEST_POSTGRES_URL overrides).
pub fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own, dropped (WITH FORCE) when this value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: String,
}

impl TestDb {
    /// Creates `dbtest_<uuid>` on the shared server.
    pub async fn create() -> Self {
        Self::create_on(&server_url()).await
    }

    /// Creates `dbtest_<uuid>` on the server at `server` (a URL without database).
    pub async fn create_on(server: &str) -> Self {
        let name = format!("dbtest_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self {
            url: format!("{server}/{name}"),
            name,
            server: server.to_string(),
        }
    }

    /// Connection options for this database.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url).expect("valid URL")
    }

    /// A lazy pool built by `db::lazy_pool`, like the application's.
    pub fn pool(&self, max_connections: u32) -> PgPool {
        let settings = PoolSettings {
            max_connections,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
        };
        db::lazy_pool(self.options(), &settings)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.server);
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// Fields of one captured event.
pub type Fields = HashMap<String, String>;

/// Captures events of one target.
#[derive(Clone, Default)]
pub struct Capture {
    target: &'static str,
    pub events: Arc<Mutex<Vec<Fields>>>,
}

impl Capture {
    pub fn new(target: &'static str) -> Self {
        Self {
            target,
            events: Arc::default(),
        }
    }

    pub fn take(&self) -> Vec<Fields> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

struct FieldMap<'a>(&'a mut Fields);

impl Visit for FieldMap<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() == self.target {
            let mut fields = Fields::new();
            fields.insert("level".into(), e.metadata().level().to_string());
            e.record(&mut FieldMap(&mut fields));
            self.events.lock().unwrap().push(fields);
        }
    }
}

thread_local! {
    static ROUTE: RefCell<Option<(QueryMonitor, Capture)>> = const { RefCell::new(None) };
}

const SQLX_QUERY: &str = "sqlx::query";
const SQLX_ACQUIRE: &str = "sqlx::pool::acquire";
const SLOW_LOG: &str = "db::slow_query";

/// Sends each thread's events to the monitor and capture that thread registered.
///
/// Why not `tracing::subscriber::set_default` per test: tracing caches a callsite's interest
/// globally, and while exactly one scoped dispatcher exists it computes that interest from the
/// *calling thread's* dispatcher; a parallel test without one then marks sqlx's callsites
/// "never" for everybody. One global subscriber (as in production) avoids that.
struct Router;

struct RouterFilter;

impl<S> tracing_subscriber::layer::Filter<S> for RouterFilter {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        matches!(meta.target(), SQLX_QUERY | SQLX_ACQUIRE | SLOW_LOG)
    }
}

impl<S: tracing::Subscriber> Layer<S> for Router {
    fn on_event(&self, e: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        // Clone out of the cell: observing may log, which comes back here.
        let Some((monitor, capture)) = ROUTE.with(|r| r.borrow().clone()) else {
            return;
        };
        if e.metadata().target() == SLOW_LOG {
            capture.on_event(e, ctx);
        } else {
            QueryLayer::new(monitor).on_event(e, ctx);
        }
    }
}

/// Stops routing this thread's events when dropped.
pub struct RouteGuard;

impl Drop for RouteGuard {
    fn drop(&mut self) {
        ROUTE.with(|r| r.borrow_mut().take());
    }
}

/// Routes this thread's sqlx events to `monitor` (through `db::perf::QueryLayer`, as the
/// application's subscriber would) and captures the slow-query log. Tests run on a
/// current-thread runtime, so the spawned EXPLAIN tasks run on this thread too.
pub fn observe(monitor: &QueryMonitor) -> (RouteGuard, Capture) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Router.with_filter(RouterFilter));
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let capture = Capture::new(SLOW_LOG);
    ROUTE.with(|r| *r.borrow_mut() = Some((monitor.clone(), capture.clone())));
    (RouteGuard, capture)
}

/// Monitor settings for tests: defaults (100 ms threshold) unless changed.
pub fn config() -> MonitorConfig {
    MonitorConfig::default()
}

/// A 200,000-row table `big (id, v, tag, pad)` with no index but the primary key, analysed.
pub async fn big_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE big (id bigserial PRIMARY KEY, v int NOT NULL, tag text NOT NULL, pad text NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO big (v, tag, pad) SELECT g, 'tag' || (g % 1000), repeat(md5(g::text), 3) \
         FROM generate_series(1, 200000) g",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE big").execute(pool).await.unwrap();
}
