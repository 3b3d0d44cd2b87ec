//! The Redis real-time view: key scheme, the fields of a bucket, and parsing them back.
//!
//! Every flush adds its counts to two hashes with `HINCRBY` in one pipeline: the UTC minute's
//! `<prefix>{mon}:m:<unix minute>` and the UTC hour's `<prefix>{mon}:h:<unix hour>` (the hour
//! rollup lets a 24-hour read fetch 23 hour hashes plus the minutes at both edges instead of
//! 1440 minute hashes). Both get `EXPIRE` [`BUCKET_TTL`] on every write. The `{mon}` hash tag
//! keeps every monitoring key in one cluster slot, so a write or read pipeline is never
//! cross-slot.
//!
//! Fields (names are sanitised, so they never contain `|`):
//!
//! | field | meaning |
//! | --- | --- |
//! | `h|<service>|<METHOD> <route>|n` | requests |
//! | `h|…|s1` … `h|…|s5` | requests per status class |
//! | `h|…|b<k>` | requests in latency bucket `k` (see [`crate::histogram`]) |
//! | `h|…|t` | latency sum (µs) |
//! | `c|<cache>|hit` / `miss` / `err` / `byp` | cache lookups |
//! | `j|<queue>|ok` / `fail` / `dead` | job outcomes |
//! | `j|<queue>|b<k>` / `t` | job duration histogram / sum (µs) |
//! | `m|<service>|<per mille>` | flushes whose memory use was that many ‰ of the limit |
//! | `cs|<service>` | cold starts |
//! | `d|<service>|q` / `slow` / `t` | database queries / slow queries / time (µs) |

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::histogram::{Histogram, bucket_of};

/// Lifetime of every bucket key after its last write: 24 hours plus slack, so the oldest minute
/// (and hour) a 24-hour window needs is always still there.
pub const BUCKET_TTL: Duration = Duration::from_secs(24 * 3600 + 10 * 60);

/// Builds the Redis keys of the view under the cache's key prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub(crate) fn new(cache_prefix: &str) -> Self {
        KeySpace {
            prefix: format!("{cache_prefix}{{mon}}:"),
        }
    }

    /// The hash of one UTC minute (`unix seconds / 60`).
    pub(crate) fn minute(&self, minute: u64) -> String {
        format!("{}m:{minute}", self.prefix)
    }

    /// The hash of one UTC hour (`unix seconds / 3600`).
    pub(crate) fn hour(&self, hour: u64) -> String {
        format!("{}h:{hour}", self.prefix)
    }
}

/// Field deltas of one flush (the same deltas go to the minute and the hour hash).
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    fields: BTreeMap<String, i64>,
}

impl Deltas {
    pub(crate) fn add(&mut self, field: String, n: i64) {
        if n != 0 {
            *self.fields.entry(field).or_default() += n;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// One request of `route_key` ("METHOD route").
    pub(crate) fn http(&mut self, service: &str, route_key: &str, status: u16, latency_ms: f64) {
        let base = format!("h|{service}|{route_key}|");
        self.add(format!("{base}n"), 1);
        self.add(format!("{base}s{}", status_class(status)), 1);
        self.add(format!("{base}b{}", bucket_of(latency_ms)), 1);
        self.add(format!("{base}t"), micros(latency_ms));
    }

    /// Cache lookups by outcome.
    pub(crate) fn cache(&mut self, name: &str, counts: &CacheCounts) {
        let base = format!("c|{name}|");
        self.add(format!("{base}hit"), clamp(counts.hits));
        self.add(format!("{base}miss"), clamp(counts.misses));
        self.add(format!("{base}err"), clamp(counts.errors));
        self.add(format!("{base}byp"), clamp(counts.bypasses));
    }

    /// One job attempt.
    pub(crate) fn job(&mut self, queue: &str, outcome: &str, duration_ms: f64) {
        let base = format!("j|{queue}|");
        self.add(format!("{base}{outcome}"), 1);
        self.add(format!("{base}b{}", bucket_of(duration_ms)), 1);
        self.add(format!("{base}t"), micros(duration_ms));
    }

    /// One memory sample in per mille of the limit (clamped to 0..=1000).
    pub(crate) fn memory(&mut self, service: &str, percent: f64) {
        let permille = (percent * 10.0).floor().clamp(0.0, 1000.0) as i64;
        self.add(format!("m|{service}|{permille}"), 1);
    }

    pub(crate) fn cold_start(&mut self, service: &str) {
        self.add(format!("cs|{service}"), 1);
    }

    pub(crate) fn db(&mut self, service: &str, queries: u64, slow: u64, time_ms: f64) {
        let base = format!("d|{service}|");
        self.add(format!("{base}q"), clamp(queries));
        self.add(format!("{base}slow"), clamp(slow));
        self.add(format!("{base}t"), micros(time_ms));
    }

    /// The write pipeline: `HINCRBY` per field into both hashes, then `EXPIRE` both.
    pub(crate) fn pipeline(&self, minute_key: &str, hour_key: &str) -> redis::Pipeline {
        let mut p = redis::pipe();
        for key in [minute_key, hour_key] {
            for (field, n) in &self.fields {
                p.cmd("HINCRBY").arg(key).arg(field).arg(*n).ignore();
            }
        }
        for key in [minute_key, hour_key] {
            p.cmd("EXPIRE").arg(key).arg(BUCKET_TTL.as_secs()).ignore();
        }
        p
    }
}

/// Cache lookups of one name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheCounts {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) errors: u64,
    pub(crate) bypasses: u64,
}

impl CacheCounts {
    pub(crate) fn add(&mut self, o: &CacheCounts) {
        self.hits = self.hits.saturating_add(o.hits);
        self.misses = self.misses.saturating_add(o.misses);
        self.errors = self.errors.saturating_add(o.errors);
        self.bypasses = self.bypasses.saturating_add(o.bypasses);
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == CacheCounts::default()
    }
}

/// 1..=5 for 1xx..5xx (anything above 599 counts as 5xx).
pub(crate) fn status_class(status: u16) -> u8 {
    match status {
        0..=199 => 1,
        200..=299 => 2,
        300..=399 => 3,
        400..=499 => 4,
        _ => 5,
    }
}

fn micros(ms: f64) -> i64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ----- reading ------------------------------------------------------------------------------

/// Requests of one route (or of everything) in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HttpAgg {
    pub(crate) requests: u64,
    /// Index 0 = 1xx … 4 = 5xx.
    pub(crate) classes: [u64; 5],
    pub(crate) latency: Histogram,
    pub(crate) latency_sum_us: u64,
}

impl HttpAgg {
    pub(crate) fn merge(&mut self, o: &HttpAgg) {
        self.requests = self.requests.saturating_add(o.requests);
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a = a.saturating_add(b);
        }
        self.latency.merge(&o.latency);
        self.latency_sum_us = self.latency_sum_us.saturating_add(o.latency_sum_us);
    }
}

/// Job attempts of one queue in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JobAgg {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) dead: u64,
    pub(crate) duration: Histogram,
    pub(crate) duration_sum_us: u64,
}

impl JobAgg {
    fn merge(&mut self, o: &JobAgg) {
        self.succeeded = self.succeeded.saturating_add(o.succeeded);
        self.failed = self.failed.saturating_add(o.failed);
        self.dead = self.dead.saturating_add(o.dead);
        self.duration.merge(&o.duration);
        self.duration_sum_us = self.duration_sum_us.saturating_add(o.duration_sum_us);
    }
}

/// Per-service process figures in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceAgg {
    /// Memory samples per ‰ of the limit.
    pub(crate) memory_permille: BTreeMap<u16, u64>,
    pub(crate) cold_starts: u64,
    pub(crate) db_queries: u64,
    pub(crate) slow_queries: u64,
    pub(crate) db_time_us: u64,
}

impl ServiceAgg {
    fn merge(&mut self, o: &ServiceAgg) {
        for (&k, &n) in &o.memory_permille {
            let c = self.memory_permille.entry(k).or_default();
            *c = c.saturating_add(n);
        }
        self.cold_starts = self.cold_starts.saturating_add(o.cold_starts);
        self.db_queries = self.db_queries.saturating_add(o.db_queries);
        self.slow_queries = self.slow_queries.saturating_add(o.slow_queries);
        self.db_time_us = self.db_time_us.saturating_add(o.db_time_us);
    }
}

/// Everything in one or more buckets, keyed by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Agg {
    /// (service, "METHOD route") → requests.
    pub(crate) routes: BTreeMap<(String, String), HttpAgg>,
    pub(crate) caches: BTreeMap<String, CacheCounts>,
    pub(crate) queues: BTreeMap<String, JobAgg>,
    pub(crate) services: BTreeMap<String, ServiceAgg>,
}

impl Agg {
    /// Adds everything of `o`.
    pub(crate) fn merge(&mut self, o: &Agg) {
        for (k, v) in &o.routes {
            self.routes.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.caches {
            self.caches.entry(k.clone()).or_default().add(v);
        }
        for (k, v) in &o.queues {
            self.queues.entry(k.clone()).or_default().merge(v);
        }
        for (k, v) in &o.services {
            self.services.entry(k.clone()).or_default().merge(v);
        }
    }

    /// Parses one hash as read with `HGETALL`. Unknown or malformed fields are ignored (a newer
    /// deployment may write fields this one does not know).
    pub(crate) fn from_hash(hash: &HashMap<String, i64>) -> Agg {
        let mut a = Agg::default();
        for (field, &value) in hash {
            let Ok(n) = u64::try_from(value) else {
                continue;
            };
            let parts: Vec<&str> = field.split('|').collect();
            match parts.as_slice() {
                ["h", svc, route, stat] => {
                    let r = a
                        .routes
                        .entry(((*svc).to_owned(), (*route).to_owned()))
                        .or_default();
                    match *stat {
                        "n" => r.requests = r.requests.saturating_add(n),
                        "t" => r.latency_sum_us = r.latency_sum_us.saturating_add(n),
                        s => {
                            if let Some(c) =
                                s.strip_prefix('s').and_then(|c| c.parse::<usize>().ok())
                                && (1..=5).contains(&c)
                            {
                                r.classes[c - 1] = r.classes[c - 1].saturating_add(n);
                            } else if let Some(b) = bucket_field(s) {
                                r.latency.add_count(b, n);
                            }
                        }
                    }
                }
                ["c", name, stat] => {
                    let c = a.caches.entry((*name).to_owned()).or_default();
                    match *stat {
                        "hit" => c.hits = c.hits.saturating_add(n),
                        "miss" => c.misses = c.misses.saturating_add(n),
                        "err" => c.errors = c.errors.saturating_add(n),
                        "byp" => c.bypasses = c.bypasses.saturating_add(n),
                        _ => {}
                    }
                }
                ["j", queue, stat] => {
                    let j = a.queues.entry((*queue).to_owned()).or_default();
                    match *stat {
                        "ok" => j.succeeded = j.succeeded.saturating_add(n),
                        "fail" => j.failed = j.failed.saturating_add(n),
                        "dead" => j.dead = j.dead.saturating_add(n),
                        "t" => j.duration_sum_us = j.duration_sum_us.saturating_add(n),
                        s => {
                            if let Some(b) = bucket_field(s) {
                                j.duration.add_count(b, n);
                            }
                        }
                    }
                }
                ["m", svc, permille] => {
                    if let Ok(p) = permille.parse::<u16>()
                        && p <= 1000
                    {
                        let s = a.services.entry((*svc).to_owned()).or_default();
                        let c = s.memory_permille.entry(p).or_default();
                        *c = c.saturating_add(n);
                    }
                }
                ["cs", svc] => {
                    let s = a.services.entry((*svc).to_owned()).or_default();
                    s.cold_starts = s.cold_starts.saturating_add(n);
                }
                ["d", svc, stat] => {
                    let s = a.services.entry((*svc).to_owned()).or_default();
                    match *stat {
                        "q" => s.db_queries = s.db_queries.saturating_add(n),
                        "slow" => s.slow_queries = s.slow_queries.saturating_add(n),
                        "t" => s.db_time_us = s.db_time_us.saturating_add(n),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        a
    }
}

fn bucket_field(s: &str) -> Option<u8> {
    s.strip_prefix('b').and_then(|b| b.parse::<u8>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut d = Deltas::default();
        d.http("users-api", "GET /users/{id}", 200, 12.0);
        d.http("users-api", "GET /users/{id}", 503, 2500.0);
        d.cache(
            "userData",
            &CacheCounts {
                hits: 3,
                misses: 1,
                errors: 0,
                bypasses: 2,
            },
        );
        d.job("file-processing", "fail", 800.0);
        d.memory("users-api", 45.67);
        d.cold_start("users-api");
        d.db("users-api", 3, 1, 120.5);
        let hash: HashMap<String, i64> = d.fields.clone().into_iter().collect();
        let a = Agg::from_hash(&hash);
        let r = &a.routes[&("users-api".to_owned(), "GET /users/{id}".to_owned())];
        assert_eq!(r.requests, 2);
        assert_eq!(r.classes, [0, 1, 0, 0, 1]);
        assert_eq!(r.latency.count(), 2);
        assert_eq!(r.latency_sum_us, 2_512_000);
        assert_eq!(a.caches["userData"].bypasses, 2);
        assert_eq!(a.queues["file-processing"].failed, 1);
        let s = &a.services["users-api"];
        assert_eq!(s.memory_permille.get(&456), Some(&1));
        assert_eq!(s.cold_starts, 1);
        assert_eq!(
            (s.db_queries, s.slow_queries, s.db_time_us),
            (3, 1, 120_500)
        );
    }

    #[test]
    fn ignores_garbage() {
        let hash: HashMap<String, i64> = [
            ("h|x".to_owned(), 1),
            ("h|s|GET /|s9".to_owned(), 1),
            ("m|s|5000".to_owned(), 1),
            ("zz".to_owned(), 1),
            ("c|n|hit".to_owned(), -4),
        ]
        .into_iter()
        .collect();
        let a = Agg::from_hash(&hash);
        assert!(a.caches.is_empty());
        assert!(a.services.is_empty());
        assert_eq!(a.routes.values().map(|r| r.requests).sum::<u64>(), 0);
    }

    #[test]
    fn pipeline_writes_both_hashes_and_expires() {
        let mut d = Deltas::default();
        d.cold_start("s");
        let p = d.pipeline("k:m:1", "k:h:1");
        let cmds: Vec<Vec<u8>> = p.cmd_iter().map(|c| c.get_packed_command()).collect();
        assert_eq!(cmds.len(), 4);
        let text = String::from_utf8_lossy(&cmds.concat()).to_string();
        assert!(text.contains("HINCRBY") && text.contains("EXPIRE") && text.contains("87000"));
    }
}
