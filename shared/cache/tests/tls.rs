//! TLS (`rediss://`) and AUTH against a private TLS-only redis-server with a self-signed
//! certificate made at test time (Debian's redis-server is built with TLS support).

mod common;

use std::path::Path;
use std::time::Duration;

use cache::{CacheConfig, CacheService, Lookup};
use common::*;

fn tls_config(port: u16, ca: Option<&Path>) -> CacheConfig {
    let mut c = CacheConfig::from_url(&format!("rediss://127.0.0.1:{port}")).unwrap();
    c.tls_ca_file = ca.map(Path::to_path_buf);
    c.key_prefix = unique_prefix("tls");
    c.op_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c
}

#[tokio::test]
async fn tls_with_password_and_acl_user() {
    let certs = temp_dir("tls-certs");
    make_certs(&certs);
    let port = free_port();
    let ca = certs.join("ca.pem");
    let mut args = tls_args(&certs);
    args.extend(
        [
            "--requirepass",
            "default-secret",
            "--user",
            "alice",
            "on",
            ">alice-secret",
            "~*",
            "&*",
            "+@all",
        ]
        .map(str::to_owned),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = RedisServer::start_tls(port, &refs);

    // Password only (AUTH <password>), trusting our CA.
    let mut cfg = tls_config(port, Some(&ca));
    cfg.password = Some("default-secret".into());
    let svc = CacheService::connect(cfg).await.unwrap();
    let c = svc.named("userData");
    c.set("u:1", &"Ada", Duration::from_secs(60)).await.unwrap();
    assert_eq!(c.get::<String>("u:1").await, Lookup::Hit("Ada".into()));

    // ACL user (AUTH <user> <password>), credentials from the URL.
    let mut cfg =
        CacheConfig::from_url(&format!("rediss://alice:alice-secret@127.0.0.1:{port}")).unwrap();
    cfg.tls_ca_file = Some(ca.clone());
    cfg.op_timeout = Duration::from_secs(2);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.key_prefix = svc.key_prefix().to_owned();
    let alice = CacheService::connect(cfg).await.unwrap();
    assert_eq!(
        alice.named("userData").get::<String>("u:1").await,
        Lookup::Hit("Ada".into())
    );

    // Wrong password: unavailable, not a panic.
    let mut cfg = tls_config(port, Some(&ca));
    cfg.password = Some("wrong".into());
    let bad = CacheService::connect(cfg).await.unwrap();
    assert_eq!(
        bad.named("userData").get::<String>("u:1").await,
        Lookup::Unavailable
    );

    // Certificate not trusted (system roots only): the handshake is refused.
    let mut cfg = tls_config(port, None);
    cfg.password = Some("default-secret".into());
    let untrusted = CacheService::connect(cfg).await.unwrap();
    assert_eq!(
        untrusted.named("userData").get::<String>("u:1").await,
        Lookup::Unavailable
    );

    // Plain TCP to a TLS port does not work either.
    let mut cfg = CacheConfig::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    cfg.password = Some("default-secret".into());
    cfg.op_timeout = Duration::from_millis(500);
    cfg.connect_timeout = Duration::from_millis(500);
    let plain = CacheService::connect(cfg).await.unwrap();
    assert_eq!(
        plain.named("userData").get::<String>("u:1").await,
        Lookup::Unavailable
    );

    drop(server);
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn rediss_url_and_env_parsing() {
    let c = CacheConfig::from_lookup(|k| match k {
        "REDIS_URL" => {
            Some("rediss://:tok@clustercfg.cad.abc.use1.cache.amazonaws.com:6379".into())
        }
        "REDIS_CLUSTER" => Some("true".into()),
        "REDIS_TLS_CA_FILE" => Some("/opt/ca.pem".into()),
        _ => None,
    })
    .unwrap();
    match &c.endpoint {
        cache::EndpointSource::Direct(e) => {
            assert!(e.tls && e.cluster);
            assert_eq!(e.host, "clustercfg.cad.abc.use1.cache.amazonaws.com");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.password.as_deref(), Some("tok"));
    assert_eq!(c.username, None);
}
