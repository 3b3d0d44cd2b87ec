//! ElastiCache endpoint discovery through the real SDK.
//!
//! Replication groups: against moto (`moto_server`, started here unless AWS_ENDPOINT_URL is set).
//! Serverless caches: moto (5.2.x) does not implement them, so a tiny local HTTP endpoint answers
//! DescribeServerlessCaches with a canned reply in the documented query-protocol XML shape.
#![cfg(feature = "discovery")]

mod common;

use aws_sdk_elasticache::Client;
use aws_sdk_elasticache::config::{BehaviorVersion, Credentials, Region};
use cache::discovery::{discover_replication_group, discover_serverless_cache, resolve_endpoint};
use cache::{CacheError, EndpointSource, RedisEndpoint};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_elasticache::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(conf)
}

#[tokio::test]
async fn replication_groups_from_moto() {
    let moto = Moto::start();
    let client = client(&moto.url);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let plain_id = format!("cad-plain-{}", &suffix[..8]);
    let clustered_id = format!("cad-clus-{}", &suffix[..8]);

    client
        .create_replication_group()
        .replication_group_id(&plain_id)
        .replication_group_description("non-cluster, no TLS")
        .engine("redis")
        .cache_node_type("cache.t4g.micro")
        .num_cache_clusters(2)
        .transit_encryption_enabled(false)
        .send()
        .await
        .expect("create plain replication group");
    client
        .create_replication_group()
        .replication_group_id(&clustered_id)
        .replication_group_description("cluster mode, TLS, AUTH")
        .engine("redis")
        .cache_node_type("cache.t4g.micro")
        .cluster_mode(aws_sdk_elasticache::types::ClusterMode::Enabled)
        .num_node_groups(3)
        .replicas_per_node_group(1)
        .port(6380)
        .transit_encryption_enabled(true)
        .auth_token("a-very-long-auth-token-123")
        .send()
        .await
        .expect("create clustered replication group");

    let plain = discover_replication_group(&client, &plain_id)
        .await
        .unwrap();
    assert!(
        plain.host.starts_with(&format!("master.{plain_id}.")),
        "{plain:?}"
    );
    assert_eq!(
        (plain.port, plain.tls, plain.cluster, plain.db),
        (6379, false, false, 0)
    );

    let clustered = resolve_endpoint(
        &client,
        &EndpointSource::ReplicationGroup(clustered_id.clone()),
    )
    .await
    .unwrap();
    assert!(
        clustered
            .host
            .starts_with(&format!("clustercfg.{clustered_id}.")),
        "{clustered:?}"
    );
    assert_eq!(
        (clustered.port, clustered.tls, clustered.cluster),
        (6380, true, true)
    );

    let missing = discover_replication_group(&client, "does-not-exist").await;
    assert!(
        matches!(missing, Err(CacheError::Discovery(_))),
        "{missing:?}"
    );

    // A direct endpoint passes through untouched.
    let direct = RedisEndpoint::new("h", 1);
    assert_eq!(
        resolve_endpoint(&client, &EndpointSource::Direct(direct.clone()))
            .await
            .unwrap(),
        direct
    );
}

/// Serves canned ElastiCache query-protocol replies until dropped.
async fn canned_serverless_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers and a Content-Length body (bounded).
                let body = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 || buf.len() > 1 << 20 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break text[end + 4..].to_string();
                        }
                    }
                };
                let (status, xml) = if !body.contains("Action=DescribeServerlessCaches") {
                    (
                        400,
                        error_xml("InvalidAction", "only DescribeServerlessCaches is canned"),
                    )
                } else if body.contains("ServerlessCacheName=cad-sls") {
                    (
                        200,
                        serverless_xml(
                            "cad-sls",
                            "available",
                            Some(("cad-sls-abc123.serverless.use1.cache.amazonaws.com", 6379)),
                        ),
                    )
                } else if body.contains("ServerlessCacheName=cad-creating") {
                    (200, serverless_xml("cad-creating", "creating", None))
                } else {
                    (404, error_xml("ServerlessCacheNotFoundFault", "not found"))
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
                    xml.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, task)
}

fn serverless_xml(name: &str, status: &str, endpoint: Option<(&str, u16)>) -> String {
    let ep = endpoint
        .map(|(h, p)| format!("<Endpoint><Address>{h}</Address><Port>{p}</Port></Endpoint><ReaderEndpoint><Address>{h}</Address><Port>6380</Port></ReaderEndpoint>"))
        .unwrap_or_default();
    format!(
        r#"<DescribeServerlessCachesResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeServerlessCachesResult>
    <ServerlessCaches>
      <member>
        <ServerlessCacheName>{name}</ServerlessCacheName>
        <Status>{status}</Status>
        <Engine>valkey</Engine>
        {ep}
      </member>
    </ServerlessCaches>
  </DescribeServerlessCachesResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</DescribeServerlessCachesResponse>"#
    )
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>0</RequestId></ErrorResponse>"#
    )
}

#[tokio::test]
async fn serverless_cache_from_canned_endpoint() {
    let (url, task) = canned_serverless_endpoint().await;
    let client = client(&url);
    let e = discover_serverless_cache(&client, "cad-sls").await.unwrap();
    assert_eq!(
        e,
        RedisEndpoint {
            host: "cad-sls-abc123.serverless.use1.cache.amazonaws.com".into(),
            port: 6379,
            tls: true,
            cluster: true,
            db: 0
        }
    );
    let e = resolve_endpoint(&client, &EndpointSource::ServerlessCache("cad-sls".into()))
        .await
        .unwrap();
    assert!(e.tls && e.cluster);
    // Still being created: no endpoint yet.
    assert!(matches!(
        discover_serverless_cache(&client, "cad-creating").await,
        Err(CacheError::Discovery(_))
    ));
    // Unknown name: the SDK's typed fault becomes a discovery error.
    let err = discover_serverless_cache(&client, "nope")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("ServerlessCacheNotFoundFault"),
        "{err}"
    );
    task.abort();
}
