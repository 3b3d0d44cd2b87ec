//! The process-wide [`Monitor`] and the per-invocation [`Scope`] that buffers what happens during
//! one request or one batch, then flushes it as a few EMF lines and one Redis pipeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cache::{CacheService, CacheStats, NamedCache};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock, unix_millis, unix_secs};
use crate::emf::{EmfDocument, Unit};
use crate::memory;
use crate::names::{Limiter, dimension_value, method_name};
use crate::report::{PerformanceReport, ReportMethod, WINDOWS, WindowReport, evaluate_alerts};
use crate::store::{Agg, CacheCounts, Deltas, KeySpace, status_class};
use crate::{MonitorConfig, MonitorError};

/// The name the monitor's own Redis traffic counts under in the cache's statistics (and which is
/// left out of the cache metrics).
pub const MONITORING_CACHE_NAME: &str = "monitoring";
/// Distinct routes kept per process before new ones are reported as `other`.
pub const MAX_ROUTES: usize = 256;
/// Distinct cache names kept per process before new ones are reported as `other`.
pub const MAX_CACHE_NAMES: usize = 64;
/// Distinct queue names kept per process before new ones are reported as `other`.
pub const MAX_QUEUES: usize = 64;
/// Background Redis writes allowed in flight; more are dropped (and counted).
pub const MAX_IN_FLIGHT: u64 = 64;
/// Samples kept per series in one scope (e.g. job durations of one huge batch); later ones are
/// still counted in Redis but not sent to EMF.
pub const MAX_SAMPLES: usize = 10_000;
/// Hashes read per pipeline when building a report (each pipeline has the cache's op timeout).
const READ_CHUNK: usize = 16;

tokio::task_local! {
    static CURRENT: Scope;
}

/// Outcome of a cache lookup recorded by hand (CacheService traffic is picked up on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Found.
    Hit,
    /// Not found.
    Miss,
    /// Failed.
    Error,
    /// Skipped (e.g. circuit breaker open).
    Bypass,
}

/// Outcome of one job attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done.
    Succeeded,
    /// Failed; the queue will deliver it again.
    Failed,
    /// Failed for good: the last attempt, or sent to the dead-letter queue.
    Dead,
}

impl JobOutcome {
    fn field(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "ok",
            JobOutcome::Failed => "fail",
            JobOutcome::Dead => "dead",
        }
    }
}

/// What happened to a flush's Redis write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisWrite {
    /// No Redis attached, or `METRICS_REDIS=false`.
    Disabled,
    /// Nothing to write.
    Nothing,
    /// Written (awaited).
    Written,
    /// Failed or timed out (counted, dropped).
    Failed,
    /// Handed to a background task.
    Spawned,
    /// Dropped: too many background writes in flight, or no Tokio runtime.
    Dropped,
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushOutcome {
    /// EMF lines written.
    pub emf_lines: usize,
    /// Hash fields incremented (in each of the minute and hour hashes).
    pub redis_fields: usize,
    /// The Redis write.
    pub redis: RedisWrite,
}

/// Counters of the monitor itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Flushes done.
    pub flushes: u64,
    /// EMF lines written.
    pub emf_lines: u64,
    /// EMF writes that failed (stdout closed…).
    pub emf_errors: u64,
    /// Redis pipelines written.
    pub redis_writes: u64,
    /// Redis pipelines that failed or timed out.
    pub redis_errors: u64,
    /// Redis pipelines dropped without trying.
    pub redis_dropped: u64,
    /// Background writes in flight now.
    pub redis_in_flight: u64,
}

enum Sink {
    Stdout,
    Writer(Mutex<Box<dyn Write + Send>>),
}

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    emf_lines: AtomicU64,
    emf_errors: AtomicU64,
    redis_writes: AtomicU64,
    redis_errors: AtomicU64,
    redis_dropped: AtomicU64,
    in_flight: AtomicU64,
}

struct MonitorInner {
    config: MonitorConfig,
    service: String,
    cache: Option<CacheService>,
    redis: Option<NamedCache>,
    keys: Option<KeySpace>,
    clock: Arc<dyn Clock>,
    sink: Sink,
    cold: AtomicBool,
    routes: Limiter,
    cache_names: Limiter,
    queues: Limiter,
    last_cache_stats: Mutex<BTreeMap<String, CacheStats>>,
    counters: Counters,
    idle: Notify,
}

/// The process-wide performance monitor. Cheap to clone; build one per process (Lambda: before
/// `lambda_http::run` / `lambda_runtime::run`).
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<MonitorInner>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("namespace", &self.inner.config.namespace)
            .field("service", &self.inner.service)
            .field("redis", &self.inner.redis.is_some())
            .finish()
    }
}

/// Builds a [`Monitor`].
pub struct MonitorBuilder {
    config: MonitorConfig,
    cache: Option<CacheService>,
    clock: Arc<dyn Clock>,
    sink: Sink,
}

impl MonitorBuilder {
    /// Uses this configuration instead of the defaults.
    pub fn config(mut self, config: MonitorConfig) -> Self {
        self.config = config;
        self
    }

    /// Attaches the process's cache: its connection carries the Redis view, and its per-name
    /// statistics become the cache metrics.
    pub fn cache(mut self, cache: CacheService) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Uses another clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Writes EMF lines here instead of stdout (tests, or a log file locally).
    pub fn emf_writer(mut self, w: impl Write + Send + 'static) -> Self {
        self.sink = Sink::Writer(Mutex::new(Box::new(w)));
        self
    }

    /// Validates the configuration and builds the monitor.
    pub fn build(self) -> Result<Monitor, MonitorError> {
        self.config.validate()?;
        let redis_on = self.config.redis;
        let baseline = self
            .cache
            .as_ref()
            .map(CacheService::stats)
            .unwrap_or_default();
        Ok(Monitor {
            inner: Arc::new(MonitorInner {
                service: dimension_value(&self.config.service),
                redis: self
                    .cache
                    .as_ref()
                    .filter(|_| redis_on)
                    .map(|c| c.named(MONITORING_CACHE_NAME)),
                keys: self
                    .cache
                    .as_ref()
                    .filter(|_| redis_on)
                    .map(|c| KeySpace::new(c.key_prefix())),
                cache: self.cache,
                config: self.config,
                clock: self.clock,
                sink: self.sink,
                cold: AtomicBool::new(true),
                routes: Limiter::new(MAX_ROUTES),
                cache_names: Limiter::new(MAX_CACHE_NAMES),
                queues: Limiter::new(MAX_QUEUES),
                last_cache_stats: Mutex::new(baseline),
                counters: Counters::default(),
                idle: Notify::new(),
            }),
        })
    }
}

impl Monitor {
    /// A builder with the default configuration, no Redis, the system clock and stdout.
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder {
            config: MonitorConfig::default(),
            cache: None,
            clock: Arc::new(SystemClock),
            sink: Sink::Stdout,
        }
    }

    /// Configuration from the environment, EMF on stdout, the Redis view on `cache` if given.
    pub fn from_env(cache: Option<CacheService>) -> Result<Monitor, MonitorError> {
        let mut b = Monitor::builder().config(MonitorConfig::from_env()?);
        if let Some(c) = cache {
            b = b.cache(c);
        }
        b.build()
    }

    /// The configuration in use.
    pub fn config(&self) -> &MonitorConfig {
        &self.inner.config
    }

    /// The clock's current time.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// A new, empty buffer for one request or invocation.
    pub fn scope(&self) -> Scope {
        Scope {
            inner: Arc::new(ScopeInner {
                monitor: self.clone(),
                buf: Mutex::new(Buffer::default()),
            }),
        }
    }

    /// The tower layer recording every request of an axum router (apply with `Router::layer`).
    pub fn layer(&self) -> crate::MetricsLayer {
        crate::MetricsLayer::new(self.clone())
    }

    /// The monitor's own counters.
    pub fn stats(&self) -> MonitorStats {
        let c = &self.inner.counters;
        MonitorStats {
            flushes: c.flushes.load(Ordering::Relaxed),
            emf_lines: c.emf_lines.load(Ordering::Relaxed),
            emf_errors: c.emf_errors.load(Ordering::Relaxed),
            redis_writes: c.redis_writes.load(Ordering::Relaxed),
            redis_errors: c.redis_errors.load(Ordering::Relaxed),
            redis_dropped: c.redis_dropped.load(Ordering::Relaxed),
            redis_in_flight: c.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Waits until no background write is in flight (graceful shutdown, tests); false if some
    /// still are after `timeout`.
    pub async fn wait_for_background_writes(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.counters.in_flight.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.counters.in_flight.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// The report as of the clock's "now".
    pub async fn report(
        &self,
        queue_depths: &BTreeMap<String, u64>,
    ) -> Result<PerformanceReport, MonitorError> {
        self.report_at(self.now(), queue_depths).await
    }

    /// The report as of `now`: windows of the last 5, 15 and 60 minutes and 24 hours (the
    /// current minute included), and the alerts breached on the 5-minute window and the queue
    /// depths (read from SQS by the caller).
    pub async fn report_at(
        &self,
        now: SystemTime,
        queue_depths: &BTreeMap<String, u64>,
    ) -> Result<PerformanceReport, MonitorError> {
        let (Some(redis), Some(keys)) = (&self.inner.redis, &self.inner.keys) else {
            return Err(MonitorError::NoRedis);
        };
        let secs = unix_secs(now);
        let now_min = secs / 60;
        let plan = plan_24h(now_min);
        let mut minutes: BTreeSet<u64> = (now_min.saturating_sub(59)..=now_min).collect();
        minutes.extend(plan.minutes.iter().copied());
        let mut wanted: Vec<(bool, u64, String)> = minutes
            .iter()
            .map(|&m| (false, m, keys.minute(m)))
            .collect();
        wanted.extend(plan.hours.iter().map(|&h| (true, h, keys.hour(h))));

        let mut minute_aggs: HashMap<u64, Agg> = HashMap::new();
        let mut hour_aggs: HashMap<u64, Agg> = HashMap::new();
        for chunk in wanted.chunks(READ_CHUNK) {
            let mut p = redis::pipe();
            for (_, _, key) in chunk {
                p.cmd("HGETALL").arg(key);
            }
            let hashes: Vec<HashMap<String, String>> = redis.pipeline(&p).await?;
            for ((is_hour, id, _), hash) in chunk.iter().zip(hashes) {
                if hash.is_empty() {
                    continue;
                }
                let numeric: HashMap<String, i64> = hash
                    .into_iter()
                    .filter_map(|(k, v)| v.parse::<i64>().ok().map(|n| (k, n)))
                    .collect();
                let agg = Agg::from_hash(&numeric);
                if *is_hour {
                    hour_aggs.insert(*id, agg);
                } else {
                    minute_aggs.insert(*id, agg);
                }
            }
        }

        let to = to_datetime(now);
        let mut windows = Vec::with_capacity(WINDOWS.len());
        for (label, len) in WINDOWS {
            let first = now_min.saturating_sub(u64::from(len) - 1);
            let mut agg = Agg::default();
            if len <= 60 {
                for m in first..=now_min {
                    if let Some(a) = minute_aggs.get(&m) {
                        agg.merge(a);
                    }
                }
            } else {
                for m in &plan.minutes {
                    if let Some(a) = minute_aggs.get(m) {
                        agg.merge(a);
                    }
                }
                for h in &plan.hours {
                    if let Some(a) = hour_aggs.get(h) {
                        agg.merge(a);
                    }
                }
            }
            let from = to_datetime(SystemTime::UNIX_EPOCH + Duration::from_secs(first * 60));
            windows.push(WindowReport::build(
                label,
                len,
                from,
                to,
                &agg,
                queue_depths,
            ));
        }
        let thresholds = self.inner.config.thresholds.clone();
        let alerts = evaluate_alerts(&windows[0], queue_depths, &thresholds);
        Ok(PerformanceReport {
            generated_at: to,
            windows,
            alerts,
            thresholds,
            queue_depths: queue_depths.clone(),
            method: ReportMethod::default(),
        })
    }

    fn write_emf(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        // One write per flush, so lines of concurrent flushes never interleave.
        let result = match &self.inner.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Sink::Writer(w) => w
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write_all(text.as_bytes()),
        };
        let c = &self.inner.counters;
        match result {
            Ok(()) => {
                c.emf_lines.fetch_add(lines.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                c.emf_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn write_redis(&self, pipe: &redis::Pipeline) -> RedisWrite {
        let Some(redis) = &self.inner.redis else {
            return RedisWrite::Disabled;
        };
        let c = &self.inner.counters;
        match redis.pipeline::<()>(pipe).await {
            Ok(()) => {
                c.redis_writes.fetch_add(1, Ordering::Relaxed);
                RedisWrite::Written
            }
            Err(e) => {
                c.redis_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "metrics write to redis dropped");
                RedisWrite::Failed
            }
        }
    }

    fn spawn_redis(&self, pipe: redis::Pipeline) -> RedisWrite {
        let c = &self.inner.counters;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            c.redis_dropped.fetch_add(1, Ordering::Relaxed);
            return RedisWrite::Dropped;
        };
        if c.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            c.in_flight.fetch_sub(1, Ordering::AcqRel);
            c.redis_dropped.fetch_add(1, Ordering::Relaxed);
            return RedisWrite::Dropped;
        }
        let me = self.clone();
        handle.spawn(async move {
            let _guard = InFlight(&me);
            me.write_redis(&pipe).await;
        });
        RedisWrite::Spawned
    }

    /// CacheService statistics since the previous flush, per cache name.
    fn cache_deltas(&self) -> BTreeMap<String, CacheCounts> {
        let Some(cache) = &self.inner.cache else {
            return BTreeMap::new();
        };
        let now = cache.stats();
        let mut last = self
            .inner
            .last_cache_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = BTreeMap::new();
        for (name, s) in now {
            if name == MONITORING_CACHE_NAME {
                continue;
            }
            let prev = last.get(&name).copied().unwrap_or_default();
            let d = CacheCounts {
                hits: s.hits.saturating_sub(prev.hits),
                misses: s.misses.saturating_sub(prev.misses),
                errors: s.errors.saturating_sub(prev.errors),
                bypasses: s.bypasses.saturating_sub(prev.bypasses),
            };
            last.insert(name.clone(), s);
            if !d.is_empty() {
                out.insert(name, d);
            }
        }
        out
    }
}

/// Decrements the in-flight count when a background write ends (or its task is dropped).
struct InFlight<'a>(&'a Monitor);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self
            .0
            .inner
            .counters
            .in_flight
            .fetch_sub(1, Ordering::AcqRel)
            == 1
        {
            self.0.inner.idle.notify_waiters();
        }
    }
}

/// The minutes and hours making up the 24-hour window ending in minute `now_min`: whole hours as
/// hour hashes, the partial hours at both ends as minute hashes (exactly 1440 minutes).
pub(crate) struct Plan24 {
    pub(crate) minutes: Vec<u64>,
    pub(crate) hours: Vec<u64>,
}

pub(crate) fn plan_24h(now_min: u64) -> Plan24 {
    let start = now_min.saturating_sub(1439);
    let first_hour = start.div_ceil(60);
    let end_hour = (now_min + 1) / 60; // exclusive: hours ending at or before now_min
    if first_hour >= end_hour {
        return Plan24 {
            minutes: (start..=now_min).collect(),
            hours: Vec::new(),
        };
    }
    let mut minutes: Vec<u64> = (start..first_hour * 60).collect();
    minutes.extend(end_hour * 60..=now_min);
    Plan24 {
        minutes,
        hours: (first_hour..end_hour).collect(),
    }
}

fn to_datetime(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

// ----- scope -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RouteKey {
    method: &'static str,
    route: String,
}

impl RouteKey {
    fn field(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}

#[derive(Debug, Default)]
struct RouteAcc {
    /// (status, latency ms) per request.
    requests: Vec<(u16, f64)>,
}

#[derive(Debug, Default)]
struct JobAcc {
    attempts: Vec<(JobOutcome, f64)>,
    /// Attempts beyond `MAX_SAMPLES`: counted in Redis only.
    overflow: Vec<(JobOutcome, u8, i64)>,
}

#[derive(Debug, Default)]
struct Buffer {
    route: Option<RouteKey>,
    routes: BTreeMap<RouteKey, RouteAcc>,
    bytes_raw: Vec<f64>,
    bytes_compressed: Vec<f64>,
    db_queries: u64,
    db_slow: u64,
    db_ms: f64,
    caches: BTreeMap<String, CacheCounts>,
    jobs: BTreeMap<String, JobAcc>,
}

impl Buffer {
    fn has_bytes(&self) -> bool {
        !self.bytes_raw.is_empty() || !self.bytes_compressed.is_empty()
    }
}

struct ScopeInner {
    monitor: Monitor,
    buf: Mutex<Buffer>,
}

/// The metrics of one request or invocation, buffered until [`Scope::flush`].
///
/// Inside [`Scope::run`] (the HTTP layer does this for every request) the free functions of
/// [`crate::record`] record into it from anywhere in the same task.
#[derive(Clone)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

const STATUS_METRICS: [&str; 4] = ["Http2xx", "Http3xx", "Http4xx", "Http5xx"];

impl Scope {
    /// The scope of the current task, if it runs inside [`Scope::run`].
    pub fn current() -> Option<Scope> {
        CURRENT.try_with(Scope::clone).ok()
    }

    /// Runs `fut` with this scope as the task's current scope.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        CURRENT.scope(self.clone(), fut).await
    }

    pub(crate) fn enter<F: Future>(
        &self,
        fut: F,
    ) -> tokio::task::futures::TaskLocalFuture<Scope, F> {
        CURRENT.scope(self.clone(), fut)
    }

    /// The monitor this scope flushes into.
    pub fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }

    fn buf(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.inner
            .buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn route_key(&self, method: &http::Method, route: &str) -> RouteKey {
        RouteKey {
            method: method_name(method),
            route: self.inner.monitor.inner.routes.admit(route),
        }
    }

    /// Sets the route that request-level figures (bytes, database time) belong to.
    pub fn set_route(&self, method: &http::Method, route: &str) {
        let key = self.route_key(method, route);
        self.buf().route = Some(key);
    }

    /// Records one HTTP request (`route` must be a template such as `/users/{id}`).
    pub fn http(&self, method: &http::Method, route: &str, status: u16, latency: Duration) {
        let key = self.route_key(method, route);
        let mut b = self.buf();
        let acc = b.routes.entry(key).or_default();
        if acc.requests.len() < MAX_SAMPLES {
            acc.requests.push((status, millis(latency)));
        }
    }

    /// Records a cache lookup of a cache that does not go through the attached CacheService
    /// (whose statistics are collected automatically: do not record those here as well).
    pub fn cache(&self, name: &str, outcome: CacheOutcome) {
        let name = self.inner.monitor.inner.cache_names.admit(name);
        let mut b = self.buf();
        let c = b.caches.entry(name).or_default();
        match outcome {
            CacheOutcome::Hit => c.hits += 1,
            CacheOutcome::Miss => c.misses += 1,
            CacheOutcome::Error => c.errors += 1,
            CacheOutcome::Bypass => c.bypasses += 1,
        }
    }

    /// Records one database query and how long it took.
    pub fn db_query(&self, elapsed: Duration) {
        let slow = elapsed >= self.inner.monitor.inner.config.slow_query;
        let mut b = self.buf();
        b.db_queries += 1;
        b.db_slow += u64::from(slow);
        b.db_ms += millis(elapsed);
    }

    /// Records the response body size before and after compression (either may be unknown).
    pub fn response_bytes(&self, raw: Option<u64>, compressed: Option<u64>) {
        let mut b = self.buf();
        if let Some(r) = raw
            && b.bytes_raw.len() < MAX_SAMPLES
        {
            b.bytes_raw.push(r as f64);
        }
        if let Some(c) = compressed
            && b.bytes_compressed.len() < MAX_SAMPLES
        {
            b.bytes_compressed.push(c as f64);
        }
    }

    pub(crate) fn has_response_bytes(&self) -> bool {
        self.buf().has_bytes()
    }

    /// Records one job attempt on `queue` (e.g. `file-processing`).
    pub fn job(&self, queue: &str, outcome: JobOutcome, duration: Duration) {
        let queue = self.inner.monitor.inner.queues.admit(queue);
        let ms = millis(duration);
        let mut b = self.buf();
        let acc = b.jobs.entry(queue).or_default();
        if acc.attempts.len() < MAX_SAMPLES {
            acc.attempts.push((outcome, ms));
        } else if acc.overflow.len() < MAX_SAMPLES * 10 {
            acc.overflow.push((
                outcome,
                crate::histogram::bucket_of(ms),
                (ms * 1000.0) as i64,
            ));
        }
    }

    /// Writes the buffered metrics: EMF lines now, and the Redis delta awaited (bounded by the
    /// cache's operation timeout; errors are counted and dropped). Empties the buffer.
    pub async fn flush(&self) -> FlushOutcome {
        let (lines, deltas, pipe) = self.prepare();
        let monitor = &self.inner.monitor;
        monitor.write_emf(&lines);
        let redis = match pipe {
            None if monitor.inner.redis.is_none() => RedisWrite::Disabled,
            None => RedisWrite::Nothing,
            Some(p) => monitor.write_redis(&p).await,
        };
        FlushOutcome {
            emf_lines: lines.len(),
            redis_fields: deltas,
            redis,
        }
    }

    /// Like [`Scope::flush`], but the Redis write runs on a background task (at most
    /// [`MAX_IN_FLIGHT`] at once; beyond that it is dropped and counted).
    pub fn flush_in_background(&self) -> FlushOutcome {
        let (lines, deltas, pipe) = self.prepare();
        let monitor = &self.inner.monitor;
        monitor.write_emf(&lines);
        let redis = match pipe {
            None if monitor.inner.redis.is_none() => RedisWrite::Disabled,
            None => RedisWrite::Nothing,
            Some(p) => monitor.spawn_redis(p),
        };
        FlushOutcome {
            emf_lines: lines.len(),
            redis_fields: deltas,
            redis,
        }
    }

    /// Drains the buffer into EMF lines and the Redis pipeline.
    fn prepare(&self) -> (Vec<String>, usize, Option<redis::Pipeline>) {
        let m = &self.inner.monitor.inner;
        let mut buf = {
            let mut b = self.buf();
            let route = b.route.clone();
            let taken = std::mem::take(&mut *b);
            b.route = route;
            taken
        };
        m.counters.flushes.fetch_add(1, Ordering::Relaxed);
        let now = m.clock.now();
        let svc = m.service.as_str();
        let cold = m.cold.swap(false, Ordering::AcqRel);
        let memory = m
            .config
            .memory_limit_mb
            .and_then(|limit| memory::resident_mb().map(|mb| (mb, memory::percent_of(mb, limit))));
        let mut caches = buf.caches.clone();
        for (name, d) in self.inner.monitor.cache_deltas() {
            let name = m.cache_names.admit(&name);
            caches.entry(name).or_default().add(&d);
        }

        let mut docs: Vec<EmfDocument> = Vec::new();
        let mut deltas = Deltas::default();
        let route_doc = |k: &RouteKey| {
            EmfDocument::new()
                .dimension_set(&["Service", "Route", "Method"])
                .dimension_set(&["Service"])
                .dimension("Service", svc)
                .dimension("Route", &k.route)
                .dimension("Method", k.method)
        };
        let mut service_doc = EmfDocument::new()
            .dimension_set(&["Service"])
            .dimension("Service", svc)
            .with("ColdStart", Unit::Count, if cold { 1.0 } else { 0.0 });
        if let Some((mb, pct)) = memory {
            service_doc.value(
                "MemoryUtilization",
                Unit::Percent,
                (pct * 100.0).round() / 100.0,
            );
            service_doc.value("MemoryUsed", Unit::Megabytes, (mb * 100.0).round() / 100.0);
            deltas.memory(svc, pct);
        }
        if cold {
            deltas.cold_start(svc);
        }

        // Request-level figures go with the scope's route when it has one.
        let mut routed = false;
        let mut routes = std::mem::take(&mut buf.routes);
        if let Some(r) = &buf.route {
            routes.entry(r.clone()).or_default();
        }
        for (k, acc) in &routes {
            let mut doc = route_doc(k);
            let field = k.field();
            for &(status, ms) in &acc.requests {
                doc.value("Latency", Unit::Milliseconds, ms);
                doc.value("Requests", Unit::Count, 1.0);
                let class = status_class(status);
                for (i, name) in STATUS_METRICS.iter().enumerate() {
                    let is = usize::from(class) == i + 2;
                    doc.value(name, Unit::Count, if is { 1.0 } else { 0.0 });
                }
                deltas.http(svc, &field, status, ms);
            }
            if buf.route.as_ref() == Some(k) {
                routed = true;
                add_request_level(&mut doc, &buf);
            }
            if !doc.is_empty() {
                docs.push(doc);
            }
        }
        if !routed {
            add_request_level(&mut service_doc, &buf);
        }
        if buf.db_queries > 0 {
            deltas.db(svc, buf.db_queries, buf.db_slow, buf.db_ms);
        }
        docs.push(service_doc);

        for (name, c) in &caches {
            if c.is_empty() {
                continue;
            }
            docs.push(
                EmfDocument::new()
                    .dimension_set(&["Service", "Cache"])
                    .dimension_set(&["Cache"])
                    .dimension("Service", svc)
                    .dimension("Cache", name)
                    .with("CacheHits", Unit::Count, c.hits as f64)
                    .with("CacheMisses", Unit::Count, c.misses as f64)
                    .with("CacheErrors", Unit::Count, c.errors as f64)
                    .with("CacheBypasses", Unit::Count, c.bypasses as f64),
            );
            deltas.cache(name, c);
        }

        for (queue, acc) in &buf.jobs {
            let mut doc = EmfDocument::new()
                .dimension_set(&["Service", "Queue"])
                .dimension_set(&["Queue"])
                .dimension("Service", svc)
                .dimension("Queue", queue);
            let mut n = [0u64; 3];
            for &(outcome, ms) in &acc.attempts {
                doc.value("JobDuration", Unit::Milliseconds, ms);
                n[outcome as usize] += 1;
                deltas.job(queue, outcome.field(), ms);
            }
            for &(outcome, bucket, us) in &acc.overflow {
                n[outcome as usize] += 1;
                let base = format!("j|{queue}|");
                deltas.add(format!("{base}{}", outcome.field()), 1);
                deltas.add(format!("{base}b{bucket}"), 1);
                deltas.add(format!("{base}t"), us);
            }
            doc.value("JobsSucceeded", Unit::Count, n[0] as f64);
            doc.value("JobsFailed", Unit::Count, n[1] as f64);
            doc.value("JobsDead", Unit::Count, n[2] as f64);
            docs.push(doc);
        }

        let lines: Vec<String> = if m.config.emf {
            let ts = unix_millis(now);
            docs.iter()
                .flat_map(|d| d.render(&m.config.namespace, ts, m.config.storage_resolution))
                .collect()
        } else {
            Vec::new()
        };
        let fields = deltas.len();
        let pipe = match &m.keys {
            Some(keys) if !deltas.is_empty() => {
                let secs = unix_secs(now);
                Some(deltas.pipeline(&keys.minute(secs / 60), &keys.hour(secs / 3600)))
            }
            _ => None,
        };
        (lines, fields, pipe)
    }
}

/// A duration in milliseconds, exact for whole microseconds (integer nanoseconds divided once).
fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Response sizes and database figures of the scope, into `doc`.
fn add_request_level(doc: &mut EmfDocument, b: &Buffer) {
    doc.values("ResponseBytes", Unit::Bytes, &b.bytes_raw);
    doc.values("ResponseBytesCompressed", Unit::Bytes, &b.bytes_compressed);
    if b.db_queries > 0 {
        doc.value("DbTime", Unit::Milliseconds, b.db_ms);
        doc.value("DbQueries", Unit::Count, b.db_queries as f64);
        doc.value("SlowQueries", Unit::Count, b.db_slow as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_exactly_1440_minutes() {
        for now_min in [
            1_000_000u64 * 60,
            1_000_000 * 60 + 59,
            1_000_000 * 60 + 17,
            29_000_123,
        ] {
            let p = plan_24h(now_min);
            let covered = p.minutes.len() as u64 + p.hours.len() as u64 * 60;
            assert_eq!(covered, 1440, "now_min {now_min}");
            let mut all: Vec<u64> = p.minutes.clone();
            for h in &p.hours {
                all.extend(h * 60..h * 60 + 60);
            }
            all.sort_unstable();
            assert_eq!(all.first(), Some(&(now_min - 1439)));
            assert_eq!(all.last(), Some(&now_min));
            all.dedup();
            assert_eq!(all.len(), 1440);
        }
    }
}
