//! Operations against the shared Redis (127.0.0.1:6379 or REDIS_URL), each test on its own prefix.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{CacheError, LockOutcome, Lookup};
use common::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CadFile {
    id: u64,
    name: String,
    tags: Vec<String>,
    metadata: serde_json::Value,
}

fn cad_file(id: u64, n_tags: usize) -> CadFile {
    CadFile {
        id,
        name: format!("bracket-{id}.dwg"),
        tags: (0..n_tags).map(|i| format!("layer-{}", i % 10)).collect(),
        metadata: serde_json::json!({"units": "mm", "bbox": [0, 0, 120.5, 80.25]}),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn typed_and_raw_round_trip_with_compression() {
    let svc = shared_service("roundtrip").await;
    let c = svc.named("cadFileMetadata");
    let mut raw = raw_shared().await;

    let small = cad_file(1, 2);
    c.set("file:1", &small, MINUTE).await.unwrap();
    assert_eq!(c.get::<CadFile>("file:1").await, Lookup::Hit(small));
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(svc.value_key("file:1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        stored[0], 0x20,
        "small typed value: MessagePack, uncompressed"
    );

    let big = cad_file(2, 2000);
    c.set("file:2", &big, MINUTE).await.unwrap();
    assert_eq!(c.get::<CadFile>("file:2").await, Lookup::Hit(big.clone()));
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(svc.value_key("file:2"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored[0], 0x21, "large typed value: MessagePack + LZ4");
    let json_len = serde_json::to_vec(&big).unwrap().len();
    assert!(
        stored.len() * 5 < json_len,
        "stored {} vs json {json_len}",
        stored.len()
    );

    let body = b"{\"already\":\"compressed by the middleware\"}".repeat(100);
    c.set_bytes("body:1", &body, MINUTE).await.unwrap();
    assert_eq!(
        c.get_bytes("body:1").await,
        Lookup::Hit(cache::Bytes::from(body.clone()))
    );
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(svc.value_key("body:1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored[0], 0x10);
    assert_eq!(stored.len(), body.len() + 1, "raw bytes stored verbatim");

    assert_eq!(c.get::<CadFile>("file:missing").await, Lookup::Miss);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.errors, s.writes), (3, 1, 0, 3));
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn ttl_expires() {
    let svc = shared_service("ttl").await;
    let c = svc.named("userData");
    let mut raw = raw_shared().await;
    c.set("user:1", &"Ada", Duration::from_secs(1))
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(svc.value_key("user:1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 1000, "PTTL {pttl}");
    assert_eq!(
        c.get::<String>("user:1").await,
        Lookup::Hit("Ada".to_owned())
    );
    // Real expiry: wait for Redis to drop it.
    let start = Instant::now();
    loop {
        match c.get::<String>("user:1").await {
            Lookup::Miss => break,
            Lookup::Hit(_) => assert!(start.elapsed() < Duration::from_secs(3), "never expired"),
            Lookup::Unavailable => panic!("redis unavailable"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "expired too early"
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg(svc.value_key("user:1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // A longer TTL is honoured too.
    c.set_bytes("user:2", b"x", Duration::from_secs(300))
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(svc.value_key("user:2"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 299_000 && pttl <= 300_000, "PTTL {pttl}");
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn mget_mset_with_misses_in_the_middle() {
    let svc = shared_service("mget").await;
    let c = svc.named("searchResults");
    let items: Vec<(String, CadFile)> = (0..50)
        .filter(|i| i % 3 != 1)
        .map(|i| (format!("f:{i}"), cad_file(i, 3)))
        .collect();
    c.mset(&items, MINUTE).await.unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("f:{i}")).collect();
    let got = c.mget::<CadFile, _>(&keys).await;
    assert_eq!(got.len(), 50);
    for (i, g) in got.iter().enumerate() {
        if i % 3 == 1 {
            assert_eq!(g, &Lookup::Miss, "key {i}");
        } else {
            assert_eq!(g, &Lookup::Hit(cad_file(i as u64, 3)), "key {i}");
        }
    }
    // Raw variant, more keys than one MGET batch (500).
    let bodies: Vec<(String, Vec<u8>)> = (0..1200)
        .map(|i| (format!("b:{i}"), format!("body-{i}").into_bytes()))
        .collect();
    c.mset_bytes(&bodies, MINUTE).await.unwrap();
    let mut keys: Vec<String> = bodies.iter().map(|(k, _)| k.clone()).collect();
    keys.insert(600, "b:absent".to_owned());
    let got = c.mget_bytes(&keys).await;
    assert_eq!(got.len(), 1201);
    assert_eq!(got[600], Lookup::Miss);
    assert_eq!(got[0], Lookup::Hit(cache::Bytes::from_static(b"body-0")));
    assert_eq!(
        got[1200],
        Lookup::Hit(cache::Bytes::from_static(b"body-1199"))
    );
    assert_eq!(got.iter().filter(|l| l.is_hit()).count(), 1200);
    assert!(c.mget::<CadFile, &str>(&[]).await.is_empty());
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn delete_and_set_many_with_own_ttls() {
    let svc = shared_service("delete").await;
    let c = svc.named("userData");
    let mut raw = raw_shared().await;
    let entries = vec![
        c.entry("a", &1u32, Duration::from_secs(30), &[]).unwrap(),
        c.entry_bytes("b", b"two", Duration::from_secs(90), &["grp"])
            .unwrap(),
    ];
    c.set_many(&entries).await.unwrap();
    let pttl_b: i64 = redis::cmd("PTTL")
        .arg(svc.value_key("b"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl_b > 30_000, "each entry keeps its own TTL");
    assert!(c.delete("a").await.unwrap());
    assert!(!c.delete("a").await.unwrap());
    assert_eq!(c.get::<u32>("a").await, Lookup::Miss);
    assert_eq!(c.delete_many(&["b", "nope"]).await.unwrap(), 1);
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn scan_invalidation_over_100k_keys() {
    let svc = shared_service("scan").await;
    let c = svc.named("searchResults");
    // 100k keys: 90k to keep, 10k matching the pattern; written pipelined in batches.
    let all: Vec<(String, Vec<u8>)> = (0..100_000)
        .map(|i| {
            let k = if i % 10 == 0 {
                format!("search:drop:{i}")
            } else {
                format!("search:keep:{i}")
            };
            (k, vec![b'v'; 100])
        })
        .collect();
    for chunk in all.chunks(10_000) {
        c.mset_bytes(chunk, Duration::from_secs(600)).await.unwrap();
    }
    // Another service with another prefix holds the same logical keys: it must not be touched.
    let other = shared_service("scan-other").await;
    let o = other.named("searchResults");
    o.set_bytes("search:drop:0", b"other", Duration::from_secs(600))
        .await
        .unwrap();

    let start = Instant::now();
    let deleted = c.invalidate_pattern("search:drop:*").await.unwrap();
    let took = start.elapsed();
    assert_eq!(deleted, 10_000);

    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    let mut hits = 0;
    for (chunk_keys, chunk) in keys.chunks(5000).zip(all.chunks(5000)) {
        for ((k, _), got) in chunk.iter().zip(c.mget_bytes(chunk_keys).await) {
            if k.starts_with("search:drop:") {
                assert_eq!(got, Lookup::Miss, "{k} should be gone");
            } else {
                assert!(got.is_hit(), "{k} should remain");
                hits += 1;
            }
        }
    }
    assert_eq!(hits, 90_000);
    assert_eq!(
        o.get_bytes("search:drop:0").await,
        Lookup::Hit(cache::Bytes::from_static(b"other"))
    );
    // Nothing left to delete the second time.
    assert_eq!(c.invalidate_pattern("search:drop:*").await.unwrap(), 0);
    eprintln!("SCAN invalidation of 10k among 100k keys took {took:?}");
    cleanup_prefix(svc.key_prefix()).await;
    cleanup_prefix(other.key_prefix()).await;
}

#[tokio::test]
async fn tag_invalidation_is_precise() {
    let svc = shared_service("tags").await;
    let c = svc.named("cadFileMetadata");
    let mut raw = raw_shared().await;
    c.set_tagged("meta:42", &cad_file(42, 1), MINUTE, &["file:42"])
        .await
        .unwrap();
    c.set_bytes_tagged("thumb:42", b"png", MINUTE, &["file:42", "user:7"])
        .await
        .unwrap();
    c.set_tagged("meta:43", &cad_file(43, 1), MINUTE, &["file:43", "user:7"])
        .await
        .unwrap();
    // Tag names that share a prefix with "file:42" must not be caught by it.
    c.set_tagged("meta:420", &cad_file(420, 1), MINUTE, &["file:420"])
        .await
        .unwrap();
    c.set("untagged", &1u8, MINUTE).await.unwrap();
    let list: Vec<(String, u32)> = (0..1500).map(|i| (format!("list:{i}"), i)).collect();
    let entries: Vec<_> = list
        .iter()
        .map(|(k, v)| c.entry(k, v, MINUTE, &["file:42"]).unwrap())
        .collect();
    c.set_many(&entries).await.unwrap();

    // Membership sets carry a TTL (the longest entry's plus a margin).
    let pttl: i64 = redis::cmd("PTTL")
        .arg(svc.tag_key("file:42"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 60_000 && pttl <= 66_000, "tag PTTL {pttl}");

    assert_eq!(c.invalidate_tag("file:42").await.unwrap(), 1502);
    assert_eq!(c.get::<CadFile>("meta:42").await, Lookup::Miss);
    assert_eq!(c.get_bytes("thumb:42").await, Lookup::Miss);
    assert!(
        c.mget::<u32, _>(&["list:0", "list:1499"])
            .await
            .iter()
            .all(Lookup::is_miss)
    );
    assert!(c.get::<CadFile>("meta:43").await.is_hit());
    assert!(c.get::<CadFile>("meta:420").await.is_hit());
    assert!(c.get::<u8>("untagged").await.is_hit());

    // A second tag of an already-invalidated entry does no harm; it removes only its own entries.
    assert_eq!(c.invalidate_tag("user:7").await.unwrap(), 1);
    assert_eq!(c.get::<CadFile>("meta:43").await, Lookup::Miss);
    assert!(c.get::<CadFile>("meta:420").await.is_hit());
    assert_eq!(c.invalidate_tag("never-used").await.unwrap(), 0);

    // Re-cached entries are caught by the next invalidation.
    c.set_tagged("meta:42", &cad_file(42, 1), MINUTE, &["file:42"])
        .await
        .unwrap();
    assert_eq!(c.invalidate_tag("file:42").await.unwrap(), 1);
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn tag_sets_trim_expired_members() {
    let svc = shared_service("tagtrim").await;
    let c = svc.named("searchResults");
    let mut raw = raw_shared().await;
    // Memberships outlive their value by a 5 s margin; then the next write of the tag trims them.
    c.set_bytes_tagged("short", b"x", Duration::from_millis(50), &["q"])
        .await
        .unwrap();
    let score: f64 = redis::cmd("ZSCORE")
        .arg(svc.tag_key("q"))
        .arg(svc.value_key("short"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    assert!(
        (score - now_ms - 5050.0).abs() < 2000.0,
        "score {score} vs now {now_ms}"
    );
    // Move the membership into the past instead of waiting, then write again.
    let _: i64 = redis::cmd("ZADD")
        .arg(svc.tag_key("q"))
        .arg(1)
        .arg(svc.value_key("short"))
        .query_async(&mut raw)
        .await
        .unwrap();
    c.set_bytes_tagged("long", b"y", MINUTE, &["q"])
        .await
        .unwrap();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(svc.tag_key("q"))
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(members, vec![svc.value_key("long")]);
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn lock_is_exclusive_and_release_checks_the_token() {
    let svc = shared_service("lock").await;
    let c = svc.named("userData");
    let mut raw = raw_shared().await;
    let mut tasks = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    for _ in 0..64 {
        let c = c.clone();
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.try_lock("report:9", Duration::from_secs(10)).await
        }));
    }
    let mut winners = Vec::new();
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            LockOutcome::Acquired(l) => winners.push(l),
            LockOutcome::Busy => busy += 1,
            LockOutcome::Unavailable => panic!("redis unavailable"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(busy, 63);
    let lock = winners.pop().unwrap();
    assert_eq!(lock.key(), "report:9");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(svc.lock_key("report:9"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 10_000);

    // Wrong token: refused, lock still held.
    assert!(!c.release_lock("report:9", "not-the-token").await.unwrap());
    assert!(matches!(
        c.try_lock("report:9", Duration::from_secs(10)).await,
        LockOutcome::Busy
    ));
    // Right token: released, and can be taken again.
    assert!(c.release(&lock).await.unwrap());
    assert!(
        !c.release(&lock).await.unwrap(),
        "double release is a no-op"
    );
    let again = match c.try_lock("report:9", Duration::from_millis(200)).await {
        LockOutcome::Acquired(l) => l,
        other => panic!("expected the lock, got {other:?}"),
    };
    assert_ne!(again.token(), lock.token());
    // The old holder cannot release the new holder's lock.
    assert!(!c.release(&lock).await.unwrap());
    // Short TTL: it frees itself.
    let start = Instant::now();
    loop {
        if let LockOutcome::Acquired(_) = c.try_lock("report:9", Duration::from_secs(5)).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "lock never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn undecodable_values_are_misses_and_errors() {
    let svc = shared_service("corrupt").await;
    let c = svc.named("userData");
    let mut raw = raw_shared().await;
    let _: () = redis::cmd("SET")
        .arg(svc.value_key("bad"))
        .arg(b"\x21\xff\xff\xff\xff junk".as_slice())
        .arg("EX")
        .arg(60)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(svc.value_key("other-type"))
        .arg(b"\x99")
        .arg("EX")
        .arg(60)
        .query_async(&mut raw)
        .await
        .unwrap();
    c.set("string", &"not a number", MINUTE).await.unwrap();
    assert_eq!(c.get::<u64>("bad").await, Lookup::Miss);
    assert_eq!(c.get_bytes("other-type").await, Lookup::Miss);
    assert_eq!(c.get::<u64>("string").await, Lookup::Miss);
    let s = c.stats();
    assert_eq!((s.misses, s.errors, s.hits), (3, 3, 0));
    // WRONGTYPE from Redis: an error for this call, but not a reason to open the breaker.
    let _: i64 = redis::cmd("LPUSH")
        .arg(svc.value_key("list"))
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("EXPIRE")
        .arg(svc.value_key("list"))
        .arg(60)
        .query_async(&mut raw)
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(c.get::<u64>("list").await, Lookup::Unavailable);
    }
    assert_eq!(svc.breaker_state(), cache::BreakerState::Closed);
    cleanup_prefix(svc.key_prefix()).await;
}

#[tokio::test]
async fn invalid_input_is_rejected_without_touching_redis() {
    let svc = shared_service("invalid").await;
    let c = svc.named("userData");
    assert!(matches!(
        c.set("", &1, MINUTE).await,
        Err(CacheError::InvalidInput(_))
    ));
    assert!(matches!(
        c.set("k", &1, Duration::ZERO).await,
        Err(CacheError::InvalidInput(_))
    ));
    assert!(matches!(
        c.set_tagged("k", &1, MINUTE, &[""]).await,
        Err(CacheError::InvalidInput(_))
    ));
    assert!(matches!(
        c.invalidate_pattern("").await,
        Err(CacheError::InvalidInput(_))
    ));
    assert_eq!(c.get::<u8>("").await, Lookup::Unavailable);
    assert!(matches!(
        c.try_lock("k", Duration::ZERO).await,
        LockOutcome::Unavailable
    ));
    let huge = vec![0u8; cache::DEFAULT_MAX_VALUE_BYTES + 1];
    assert!(matches!(
        c.set_bytes("k", &huge, MINUTE).await,
        Err(CacheError::InvalidInput(_))
    ));
    assert_eq!(c.stats().errors, 7);
    assert_eq!(c.stats().writes, 0);
}

#[tokio::test]
async fn counters_are_per_name() {
    let svc = shared_service("counters").await;
    let users = svc.named("userData");
    let files = svc.named("cadFileMetadata");
    users.set("u", &1u8, MINUTE).await.unwrap();
    let _ = users.get::<u8>("u").await;
    let _ = users.get::<u8>("u").await;
    let _ = files.get::<u8>("f").await;
    let _ = users.mget::<u8, _>(&["u", "x", "y"]).await;
    let snap = svc.stats();
    assert_eq!(
        (
            snap["userData"].hits,
            snap["userData"].misses,
            snap["userData"].writes
        ),
        (3, 2, 1)
    );
    assert_eq!(
        (snap["cadFileMetadata"].hits, snap["cadFileMetadata"].misses),
        (0, 1)
    );
    // A second handle with the same name shares the counters.
    assert_eq!(svc.named("userData").stats().hits, 3);
    let names: HashSet<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(names, HashSet::from(["userData", "cadFileMetadata"]));
    cleanup_prefix(svc.key_prefix()).await;
}
