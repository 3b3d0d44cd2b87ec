//! ElastiCache endpoint discovery at start-up (feature `discovery`).
//!
//! * Replication group: `DescribeReplicationGroups` → the configuration endpoint when cluster mode
//!   is enabled, else the primary endpoint of the (single) node group; TLS iff
//!   `TransitEncryptionEnabled`.
//! * Serverless cache: `DescribeServerlessCaches` → its endpoint; always TLS and cluster protocol.

use std::time::Duration;

use aws_sdk_elasticache::Client;
use aws_sdk_elasticache::types::{ClusterMode, Endpoint, ReplicationGroup, ServerlessCache};

use crate::{CacheError, EndpointSource, RedisEndpoint};

/// Bound on each Describe call, so a cold start never hangs on the control plane.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves a discovery source with an SDK client built from the default AWS configuration.
pub async fn resolve_with_default_client(
    source: &EndpointSource,
) -> Result<RedisEndpoint, CacheError> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    resolve_endpoint(&Client::new(&sdk), source).await
}

/// Resolves any endpoint source (a direct endpoint is returned as is).
pub async fn resolve_endpoint(
    client: &Client,
    source: &EndpointSource,
) -> Result<RedisEndpoint, CacheError> {
    match source {
        EndpointSource::Direct(e) => Ok(e.clone()),
        EndpointSource::ReplicationGroup(id) => discover_replication_group(client, id).await,
        EndpointSource::ServerlessCache(name) => discover_serverless_cache(client, name).await,
    }
}

/// Looks up a replication group and derives host, port, TLS and cluster mode from it.
pub async fn discover_replication_group(
    client: &Client,
    replication_group_id: &str,
) -> Result<RedisEndpoint, CacheError> {
    let call = client
        .describe_replication_groups()
        .replication_group_id(replication_group_id)
        .send();
    let out = tokio::time::timeout(DESCRIBE_TIMEOUT, call)
        .await
        .map_err(|_| CacheError::Discovery("DescribeReplicationGroups timed out".into()))?
        .map_err(|e| {
            CacheError::Discovery(format!(
                "DescribeReplicationGroups {replication_group_id}: {}",
                aws_sdk_elasticache::error::DisplayErrorContext(e)
            ))
        })?;
    let group = out
        .replication_groups()
        .iter()
        .find(|g| g.replication_group_id() == Some(replication_group_id))
        .ok_or_else(|| {
            CacheError::Discovery(format!(
                "replication group {replication_group_id} not found"
            ))
        })?;
    endpoint_from_replication_group(group)
}

/// Looks up a serverless cache and returns its endpoint (TLS, cluster protocol).
pub async fn discover_serverless_cache(
    client: &Client,
    name: &str,
) -> Result<RedisEndpoint, CacheError> {
    let call = client
        .describe_serverless_caches()
        .serverless_cache_name(name)
        .send();
    let out = tokio::time::timeout(DESCRIBE_TIMEOUT, call)
        .await
        .map_err(|_| CacheError::Discovery("DescribeServerlessCaches timed out".into()))?
        .map_err(|e| {
            CacheError::Discovery(format!(
                "DescribeServerlessCaches {name}: {}",
                aws_sdk_elasticache::error::DisplayErrorContext(e)
            ))
        })?;
    let cache = out
        .serverless_caches()
        .iter()
        .find(|c| c.serverless_cache_name() == Some(name))
        .ok_or_else(|| CacheError::Discovery(format!("serverless cache {name} not found")))?;
    endpoint_from_serverless_cache(cache)
}

/// The endpoint a replication group description points to.
pub fn endpoint_from_replication_group(
    group: &ReplicationGroup,
) -> Result<RedisEndpoint, CacheError> {
    let id = group.replication_group_id().unwrap_or("?");
    let cluster = group.cluster_enabled() == Some(true)
        || matches!(group.cluster_mode(), Some(ClusterMode::Enabled));
    let tls = group.transit_encryption_enabled() == Some(true);
    let endpoint = if cluster {
        group.configuration_endpoint().ok_or_else(|| {
            CacheError::Discovery(format!(
                "cluster-mode replication group {id} has no configuration endpoint"
            ))
        })?
    } else {
        group
            .node_groups()
            .first()
            .and_then(|ng| ng.primary_endpoint())
            .ok_or_else(|| {
                CacheError::Discovery(format!("replication group {id} has no primary endpoint"))
            })?
    };
    if group.auth_token_enabled() == Some(true) {
        tracing::debug!(
            replication_group = id,
            "AUTH token enabled: REDIS_PASSWORD must hold it"
        );
    }
    let (host, port) = host_port(endpoint, id)?;
    Ok(RedisEndpoint {
        host,
        port,
        tls,
        cluster,
        db: 0,
    })
}

/// The endpoint a serverless cache description points to.
pub fn endpoint_from_serverless_cache(
    cache: &ServerlessCache,
) -> Result<RedisEndpoint, CacheError> {
    let name = cache.serverless_cache_name().unwrap_or("?");
    let endpoint = cache.endpoint().ok_or_else(|| {
        CacheError::Discovery(format!(
            "serverless cache {name} has no endpoint yet (status {:?})",
            cache.status()
        ))
    })?;
    let (host, port) = host_port(endpoint, name)?;
    Ok(RedisEndpoint {
        host,
        port,
        tls: true,
        cluster: true,
        db: 0,
    })
}

fn host_port(endpoint: &Endpoint, what: &str) -> Result<(String, u16), CacheError> {
    let host = endpoint
        .address()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CacheError::Discovery(format!("{what}: endpoint without an address")))?;
    let port = endpoint
        .port()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CacheError::Discovery(format!("{what}: endpoint without a valid port")))?;
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticache::types::NodeGroup;

    fn ep(host: &str, port: i32) -> Endpoint {
        Endpoint::builder().address(host).port(port).build()
    }

    #[test]
    fn cluster_mode_uses_configuration_endpoint() {
        let g = ReplicationGroup::builder()
            .replication_group_id("g")
            .cluster_enabled(true)
            .transit_encryption_enabled(true)
            .configuration_endpoint(ep("clustercfg.g.example", 6379))
            .node_groups(
                NodeGroup::builder()
                    .primary_endpoint(ep("primary", 1))
                    .build(),
            )
            .build();
        let e = endpoint_from_replication_group(&g).unwrap();
        assert_eq!(
            e,
            RedisEndpoint {
                host: "clustercfg.g.example".into(),
                port: 6379,
                tls: true,
                cluster: true,
                db: 0
            }
        );
    }

    #[test]
    fn non_cluster_uses_primary_endpoint() {
        let g = ReplicationGroup::builder()
            .replication_group_id("g")
            .cluster_enabled(false)
            .node_groups(
                NodeGroup::builder()
                    .primary_endpoint(ep("master.g.example", 6380))
                    .build(),
            )
            .build();
        let e = endpoint_from_replication_group(&g).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls, e.cluster),
            ("master.g.example", 6380, false, false)
        );
    }

    #[test]
    fn missing_endpoints_are_errors() {
        let g = ReplicationGroup::builder()
            .replication_group_id("g")
            .cluster_enabled(true)
            .build();
        assert!(endpoint_from_replication_group(&g).is_err());
        let g = ReplicationGroup::builder()
            .replication_group_id("g")
            .build();
        assert!(endpoint_from_replication_group(&g).is_err());
        let s = ServerlessCache::builder()
            .serverless_cache_name("s")
            .status("creating")
            .build();
        assert!(endpoint_from_serverless_cache(&s).is_err());
        let s = ServerlessCache::builder()
            .serverless_cache_name("s")
            .endpoint(ep("h", 70000))
            .build();
        assert!(endpoint_from_serverless_cache(&s).is_err());
    }

    #[test]
    fn serverless_is_tls_cluster() {
        let s = ServerlessCache::builder()
            .serverless_cache_name("s")
            .endpoint(ep("s-abc.serverless.use1.cache.amazonaws.com", 6379))
            .build();
        let e = endpoint_from_serverless_cache(&s).unwrap();
        assert!(e.tls && e.cluster);
        assert_eq!(e.port, 6379);
    }
}
