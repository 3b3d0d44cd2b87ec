//! Cluster mode against a private 3-primary Redis Cluster (killed at the end, even on failure).

mod common;

use std::time::Duration;

use cache::{CacheConfig, CacheService, LockOutcome, Lookup};
use common::*;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn cluster_mode_end_to_end() {
    let cluster = RedisCluster::start();
    let mut cfg = CacheConfig::from_url(&cluster.url()).unwrap();
    cfg.endpoint = match cfg.endpoint {
        cache::EndpointSource::Direct(mut e) => {
            e.cluster = true;
            cache::EndpointSource::Direct(e)
        }
        other => other,
    };
    cfg.key_prefix = "cad-test:".to_owned();
    cfg.op_timeout = Duration::from_secs(2);
    cfg.connect_timeout = Duration::from_secs(2);
    let svc = CacheService::connect(cfg).await.unwrap();
    assert!(svc.is_cluster());
    let c = svc.named("cadFileMetadata");

    // Our slot function agrees with the server's.
    for key in [
        "foo",
        "cad-test:v:file:1",
        "{user:1}:a",
        "a{b}c",
        "x{}y",
        "{{z}}",
        "ünïcode",
    ] {
        let server: u16 = cluster
            .cli(0, &["cluster", "keyslot", key])
            .parse()
            .unwrap();
        assert_eq!(
            cache::slot::key_slot(key.as_bytes()),
            server,
            "slot of {key:?}"
        );
    }

    // mset / mget across slots, with misses in the middle.
    let items: Vec<(String, u32)> = (0..300)
        .filter(|i| i % 7 != 3)
        .map(|i| (format!("file:{i}"), i))
        .collect();
    c.mset(&items, MINUTE).await.unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("file:{i}")).collect();
    let got = c.mget::<u32, _>(&keys).await;
    for (i, g) in got.iter().enumerate() {
        if i % 7 == 3 {
            assert_eq!(g, &Lookup::Miss, "file:{i}");
        } else {
            assert_eq!(g, &Lookup::Hit(i as u32), "file:{i}");
        }
    }
    // The keys really are spread over all three primaries.
    for n in 0..3 {
        let size: u64 = cluster.cli(n, &["dbsize"]).parse().unwrap();
        assert!(size > 50, "node {n} holds only {size} keys");
    }
    // Hash tags keep related keys together and still work.
    c.mset_bytes(
        &[("{user:1}:a", b"1".as_slice()), ("{user:1}:b", b"2")],
        MINUTE,
    )
    .await
    .unwrap();
    assert!(
        c.mget_bytes(&["{user:1}:a", "{user:1}:b"])
            .await
            .iter()
            .all(Lookup::is_hit)
    );

    // Pattern invalidation reaches every primary.
    let deleted = c.invalidate_pattern("file:1*").await.unwrap();
    let expected = (0..300)
        .filter(|i| i % 7 != 3 && i.to_string().starts_with('1'))
        .count() as u64;
    assert_eq!(deleted, expected);
    let got = c.mget::<u32, _>(&keys).await;
    for (i, g) in got.iter().enumerate() {
        let should_exist = i % 7 != 3 && !i.to_string().starts_with('1');
        assert_eq!(g.is_hit(), should_exist, "file:{i}");
    }

    // Tag invalidation across slots, precise.
    for i in 0..60u32 {
        let tag = if i % 2 == 0 {
            "project:even"
        } else {
            "project:odd"
        };
        c.set_tagged(&format!("p:{i}"), &i, MINUTE, &[tag, "project:all"])
            .await
            .unwrap();
    }
    assert_eq!(c.invalidate_tag("project:even").await.unwrap(), 30);
    let pkeys: Vec<String> = (0..60).map(|i| format!("p:{i}")).collect();
    for (i, g) in c.mget::<u32, _>(&pkeys).await.iter().enumerate() {
        assert_eq!(g.is_hit(), i % 2 == 1, "p:{i}");
    }
    assert_eq!(c.invalidate_tag("project:all").await.unwrap(), 30);
    assert!(c.mget::<u32, _>(&pkeys).await.iter().all(Lookup::is_miss));

    // Batch writes with tags across slots.
    let entries: Vec<_> = (0..200u32)
        .map(|i| c.entry(&format!("w:{i}"), &i, MINUTE, &["warm"]).unwrap())
        .collect();
    c.set_many(&entries).await.unwrap();
    assert_eq!(c.invalidate_tag("warm").await.unwrap(), 200);

    // Locks and deletes.
    let lock = match c.try_lock("job:1", Duration::from_secs(5)).await {
        LockOutcome::Acquired(l) => l,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        c.try_lock("job:1", Duration::from_secs(5)).await,
        LockOutcome::Busy
    ));
    assert!(!c.release_lock("job:1", "wrong").await.unwrap());
    assert!(c.release(&lock).await.unwrap());
    let remaining: Vec<String> = keys
        .iter()
        .filter(|k| !k.starts_with("file:1"))
        .cloned()
        .collect();
    let n = c.delete_many(&remaining).await.unwrap();
    assert_eq!(
        n,
        (0..300)
            .filter(|i| i % 7 != 3 && !i.to_string().starts_with('1'))
            .count() as u64
    );
    assert_eq!(c.stats().errors, 0);
    drop(cluster);
}

/// The ElastiCache Serverless shape: cluster protocol over TLS with AUTH.
#[tokio::test]
async fn cluster_over_tls_with_auth() {
    let certs = temp_dir("cluster-tls");
    make_certs(&certs);
    let cluster = RedisCluster::start_with(Some(&certs), Some("cluster-secret"));
    let mut cfg =
        CacheConfig::from_url(&format!("rediss://127.0.0.1:{}", cluster.nodes[0].port)).unwrap();
    cfg.endpoint = match cfg.endpoint {
        cache::EndpointSource::Direct(mut e) => {
            e.cluster = true;
            cache::EndpointSource::Direct(e)
        }
        other => other,
    };
    cfg.password = Some("cluster-secret".into());
    cfg.tls_ca_file = Some(certs.join("ca.pem"));
    cfg.key_prefix = "cad-tls:".to_owned();
    cfg.op_timeout = Duration::from_secs(2);
    cfg.connect_timeout = Duration::from_secs(2);
    let svc = CacheService::connect(cfg.clone()).await.unwrap();
    let c = svc.named("userData");
    let items: Vec<(String, u32)> = (0..100).map(|i| (format!("u:{i}"), i)).collect();
    c.mset(&items, MINUTE).await.unwrap();
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    assert!(c.mget::<u32, _>(&keys).await.iter().all(Lookup::is_hit));
    for n in 0..3 {
        let size: u64 = cluster.cli(n, &["dbsize"]).parse().unwrap();
        assert!(size > 10, "node {n} holds only {size} keys");
    }
    c.set_tagged("tagged", &1u8, MINUTE, &["t"]).await.unwrap();
    assert_eq!(c.invalidate_tag("t").await.unwrap(), 1);
    assert_eq!(c.invalidate_pattern("u:*").await.unwrap(), 100);
    assert_eq!(c.stats().errors, 0);

    // Without the password the cluster refuses us: unavailable, not an error at start-up.
    let mut nopw = cfg.clone();
    nopw.password = None;
    nopw.op_timeout = Duration::from_millis(500);
    nopw.connect_timeout = Duration::from_millis(500);
    let svc = CacheService::connect(nopw).await.unwrap();
    assert_eq!(
        svc.named("userData").get::<u32>("u:1").await,
        Lookup::Unavailable
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&certs);
}
