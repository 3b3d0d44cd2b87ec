//! Configuration, from code or from the environment.

use std::time::Duration;

use crate::MonitorError;
use crate::report::AlertThresholds;

/// Default CloudWatch namespace.
pub const DEFAULT_NAMESPACE: &str = "CadPlatform";
/// Service name used when neither `METRICS_SERVICE` nor `AWS_LAMBDA_FUNCTION_NAME` is set.
pub const DEFAULT_SERVICE: &str = "local";
/// Queries slower than this count as slow (the guide: "Database Queries: <100ms average").
pub const DEFAULT_SLOW_QUERY: Duration = Duration::from_millis(100);

/// EMF `StorageResolution`: standard (60 s) or high resolution (1 s, billed higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageResolution {
    /// One-minute resolution (CloudWatch's default; the member is then omitted).
    #[default]
    Standard,
    /// One-second resolution.
    High,
}

/// How the HTTP layer writes a request's Redis delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisWriteMode {
    /// Spawned on the runtime after the response is ready: adds nothing to the request's
    /// latency. On Lambda a write still in flight when the environment freezes finishes (or
    /// times out and is dropped) when it thaws.
    #[default]
    Background,
    /// Awaited before the response is returned: one round trip (bounded by the cache's operation
    /// timeout, skipped at once while its circuit breaker is open) added to each request.
    Inline,
}

/// Everything the monitor needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// CloudWatch namespace of every metric (`METRICS_NAMESPACE`).
    pub namespace: String,
    /// `Service` dimension value (`METRICS_SERVICE`, else `AWS_LAMBDA_FUNCTION_NAME`).
    pub service: String,
    /// Write EMF lines (`METRICS_EMF`).
    pub emf: bool,
    /// Write the Redis real-time view when a cache is attached (`METRICS_REDIS`).
    pub redis: bool,
    /// How the HTTP layer writes to Redis (`METRICS_REDIS_WRITE` = `background` | `inline`).
    pub redis_write: RedisWriteMode,
    /// EMF storage resolution (`METRICS_STORAGE_RESOLUTION` = 60 | 1).
    pub storage_resolution: StorageResolution,
    /// Threshold of a slow query (`METRICS_SLOW_QUERY_MS`).
    pub slow_query: Duration,
    /// The function's configured memory in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by
    /// Lambda); `None` skips the memory metric.
    pub memory_limit_mb: Option<u64>,
    /// Alert thresholds for the report (the guide's values by default).
    pub thresholds: AlertThresholds,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            service: DEFAULT_SERVICE.to_owned(),
            emf: true,
            redis: true,
            redis_write: RedisWriteMode::default(),
            storage_resolution: StorageResolution::default(),
            slow_query: DEFAULT_SLOW_QUERY,
            memory_limit_mb: None,
            thresholds: AlertThresholds::default(),
        }
    }
}

impl MonitorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, MonitorError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MonitorError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut c = MonitorConfig::default();
        if let Some(ns) = get("METRICS_NAMESPACE") {
            c.namespace = ns.trim().to_owned();
        }
        if let Some(s) = get("METRICS_SERVICE").or_else(|| get("AWS_LAMBDA_FUNCTION_NAME")) {
            c.service = s.trim().to_owned();
        }
        if let Some(v) = get("METRICS_EMF") {
            c.emf = parse_bool("METRICS_EMF", &v)?;
        }
        if let Some(v) = get("METRICS_REDIS") {
            c.redis = parse_bool("METRICS_REDIS", &v)?;
        }
        if let Some(v) = get("METRICS_REDIS_WRITE") {
            c.redis_write = match v.trim().to_ascii_lowercase().as_str() {
                "background" => RedisWriteMode::Background,
                "inline" => RedisWriteMode::Inline,
                other => {
                    return Err(MonitorError::Config(format!(
                        "METRICS_REDIS_WRITE must be background or inline, not {other:?}"
                    )));
                }
            };
        }
        if let Some(v) = get("METRICS_STORAGE_RESOLUTION") {
            c.storage_resolution = match v.trim() {
                "60" => StorageResolution::Standard,
                "1" => StorageResolution::High,
                other => {
                    return Err(MonitorError::Config(format!(
                        "METRICS_STORAGE_RESOLUTION must be 60 or 1, not {other:?}"
                    )));
                }
            };
        }
        if let Some(v) = get("METRICS_SLOW_QUERY_MS") {
            let ms: u64 = v.trim().parse().map_err(|_| {
                MonitorError::Config(format!("METRICS_SLOW_QUERY_MS is not a number: {v:?}"))
            })?;
            c.slow_query = Duration::from_millis(ms);
        }
        if let Some(v) = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            let mb: u64 = v.trim().parse().map_err(|_| {
                MonitorError::Config(format!(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number: {v:?}"
                ))
            })?;
            c.memory_limit_mb = (mb > 0).then_some(mb);
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks the namespace and service name against CloudWatch's rules.
    pub fn validate(&self) -> Result<(), MonitorError> {
        let ns = &self.namespace;
        if ns.is_empty() || ns.len() > 255 {
            return Err(MonitorError::Config(
                "namespace must be 1 to 255 characters".into(),
            ));
        }
        if !ns.bytes().all(|b| (0x20..0x7f).contains(&b)) || ns.trim().is_empty() {
            return Err(MonitorError::Config(
                "namespace must be printable ASCII".into(),
            ));
        }
        if ns.starts_with("AWS/") {
            return Err(MonitorError::Config(
                "namespace must not start with AWS/ (reserved)".into(),
            ));
        }
        if self.service.trim().is_empty() {
            return Err(MonitorError::Config("service name is empty".into()));
        }
        if let Some(0) = self.memory_limit_mb {
            return Err(MonitorError::Config("memory limit must be > 0 MB".into()));
        }
        Ok(())
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, MonitorError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(MonitorError::Config(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<MonitorConfig, MonitorError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        MonitorConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.namespace, "CadPlatform");
        assert_eq!(c.service, "local");
        assert!(c.emf && c.redis);
        assert_eq!(c.memory_limit_mb, None);
        assert_eq!(c.slow_query, Duration::from_millis(100));
        assert_eq!(c.redis_write, RedisWriteMode::Background);
    }

    #[test]
    fn reads_variables() {
        let c = cfg(&[
            ("METRICS_NAMESPACE", "CadStaging"),
            ("AWS_LAMBDA_FUNCTION_NAME", "stack-UsersApi-XYZ"),
            ("METRICS_EMF", "off"),
            ("METRICS_REDIS_WRITE", "inline"),
            ("METRICS_STORAGE_RESOLUTION", "1"),
            ("METRICS_SLOW_QUERY_MS", "250"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ])
        .unwrap();
        assert_eq!(c.namespace, "CadStaging");
        assert_eq!(c.service, "stack-UsersApi-XYZ");
        assert!(!c.emf);
        assert_eq!(c.redis_write, RedisWriteMode::Inline);
        assert_eq!(c.storage_resolution, StorageResolution::High);
        assert_eq!(c.slow_query, Duration::from_millis(250));
        assert_eq!(c.memory_limit_mb, Some(512));
        // METRICS_SERVICE wins over the function name (which changes per deployment).
        let c = cfg(&[
            ("METRICS_SERVICE", "users-api"),
            ("AWS_LAMBDA_FUNCTION_NAME", "x"),
        ])
        .unwrap();
        assert_eq!(c.service, "users-api");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(cfg(&[("METRICS_NAMESPACE", "AWS/Lambda")]).is_err());
        assert!(cfg(&[("METRICS_NAMESPACE", &"n".repeat(256))]).is_err());
        assert!(cfg(&[("METRICS_NAMESPACE", "caf\u{e9}")]).is_err());
        assert!(cfg(&[("METRICS_STORAGE_RESOLUTION", "30")]).is_err());
        assert!(cfg(&[("METRICS_EMF", "maybe")]).is_err());
        assert!(cfg(&[("METRICS_SLOW_QUERY_MS", "fast")]).is_err());
        assert!(cfg(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")]).is_err());
        assert!(cfg(&[("METRICS_REDIS_WRITE", "later")]).is_err());
    }
}
