//! Throughput at concurrency 50 on one multiplexed connection: CacheService vs the raw redis crate
//! (same connection type, no wrapper) vs `redis-benchmark`, all in the same run.
//!
//! `cargo bench` (env: REDIS_URL or BENCH_HOST/BENCH_PORT, BENCH_OPS, BENCH_ROUNDS, BENCH_VALUE_SIZE,
//! BENCH_WORKERS: 0 = current-thread runtime, the default; N = multi-thread with N workers).

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache::{CacheConfig, CacheService, Lookup, NamedCache};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

const CONCURRENCY: usize = 50;
const KEYSPACE: usize = 10_000;
const MGET_KEYS: usize = 10;

#[derive(Clone, Serialize, Deserialize)]
struct Record {
    id: u64,
    owner: String,
    name: String,
    tags: Vec<String>,
    sizes: Vec<u32>,
}

fn record(size: usize) -> Record {
    // Eight short strings plus numbers, about `size` bytes of MessagePack.
    let n = size.saturating_sub(200) / 5;
    Record {
        id: 42,
        owner: "4f1c2a9e-7d1b-4c43-9a55-0b7f1e2d3c4b".into(),
        name: "bracket-assembly.dwg".into(),
        tags: (0..8).map(|i| format!("layer-name-{i:02}")).collect(),
        sizes: (0..n).map(|i| 70_000 + i as u32).collect(),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `total` calls of `op` from `CONCURRENCY` tasks; returns (ops/s, failed calls).
async fn drive<F, Fut>(total: usize, op: F) -> (f64, u64)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let op = op.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < total {
                if !op(i).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    let secs = start.elapsed().as_secs_f64();
    (total as f64 / secs, failed.load(Ordering::Relaxed))
}

/// Runs redis-benchmark and returns requests per second of the last reported test.
fn redis_benchmark(host: &str, port: u16, n: usize, size: usize, args: &[&str]) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-c",
            &CONCURRENCY.to_string(),
        ])
        .args(["-n", &n.to_string(), "-d", &size.to_string(), "-q"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .and_then(|l| {
            let after = l.rsplit_once(": ")?.1;
            after.split_whitespace().next()?.parse().ok()
        })
}

struct Row {
    op: &'static str,
    bench: Option<f64>,
    raw: f64,
    svc_bytes: f64,
    svc_typed: f64,
    /// Medians of the per-round ratios (each round runs the sides back to back).
    vs_bench: Option<f64>,
    vs_raw_b: f64,
    vs_raw_t: f64,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn best(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}

fn main() {
    // BENCH_WORKERS=0 (default) runs everything on one thread, like a 1-vCPU Lambda; N = N workers.
    let workers: usize = env_or("BENCH_WORKERS", 0);
    let rt = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    rt.block_on(run(workers));
}

async fn run(workers: usize) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let host: String = env_or("BENCH_HOST", "127.0.0.1".to_owned());
    let port: u16 = env_or("BENCH_PORT", 6379);
    let ops: usize = env_or("BENCH_OPS", 200_000);
    let rounds: usize = env_or("BENCH_ROUNDS", 5);
    let size: usize = env_or("BENCH_VALUE_SIZE", 512);

    let mut cfg = CacheConfig::from_url(&url).expect("REDIS_URL");
    cfg.key_prefix = format!("bench-cache:{}:", uuid::Uuid::new_v4().simple());
    // Generous: a timeout would trip the breaker and make bypasses look like throughput.
    cfg.op_timeout = Duration::from_secs(2);
    let svc = CacheService::connect(cfg).await.expect("connect");
    let named: NamedCache = svc.named("bench");
    let raw_client = redis::Client::open(url.as_str()).expect("url");
    // Same response bound as the service's operation timeout, so neither side gives up earlier.
    let raw_cfg = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(2)));
    let raw: ConnectionManager = ConnectionManager::new_with_config(raw_client, raw_cfg)
        .await
        .expect("raw connection");

    let value = Arc::new(vec![b'x'; size]);
    let typed = Arc::new(record(size));
    let raw_prefix = format!("{}raw:", svc.key_prefix());

    // Preload everything the GET / MGET runs read.
    let items: Vec<(String, Vec<u8>)> = (0..KEYSPACE)
        .map(|i| (format!("b:{i}"), value.to_vec()))
        .collect();
    for chunk in items.chunks(1000) {
        named
            .mset_bytes(chunk, Duration::from_secs(600))
            .await
            .expect("preload");
    }
    let titems: Vec<(String, Record)> = (0..KEYSPACE)
        .map(|i| (format!("t:{i}"), (*typed).clone()))
        .collect();
    for chunk in titems.chunks(1000) {
        named
            .mset(chunk, Duration::from_secs(600))
            .await
            .expect("preload");
    }
    {
        let mut p = redis::pipe();
        for i in 0..KEYSPACE {
            p.cmd("SET")
                .arg(format!("{raw_prefix}{i}"))
                .arg(value.as_slice())
                .arg("EX")
                .arg(600)
                .ignore();
        }
        let mut c = raw.clone();
        let _: () = p.query_async(&mut c).await.expect("preload raw");
    }
    let mget_keys: Vec<String> = (0..MGET_KEYS).map(|i| format!("{raw_prefix}{i}")).collect();
    let encoded = stored_size(&svc, "t:0").await;
    println!(
        "value size {size} B (typed record encodes to {encoded} B), {ops} ops per run, concurrency {CONCURRENCY}, {rounds} rounds, tokio workers {workers} (0 = current thread)"
    );

    let mut rows = Vec::new();
    for op in ["SET", "GET", "MGET(10)"] {
        let (mut b, mut r, mut sb, mut st) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut vs_bench, mut vs_raw_b, mut vs_raw_t) = (Vec::new(), Vec::new(), Vec::new());
        let mut failures = 0u64;
        for round in 0..rounds {
            let bench = match op {
                "SET" => redis_benchmark(&host, port, ops, size, &["-t", "set"]),
                "GET" => redis_benchmark(&host, port, ops, size, &["-t", "get"]),
                _ => {
                    let mut args: Vec<&str> = vec!["MGET"];
                    args.extend(mget_keys.iter().map(String::as_str));
                    redis_benchmark(&host, port, ops / 2, size, &args)
                }
            };
            if let Some(v) = bench {
                b.push(v);
            }
            let n = if op == "MGET(10)" { ops / 2 } else { ops };
            // Alternate the order so slow drift in machine load does not favour one side.
            let (raw_ops, svc_b, svc_t, f) = if round % 2 == 0 {
                let (raw_ops, f1) = run_raw(op, &raw, &raw_prefix, &value, n).await;
                let (svc_b, f2) = run_svc_bytes(op, &named, &value, n).await;
                let (svc_t, f3) = run_svc_typed(op, &named, &typed, n).await;
                (raw_ops, svc_b, svc_t, f1 + f2 + f3)
            } else {
                let (svc_t, f3) = run_svc_typed(op, &named, &typed, n).await;
                let (svc_b, f2) = run_svc_bytes(op, &named, &value, n).await;
                let (raw_ops, f1) = run_raw(op, &raw, &raw_prefix, &value, n).await;
                (raw_ops, svc_b, svc_t, f1 + f2 + f3)
            };
            failures += f;
            if let Some(v) = bench {
                vs_bench.push(svc_b / v);
            }
            vs_raw_b.push(svc_b / raw_ops);
            vs_raw_t.push(svc_t / raw_ops);
            r.push(raw_ops);
            sb.push(svc_b);
            st.push(svc_t);
        }
        if failures > 0 {
            println!(
                "WARNING {op}: {failures} failed calls (timeouts or misses): the machine stalled, figures distorted"
            );
        }
        rows.push(Row {
            op,
            bench: (!b.is_empty()).then(|| best(&b)),
            raw: best(&r),
            svc_bytes: best(&sb),
            svc_typed: best(&st),
            vs_bench: median(&mut vs_bench),
            vs_raw_b: median(&mut vs_raw_b).unwrap_or(0.0),
            vs_raw_t: median(&mut vs_raw_t).unwrap_or(0.0),
        });
    }

    println!();
    println!(
        "| op | redis-benchmark | raw redis crate | CacheService bytes | CacheService typed | bytes / redis-benchmark | bytes / raw crate | typed / raw crate |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let bench = row
            .bench
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "n/a".into());
        let vs_bench = row
            .vs_bench
            .map(|v| format!("{:.0}%", 100.0 * v))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.0}% | {:.0}% |",
            row.op,
            bench,
            row.raw,
            row.svc_bytes,
            row.svc_typed,
            vs_bench,
            100.0 * row.vs_raw_b,
            100.0 * row.vs_raw_t,
        );
    }
    println!(
        "(ops/s, best of {rounds} rounds; ratios: median of per-round ratios; MGET rows count calls of {MGET_KEYS} keys; counters: {:?})",
        named.stats()
    );

    // Clean up our keys (the redis-benchmark GET/SET key is its own `key:__rand_int__`).
    let _ = named.invalidate_pattern("*").await;
    let mut c = raw.clone();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{raw_prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .expect("scan");
        if !keys.is_empty() {
            let _: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .expect("unlink");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

async fn stored_size(svc: &CacheService, key: &str) -> usize {
    let mut c = redis::Client::open(
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
    .expect("url")
    .get_multiplexed_async_connection()
    .await
    .expect("conn");
    let v: Vec<u8> = redis::cmd("GET")
        .arg(svc.value_key(key))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    v.len()
}

async fn run_raw(
    op: &str,
    raw: &ConnectionManager,
    prefix: &str,
    value: &Arc<Vec<u8>>,
    n: usize,
) -> (f64, u64) {
    let raw = raw.clone();
    let prefix: Arc<str> = Arc::from(prefix);
    let value = value.clone();
    match op {
        "SET" => {
            drive(n, move |i| {
                let (mut c, p, v) = (raw.clone(), prefix.clone(), value.clone());
                async move {
                    redis::cmd("SET")
                        .arg(format!("{p}{}", i % KEYSPACE))
                        .arg(v.as_slice())
                        .arg("PX")
                        .arg(600_000)
                        .query_async::<()>(&mut c)
                        .await
                        .is_ok()
                }
            })
            .await
        }
        "GET" => {
            drive(n, move |i| {
                let (mut c, p) = (raw.clone(), prefix.clone());
                async move {
                    matches!(
                        redis::cmd("GET").arg(format!("{p}{}", i % KEYSPACE)).query_async::<Option<Vec<u8>>>(&mut c).await,
                        Ok(Some(_))
                    )
                }
            })
            .await
        }
        _ => {
            drive(n, move |i| {
                let (mut c, p) = (raw.clone(), prefix.clone());
                async move {
                    let mut cmd = redis::cmd("MGET");
                    for k in 0..MGET_KEYS {
                        cmd.arg(format!("{p}{}", (i * MGET_KEYS + k) % KEYSPACE));
                    }
                    matches!(cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut c).await, Ok(v) if v.iter().all(Option::is_some))
                }
            })
            .await
        }
    }
}

async fn run_svc_bytes(op: &str, c: &NamedCache, value: &Arc<Vec<u8>>, n: usize) -> (f64, u64) {
    let c = c.clone();
    let value = value.clone();
    match op {
        "SET" => {
            drive(n, move |i| {
                let (c, v) = (c.clone(), value.clone());
                async move {
                    c.set_bytes(&format!("b:{}", i % KEYSPACE), &v, Duration::from_secs(600))
                        .await
                        .is_ok()
                }
            })
            .await
        }
        "GET" => {
            drive(n, move |i| {
                let c = c.clone();
                async move { c.get_bytes(&format!("b:{}", i % KEYSPACE)).await.is_hit() }
            })
            .await
        }
        _ => {
            drive(n, move |i| {
                let c = c.clone();
                async move {
                    let keys: Vec<String> = (0..MGET_KEYS)
                        .map(|k| format!("b:{}", (i * MGET_KEYS + k) % KEYSPACE))
                        .collect();
                    c.mget_bytes(&keys).await.iter().all(Lookup::is_hit)
                }
            })
            .await
        }
    }
}

async fn run_svc_typed(op: &str, c: &NamedCache, value: &Arc<Record>, n: usize) -> (f64, u64) {
    let c = c.clone();
    let value = value.clone();
    match op {
        "SET" => {
            drive(n, move |i| {
                let (c, v) = (c.clone(), value.clone());
                async move {
                    c.set(
                        &format!("t:{}", i % KEYSPACE),
                        &*v,
                        Duration::from_secs(600),
                    )
                    .await
                    .is_ok()
                }
            })
            .await
        }
        "GET" => {
            drive(n, move |i| {
                let c = c.clone();
                async move {
                    c.get::<Record>(&format!("t:{}", i % KEYSPACE))
                        .await
                        .is_hit()
                }
            })
            .await
        }
        _ => {
            drive(n, move |i| {
                let c = c.clone();
                async move {
                    let keys: Vec<String> = (0..MGET_KEYS)
                        .map(|k| format!("t:{}", (i * MGET_KEYS + k) % KEYSPACE))
                        .collect();
                    c.mget::<Record, _>(&keys).await.iter().all(Lookup::is_hit)
                }
            })
            .await
        }
    }
}
