//! pg_stat_statements: "not available" on the shared server (not preloaded, and its config is
//! not ours to change), "available" on a private throwaway server started with it preloaded.

mod support;

use std::path::PathBuf;
use std::process::Command;

use db::perf::{PgStatStatements, pg_stat_statements_top};
use support::TestDb;

#[tokio::test]
async fn not_available_says_why() {
    let t = TestDb::create().await;
    let pool = t.pool(1);
    match pg_stat_statements_top(&pool, 5).await {
        PgStatStatements::NotAvailable { reason } => {
            assert!(reason.contains("shared_preload_libraries"), "{reason}");
            assert!(reason.contains("CREATE EXTENSION"), "{reason}");
        }
        other => panic!("the shared server does not preload pg_stat_statements: {other:?}"),
    }
    // Installed in the database but still not preloaded: a different reason.
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&pool)
        .await
        .unwrap();
    match pg_stat_statements_top(&pool, 5).await {
        PgStatStatements::NotAvailable { reason } => {
            assert!(reason.contains("before its view can be read"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// A PostgreSQL cluster of our own in a temporary directory, stopped and removed on drop.
struct PrivateServer {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn bindir() -> PathBuf {
    if let Ok(d) = std::env::var("PG_BINDIR") {
        return d.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    if let Some(last) = versions.pop() {
        return last;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("PostgreSQL server binaries (initdb, pg_ctl) are needed: set PG_BINDIR");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl PrivateServer {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bindir.join(program);
        let mut cmd = if self.as_postgres {
            // The server refuses to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    fn start(preload: &str) -> Self {
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("dbtest-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the private cluster directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self {
            bindir: bindir(),
            dir,
            port,
            as_postgres,
        };
        let data = server.dir.join("data");
        let data = data.to_str().unwrap();
        let out = server.run(
            "initdb",
            &["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_preload_libraries={preload} -c fsync=off",
            server.dir.display()
        );
        let log = server.dir.join("log");
        let out = server.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        server
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn available_lists_the_top_statements_on_a_server_that_preloads_it() {
    let server = PrivateServer::start("pg_stat_statements");
    let t = TestDb::create_on(&server.url()).await;
    let pool = t.pool(1);
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g")
        .execute(&pool)
        .await
        .unwrap();
    for id in 1..=5 {
        sqlx::query("SELECT v FROM t WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    let PgStatStatements::Available { statements } = pg_stat_statements_top(&pool, 50).await else {
        panic!("pg_stat_statements is preloaded and installed here");
    };
    let select = statements
        .iter()
        .find(|s| s.query == "SELECT v FROM t WHERE id = $1")
        .unwrap_or_else(|| panic!("{statements:#?}"));
    assert_eq!((select.calls, select.rows), (5, 5));
    assert!(select.total_ms >= select.mean_ms && select.mean_ms > 0.0);
    assert!(select.queryid.is_some());
    let insert = statements
        .iter()
        .find(|s| s.query.starts_with("INSERT INTO t"))
        .unwrap();
    assert_eq!((insert.calls, insert.rows), (1, 1000));
    // Busiest first.
    assert!(
        statements
            .windows(2)
            .all(|w| w[0].total_ms >= w[1].total_ms)
    );
    assert!(
        pg_stat_statements_top(&pool, 1).await
            != PgStatStatements::Available { statements: vec![] }
    );
    drop(pool);
    drop(t);
}
