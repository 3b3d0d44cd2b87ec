//! Shared test helpers: EMF capture and validation, the shared Redis with unique prefixes.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache::{CacheConfig, CacheService};
use monitoring::{ManualClock, Monitor, MonitorConfig};
use serde_json::Value;

/// A `Write` that keeps everything written, readable as lines.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Every line written so far (without the newline).
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).expect("EMF output is UTF-8");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "every line ends with a newline"
        );
        text.lines().map(str::to_owned).collect()
    }

    /// Every line, parsed and validated against the EMF rules.
    pub fn documents(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| validate_emf(l).unwrap_or_else(|e| panic!("invalid EMF: {e}\n{l}")))
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

fn schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../emf_schema.json")).unwrap();
        jsonschema::validator_for(&schema).expect("schema compiles")
    })
}

/// Validates one log line as an EMF document: the JSON schema, then the rules the schema cannot
/// express (references resolve to root members of the right type, value-array length, sizes).
pub fn validate_emf(line: &str) -> Result<Value, String> {
    if line.len() > 1_048_576 {
        return Err("event larger than 1 MB".into());
    }
    // "a valid JSON object with no additional data at the beginning or end".
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = doc.as_object().ok_or("root is not an object")?;
    let errors: Vec<String> = schema()
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let ts = doc["_aws"]["Timestamp"]
        .as_u64()
        .ok_or("Timestamp not u64")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // CloudWatch accepts data points from two weeks back to two hours ahead.
    if ts + 14 * 86_400_000 < now || ts > now + 2 * 3_600_000 {
        return Err(format!(
            "Timestamp {ts} outside CloudWatch's accepted range"
        ));
    }
    for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
        let mut dim_keys = BTreeSet::new();
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                let key = key.as_str().unwrap();
                dim_keys.insert(key.to_owned());
                let v = root
                    .get(key)
                    .ok_or_else(|| format!("dimension {key} not on the root"))?;
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("dimension {key} is not a string"))?;
                if s.is_empty() || s.len() > 1024 || s.trim().is_empty() {
                    return Err(format!("dimension {key} value length/blank: {s:?}"));
                }
                if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(format!("dimension {key} value not printable ASCII: {s:?}"));
                }
                if key.starts_with(':') {
                    return Err(format!("dimension name {key} starts with ':'"));
                }
            }
        }
        let mut names = BTreeSet::new();
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            if !names.insert(name.to_owned()) {
                return Err(format!("metric {name} defined twice"));
            }
            if dim_keys.contains(name) {
                return Err(format!("{name} is both a dimension and a metric"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(a)) => {
                    if a.is_empty() || a.len() > 100 {
                        return Err(format!("metric {name} has {} values", a.len()));
                    }
                    if !a.iter().all(Value::is_number) {
                        return Err(format!("metric {name} has a non-numeric value"));
                    }
                }
                Some(_) => return Err(format!("metric {name} is not numeric")),
                None => return Err(format!("metric {name} not on the root")),
            }
        }
    }
    Ok(doc)
}

/// Directive of a document (the crate writes one per line).
pub fn directive(doc: &Value) -> &Value {
    &doc["_aws"]["CloudWatchMetrics"][0]
}

/// Metric names defined in a document.
pub fn metric_names(doc: &Value) -> Vec<String> {
    directive(doc)["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect()
}

/// Unit of a metric in a document.
pub fn unit_of(doc: &Value, name: &str) -> Option<String> {
    directive(doc)["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Unit"].as_str().map(str::to_owned))
}

/// A metric's values (a single number counts as one value).
pub fn values(doc: &Value, name: &str) -> Vec<f64> {
    match &doc[name] {
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
        _ => Vec::new(),
    }
}

/// Documents defining metric `name`.
pub fn docs_with<'a>(docs: &'a [Value], name: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| metric_names(d).iter().any(|n| n == name))
        .collect()
}

pub fn shared_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn unique_prefix(name: &str) -> String {
    format!("test-monitoring:{name}:{}:", uuid::Uuid::new_v4().simple())
}

/// A CacheService on the shared Redis with `prefix` (generous timeouts: the machine is busy).
pub async fn cache_with_prefix(prefix: &str) -> CacheService {
    let mut c = CacheConfig::from_url(&shared_url()).unwrap();
    c.key_prefix = prefix.to_owned();
    c.op_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    CacheService::connect(c).await.unwrap()
}

/// A monitor ("process") on the shared Redis under `prefix`, with a manual clock and captured EMF.
pub async fn process(
    prefix: &str,
    service: &str,
    clock: Arc<ManualClock>,
) -> (Monitor, Capture, CacheService) {
    let cache = cache_with_prefix(prefix).await;
    let capture = Capture::default();
    let config = MonitorConfig {
        service: service.to_owned(),
        ..MonitorConfig::default()
    };
    let m = Monitor::builder()
        .config(config)
        .cache(cache.clone())
        .clock(clock)
        .emf_writer(capture.clone())
        .build()
        .unwrap();
    (m, capture, cache)
}

/// A manual clock at `minute` (unix minutes) + `second`.
pub fn clock_at(minute: u64, second: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(minute, second)))
}

pub fn at(minute: u64, second: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(minute * 60 + second)
}

/// The current unix minute.
pub fn this_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

pub async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix` (SCAN, never KEYS).
pub async fn keys_under(prefix: &str) -> Vec<String> {
    let mut c = raw_redis().await;
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        out.extend(keys);
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

/// Deletes every key under `prefix` (never FLUSHDB).
pub async fn cleanup(prefix: &str) {
    let keys = keys_under(prefix).await;
    if !keys.is_empty() {
        let mut c = raw_redis().await;
        let _: u64 = redis::cmd("UNLINK")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

pub async fn hgetall(key: &str) -> HashMap<String, i64> {
    let mut c = raw_redis().await;
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}
