//! Configuration, from code or from the environment.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};

use crate::{BreakerConfig, CacheError};

/// Default per-operation timeout.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(50);
/// Default timeout for establishing a connection (TCP + TLS + AUTH).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "cad:";
/// Default size from which typed values are compressed.
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 1024;
/// Default largest value accepted for writing (and decompressing).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;
/// Default SCAN / ZSCAN COUNT hint.
pub const DEFAULT_SCAN_COUNT: u32 = 1000;

const MAX_PREFIX_LEN: usize = 64;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Use TLS (`rediss://`), as ElastiCache in-transit encryption requires.
    pub tls: bool,
    /// Speak the cluster protocol (ElastiCache Serverless, cluster-mode-enabled groups).
    pub cluster: bool,
    /// Database number (standalone only; must be 0 in cluster mode).
    pub db: i64,
}

impl RedisEndpoint {
    /// A plain, standalone endpoint.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RedisEndpoint {
            host: host.into(),
            port,
            tls: false,
            cluster: false,
            db: 0,
        }
    }
}

/// How the endpoint is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// Known endpoint.
    Direct(RedisEndpoint),
    /// Look it up from an ElastiCache replication group id at start-up.
    ReplicationGroup(String),
    /// Look it up from an ElastiCache Serverless cache name at start-up.
    ServerlessCache(String),
}

/// Everything the cache needs to run.
#[derive(Clone)]
pub struct CacheConfig {
    /// Endpoint or how to discover it.
    pub endpoint: EndpointSource,
    /// ACL user name (ElastiCache RBAC); `None` for password-only AUTH.
    pub username: Option<String>,
    /// AUTH password / ElastiCache auth token.
    pub password: Option<String>,
    /// PEM file of CA certificates to trust instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Upper bound on each operation (each round trip for SCAN-based invalidation).
    pub op_timeout: Duration,
    /// Upper bound on establishing a connection, used by start-up and breaker probes.
    pub connect_timeout: Duration,
    /// Prefix of every key this crate writes, e.g. `cad:` or `cad-staging:`.
    pub key_prefix: String,
    /// Circuit breaker settings.
    pub breaker: BreakerConfig,
    /// Typed values whose encoding is at least this long are LZ4-compressed.
    pub compress_threshold: usize,
    /// Largest value (uncompressed) accepted for writing or decompressing.
    pub max_value_bytes: usize,
    /// COUNT hint for SCAN / ZSCAN.
    pub scan_count: u32,
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls_ca_file", &self.tls_ca_file)
            .field("op_timeout", &self.op_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("breaker", &self.breaker)
            .field("compress_threshold", &self.compress_threshold)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("scan_count", &self.scan_count)
            .finish()
    }
}

impl CacheConfig {
    /// Defaults for everything but the endpoint.
    pub fn new(endpoint: RedisEndpoint) -> Self {
        CacheConfig {
            endpoint: EndpointSource::Direct(endpoint),
            username: None,
            password: None,
            tls_ca_file: None,
            op_timeout: DEFAULT_OP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            breaker: BreakerConfig::default(),
            compress_threshold: DEFAULT_COMPRESS_THRESHOLD,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            scan_count: DEFAULT_SCAN_COUNT,
        }
    }

    /// Defaults plus the endpoint and credentials of a `redis://` or `rediss://` URL.
    pub fn from_url(url: &str) -> Result<Self, CacheError> {
        let parsed = parse_url(url)?;
        let mut config = CacheConfig::new(parsed.endpoint);
        config.username = parsed.username;
        config.password = parsed.password;
        Ok(config)
    }

    /// Reads the process environment (see the crate README for every variable).
    pub fn from_env() -> Result<Self, CacheError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`CacheConfig::from_env`], reading variables through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CacheError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let group = get("ELASTICACHE_REPLICATION_GROUP_ID");
        let serverless = get("ELASTICACHE_SERVERLESS_CACHE_NAME");
        let url = get("REDIS_URL");
        let host = get("REDIS_HOST");
        let port = get("REDIS_PORT")
            .map(|v| parse_num::<u16>("REDIS_PORT", &v))
            .transpose()?;
        let tls = get("REDIS_TLS")
            .map(|v| parse_bool("REDIS_TLS", &v))
            .transpose()?;
        let cluster = get("REDIS_CLUSTER")
            .map(|v| parse_bool("REDIS_CLUSTER", &v))
            .transpose()?;

        let mut username = None;
        let mut password = None;
        let endpoint = match (group, serverless) {
            (Some(_), Some(_)) => {
                return Err(CacheError::Config(
                    "set only one of ELASTICACHE_REPLICATION_GROUP_ID and ELASTICACHE_SERVERLESS_CACHE_NAME".into(),
                ));
            }
            (Some(id), None) => {
                reject_with_discovery(&url, &host, port, tls, cluster)?;
                EndpointSource::ReplicationGroup(id)
            }
            (None, Some(name)) => {
                reject_with_discovery(&url, &host, port, tls, cluster)?;
                EndpointSource::ServerlessCache(name)
            }
            (None, None) => {
                let mut endpoint = match (url, host) {
                    (Some(_), Some(_)) => {
                        return Err(CacheError::Config(
                            "set only one of REDIS_URL and REDIS_HOST".into(),
                        ));
                    }
                    (Some(url), None) => {
                        if port.is_some() {
                            return Err(CacheError::Config(
                                "REDIS_PORT cannot be combined with REDIS_URL (put the port in the URL)".into(),
                            ));
                        }
                        let parsed = parse_url(&url)?;
                        username = parsed.username;
                        password = parsed.password;
                        if tls.is_some_and(|t| t != parsed.endpoint.tls) {
                            return Err(CacheError::Config(
                                "REDIS_TLS contradicts the REDIS_URL scheme (rediss:// means TLS)"
                                    .into(),
                            ));
                        }
                        parsed.endpoint
                    }
                    (None, host) => {
                        let mut e = RedisEndpoint::new(
                            host.unwrap_or_else(|| "127.0.0.1".to_owned()),
                            port.unwrap_or(6379),
                        );
                        e.tls = tls.unwrap_or(false);
                        e
                    }
                };
                if let Some(c) = cluster {
                    endpoint.cluster = c;
                }
                EndpointSource::Direct(endpoint)
            }
        };

        let mut config = CacheConfig {
            endpoint,
            username,
            password,
            ..CacheConfig::new(RedisEndpoint::new("127.0.0.1", 6379))
        };
        if let Some(u) = get("REDIS_USERNAME") {
            config.username = Some(u);
        }
        if let Some(p) = lookup("REDIS_PASSWORD").filter(|p| !p.is_empty()) {
            config.password = Some(p);
        }
        if let Some(path) = get("REDIS_TLS_CA_FILE") {
            config.tls_ca_file = Some(PathBuf::from(path));
        }
        if let Some(v) = get("CACHE_KEY_PREFIX") {
            config.key_prefix = v;
        }
        if let Some(v) = get("CACHE_OP_TIMEOUT_MS") {
            config.op_timeout = Duration::from_millis(parse_num("CACHE_OP_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("CACHE_CONNECT_TIMEOUT_MS") {
            config.connect_timeout =
                Duration::from_millis(parse_num("CACHE_CONNECT_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("CACHE_BREAKER_FAILURE_THRESHOLD") {
            config.breaker.failure_threshold = parse_num("CACHE_BREAKER_FAILURE_THRESHOLD", &v)?;
        }
        if let Some(v) = get("CACHE_BREAKER_COOL_DOWN_MS") {
            config.breaker.cool_down =
                Duration::from_millis(parse_num("CACHE_BREAKER_COOL_DOWN_MS", &v)?);
        }
        if let Some(v) = get("CACHE_COMPRESS_THRESHOLD_BYTES") {
            config.compress_threshold = parse_num("CACHE_COMPRESS_THRESHOLD_BYTES", &v)?;
        }
        if let Some(v) = get("CACHE_MAX_VALUE_BYTES") {
            config.max_value_bytes = parse_num("CACHE_MAX_VALUE_BYTES", &v)?;
        }
        if let Some(v) = get("CACHE_SCAN_COUNT") {
            config.scan_count = parse_num("CACHE_SCAN_COUNT", &v)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings that would otherwise fail later or silently misbehave.
    pub fn validate(&self) -> Result<(), CacheError> {
        validate_prefix(&self.key_prefix)?;
        if self.op_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(CacheError::Config("timeouts must be positive".into()));
        }
        if self.breaker.failure_threshold == 0 {
            return Err(CacheError::Config(
                "breaker failure threshold must be at least 1".into(),
            ));
        }
        if self.scan_count == 0 {
            return Err(CacheError::Config("scan count must be at least 1".into()));
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > u32::MAX as usize {
            return Err(CacheError::Config(
                "max value bytes must be between 1 and 4294967295".into(),
            ));
        }
        if let EndpointSource::Direct(e) = &self.endpoint {
            if e.host.is_empty() {
                return Err(CacheError::Config("empty redis host".into()));
            }
            if e.cluster && e.db != 0 {
                return Err(CacheError::Config(
                    "cluster mode only has database 0".into(),
                ));
            }
        }
        Ok(())
    }
}

fn reject_with_discovery(
    url: &Option<String>,
    host: &Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
    cluster: Option<bool>,
) -> Result<(), CacheError> {
    if url.is_some() || host.is_some() || port.is_some() || tls.is_some() || cluster.is_some() {
        return Err(CacheError::Config(
            "ElastiCache discovery decides host, port, TLS and cluster mode: unset REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_TLS and REDIS_CLUSTER".into(),
        ));
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), CacheError> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(CacheError::Config(format!(
            "key prefix longer than {MAX_PREFIX_LEN} bytes"
        )));
    }
    // Braces would become a hash tag and pin every key to one cluster slot; glob characters
    // would make pattern invalidation match outside the prefix.
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, '{' | '}' | '*' | '?' | '[' | ']' | '\\') || c.is_whitespace())
    {
        return Err(CacheError::Config(format!(
            "key prefix may not contain {c:?}"
        )));
    }
    Ok(())
}

struct ParsedUrl {
    endpoint: RedisEndpoint,
    username: Option<String>,
    password: Option<String>,
}

fn parse_url(url: &str) -> Result<ParsedUrl, CacheError> {
    let info = url
        .into_connection_info()
        .map_err(|e| CacheError::Config(format!("invalid redis URL: {e}")))?;
    let (host, port, tls) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port, false),
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => {
            if *insecure {
                return Err(CacheError::Config(
                    "rediss:// with #insecure is not supported; use REDIS_TLS_CA_FILE for a private CA".into(),
                ));
            }
            (host.clone(), *port, true)
        }
        other => {
            return Err(CacheError::Config(format!(
                "unsupported redis address {other}"
            )));
        }
    };
    let settings = info.redis_settings();
    Ok(ParsedUrl {
        endpoint: RedisEndpoint {
            host,
            port,
            tls,
            cluster: false,
            db: settings.db(),
        },
        username: settings.username().map(str::to_owned),
        password: settings.password().map(str::to_owned),
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool, CacheError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(CacheError::Config(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, CacheError> {
    value
        .trim()
        .parse()
        .map_err(|_| CacheError::Config(format!("{name} must be a number, got {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<CacheConfig, CacheError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        CacheConfig::from_lookup(|k| map.get(k).cloned())
    }

    fn direct(c: &CacheConfig) -> &RedisEndpoint {
        match &c.endpoint {
            EndpointSource::Direct(e) => e,
            other => panic!("expected a direct endpoint, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(direct(&c), &RedisEndpoint::new("127.0.0.1", 6379));
        assert_eq!(c.op_timeout, DEFAULT_OP_TIMEOUT);
        assert_eq!(c.key_prefix, "cad:");
        assert_eq!(c.breaker, BreakerConfig::default());
        assert!(c.password.is_none());
    }

    #[test]
    fn guide_variables() {
        let c = cfg(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "s3cret"),
            ("REDIS_TLS", "true"),
            ("REDIS_CLUSTER", "yes"),
            ("REDIS_USERNAME", "app"),
            ("CACHE_OP_TIMEOUT_MS", "20"),
            ("CACHE_CONNECT_TIMEOUT_MS", "700"),
            ("CACHE_KEY_PREFIX", "cad-staging:"),
            ("CACHE_BREAKER_FAILURE_THRESHOLD", "3"),
            ("CACHE_BREAKER_COOL_DOWN_MS", "2500"),
            ("CACHE_COMPRESS_THRESHOLD_BYTES", "2048"),
            ("CACHE_MAX_VALUE_BYTES", "1000000"),
            ("CACHE_SCAN_COUNT", "500"),
            ("REDIS_TLS_CA_FILE", "/etc/ca.pem"),
        ])
        .unwrap();
        let e = direct(&c);
        assert_eq!(e.host, "cache.internal");
        assert_eq!(e.port, 6380);
        assert!(e.tls && e.cluster);
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.username.as_deref(), Some("app"));
        assert_eq!(c.op_timeout, Duration::from_millis(20));
        assert_eq!(c.connect_timeout, Duration::from_millis(700));
        assert_eq!(c.key_prefix, "cad-staging:");
        assert_eq!(c.breaker.failure_threshold, 3);
        assert_eq!(c.breaker.cool_down, Duration::from_millis(2500));
        assert_eq!(c.compress_threshold, 2048);
        assert_eq!(c.max_value_bytes, 1_000_000);
        assert_eq!(c.scan_count, 500);
        assert_eq!(c.tls_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        // The password never shows in logs.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn rediss_url_with_credentials() {
        let c = cfg(&[(
            "REDIS_URL",
            "rediss://alice:p%40ss@master.x.cache.amazonaws.com:6379/2",
        )])
        .unwrap();
        let e = direct(&c);
        assert_eq!(e.host, "master.x.cache.amazonaws.com");
        assert_eq!(e.port, 6379);
        assert!(e.tls);
        assert!(!e.cluster);
        assert_eq!(e.db, 2);
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        // Explicit variables override the URL's credentials.
        let c = cfg(&[
            ("REDIS_URL", "rediss://alice:one@h:6379"),
            ("REDIS_PASSWORD", "two"),
        ])
        .unwrap();
        assert_eq!(c.password.as_deref(), Some("two"));
        assert_eq!(c.username.as_deref(), Some("alice"));
    }

    #[test]
    fn plain_url_and_cluster_flag() {
        let c = cfg(&[
            ("REDIS_URL", "redis://10.0.0.5:7000"),
            ("REDIS_CLUSTER", "true"),
        ])
        .unwrap();
        let e = direct(&c);
        assert_eq!(
            (e.host.as_str(), e.port, e.tls, e.cluster),
            ("10.0.0.5", 7000, false, true)
        );
    }

    #[test]
    fn contradictions_are_errors() {
        for vars in [
            vec![("REDIS_URL", "rediss://h:1"), ("REDIS_TLS", "false")],
            vec![("REDIS_URL", "redis://h:1"), ("REDIS_HOST", "h")],
            vec![("REDIS_URL", "redis://h:1"), ("REDIS_PORT", "2")],
            vec![
                ("ELASTICACHE_REPLICATION_GROUP_ID", "g"),
                ("REDIS_HOST", "h"),
            ],
            vec![
                ("ELASTICACHE_REPLICATION_GROUP_ID", "g"),
                ("ELASTICACHE_SERVERLESS_CACHE_NAME", "s"),
            ],
            vec![
                ("ELASTICACHE_SERVERLESS_CACHE_NAME", "s"),
                ("REDIS_TLS", "true"),
            ],
            vec![("REDIS_URL", "redis://h:1/3"), ("REDIS_CLUSTER", "true")],
            vec![("REDIS_URL", "rediss://h:1/#insecure")],
            vec![("REDIS_URL", "http://h:1")],
            vec![("REDIS_PORT", "99999")],
            vec![("REDIS_TLS", "maybe")],
            vec![("CACHE_OP_TIMEOUT_MS", "0")],
            vec![("CACHE_OP_TIMEOUT_MS", "-5")],
            vec![("CACHE_BREAKER_FAILURE_THRESHOLD", "0")],
            vec![("CACHE_KEY_PREFIX", "cad{x}:")],
            vec![("CACHE_KEY_PREFIX", "cad*:")],
        ] {
            assert!(
                matches!(cfg(&vars), Err(CacheError::Config(_))),
                "{vars:?} should be rejected"
            );
        }
    }

    #[test]
    fn discovery_sources() {
        let c = cfg(&[
            ("ELASTICACHE_REPLICATION_GROUP_ID", "cad-prod"),
            ("REDIS_PASSWORD", "tok"),
        ])
        .unwrap();
        assert_eq!(
            c.endpoint,
            EndpointSource::ReplicationGroup("cad-prod".into())
        );
        assert_eq!(c.password.as_deref(), Some("tok"));
        let c = cfg(&[("ELASTICACHE_SERVERLESS_CACHE_NAME", "cad-sls")]).unwrap();
        assert_eq!(
            c.endpoint,
            EndpointSource::ServerlessCache("cad-sls".into())
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = cfg(&[
            ("REDIS_HOST", ""),
            ("REDIS_URL", " "),
            ("CACHE_KEY_PREFIX", ""),
        ])
        .unwrap();
        assert_eq!(direct(&c).host, "127.0.0.1");
        assert_eq!(c.key_prefix, "cad:");
    }
}
