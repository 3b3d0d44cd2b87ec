//! `CacheService` and the per-name handle `NamedCache`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::future::try_join_all;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, Value, cmd};
use serde::{Serialize, de::DeserializeOwned};

use crate::breaker::{Admission, Breaker};
use crate::codec::Codec;
use crate::conn::{self, Conn, ConnSettings};
use crate::slot::key_slot;
use crate::stats::{Counters, Registry};
use crate::{BreakerState, CacheConfig, CacheError, CacheStats, EndpointSource, RedisEndpoint};

/// Longest accepted cache key, tag or pattern (bytes).
pub const MAX_KEY_LEN: usize = 1024;
/// Tag memberships outlive their entry by this much, so a membership is never trimmed while the
/// value it points to can still be read (the value is written a moment after its membership).
const TAG_TTL_MARGIN_MS: u64 = 5_000;
/// Keys per MGET / commands per pipeline chunk, to bound reply sizes.
const BATCH: usize = 500;

/// Records tag memberships: one sorted set per tag, member = value key, score = expiry (ms, server
/// clock). Trims expired members on every write so a busy tag stays as small as its live entries.
/// KEYS[1] = tag set; ARGV = ttl_ms, member, ttl_ms, member, ...
const TAG_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local longest = 0
for i = 1, #ARGV, 2 do
  local ttl = tonumber(ARGV[i])
  if ttl > longest then longest = ttl end
  redis.call('ZADD', KEYS[1], 'GT', now + ttl, ARGV[i + 1])
end
if redis.call('PTTL', KEYS[1]) < longest then
  redis.call('PEXPIRE', KEYS[1], longest)
end
return 1
";

/// Compare-and-delete: only the holder of the token may release the lock.
static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Result of a read. The cache never fails a request: `Unavailable` means "go to the source".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Found and decoded.
    Hit(T),
    /// Not in the cache (or stored in a form that no longer decodes).
    Miss,
    /// Redis could not be asked: error, timeout or breaker open.
    Unavailable,
}

impl<T> Lookup<T> {
    /// The value if it was a hit.
    pub fn hit(self) -> Option<T> {
        match self {
            Lookup::Hit(v) => Some(v),
            _ => None,
        }
    }

    /// True for `Hit`.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// True for `Miss`.
    pub fn is_miss(&self) -> bool {
        matches!(self, Lookup::Miss)
    }

    /// True for `Unavailable`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Lookup::Unavailable)
    }

    /// Transforms a hit's value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Hit(v) => Lookup::Hit(f(v)),
            Lookup::Miss => Lookup::Miss,
            Lookup::Unavailable => Lookup::Unavailable,
        }
    }
}

/// Result of [`NamedCache::try_lock`].
#[derive(Debug)]
pub enum LockOutcome {
    /// This caller holds the lock until it releases it or the TTL passes.
    Acquired(CacheLock),
    /// Someone else holds it (e.g. is already computing the value).
    Busy,
    /// Redis could not be asked; the caller should proceed without the lock.
    Unavailable,
}

/// A held stampede lock; release it with [`NamedCache::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "release the lock when done, or it is held until its TTL passes"]
pub struct CacheLock {
    key: String,
    token: String,
}

impl CacheLock {
    /// The cache key the lock is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The random token that proves ownership.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// One value to write with [`NamedCache::set_many`], built by [`NamedCache::entry`] or
/// [`NamedCache::entry_bytes`] (so it is already validated and encoded).
#[derive(Debug, Clone)]
pub struct Entry {
    key: String,
    value: Vec<u8>,
    ttl_ms: u64,
    tags: Vec<String>,
}

/// The process-wide cache: one multiplexed Redis connection, a circuit breaker and counters.
///
/// Cheap to clone; build it once per process (Lambda: outside the handler) and reuse it.
#[derive(Clone)]
pub struct CacheService {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ArcSwap<Conn>,
    settings: ConnSettings,
    breaker: Breaker,
    registry: Registry,
    codec: Codec,
    value_prefix: String,
    tag_prefix: String,
    lock_prefix: String,
    key_prefix: String,
    op_timeout: Duration,
    scan_count: u32,
    cluster: bool,
}

impl std::fmt::Debug for CacheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("endpoint", &self.inner.settings.endpoint)
            .field("key_prefix", &self.inner.key_prefix)
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

impl CacheService {
    /// Builds the service and waits (at most the connect timeout) for a first connection.
    ///
    /// Only configuration problems are errors: if Redis is down the service is still returned and
    /// operations report `Unavailable` until it comes back. With an ElastiCache source the
    /// endpoint is discovered first (feature `discovery`). Must run inside a Tokio runtime.
    pub async fn connect(config: CacheConfig) -> Result<Self, CacheError> {
        config.validate()?;
        let endpoint = match &config.endpoint {
            EndpointSource::Direct(e) => e.clone(),
            #[cfg(feature = "discovery")]
            source => crate::discovery::resolve_with_default_client(source).await?,
            #[cfg(not(feature = "discovery"))]
            _ => {
                return Err(CacheError::Config(
                    "ElastiCache discovery needs the `discovery` feature".into(),
                ));
            }
        };
        Self::connect_to(endpoint, config).await
    }

    /// Reads the configuration from the environment, discovers the endpoint if asked, connects.
    pub async fn from_env() -> Result<Self, CacheError> {
        Self::connect(CacheConfig::from_env()?).await
    }

    async fn connect_to(endpoint: RedisEndpoint, config: CacheConfig) -> Result<Self, CacheError> {
        let ca_pem =
            match &config.tls_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    CacheError::Config(format!("cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
        let settings = ConnSettings {
            endpoint: endpoint.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            ca_pem,
            connect_timeout: config.connect_timeout,
            op_timeout: config.op_timeout,
        };
        let mut first = conn::build(&settings)?;
        match tokio::time::timeout(config.connect_timeout, conn::ping(&mut first)).await {
            Ok(Ok(())) => {
                tracing::debug!(host = %endpoint.host, port = endpoint.port, "cache connected")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, host = %endpoint.host, "cache not reachable at start-up; continuing without it")
            }
            Err(_) => {
                tracing::warn!(host = %endpoint.host, "cache connect timed out at start-up; continuing without it")
            }
        }
        let prefix = config.key_prefix.clone();
        Ok(CacheService {
            inner: Arc::new(Inner {
                conn: ArcSwap::from_pointee(first),
                breaker: Breaker::new(&config.breaker),
                registry: Registry::default(),
                codec: Codec::new(config.compress_threshold, config.max_value_bytes),
                value_prefix: format!("{prefix}v:"),
                tag_prefix: format!("{prefix}t:"),
                lock_prefix: format!("{prefix}l:"),
                key_prefix: prefix,
                op_timeout: config.op_timeout,
                scan_count: config.scan_count,
                cluster: endpoint.cluster,
                settings,
            }),
        })
    }

    /// A handle whose operations count under `name` (e.g. "userData", "cadFileMetadata").
    pub fn named(&self, name: &str) -> NamedCache {
        NamedCache {
            svc: self.clone(),
            name: Arc::from(name),
            counters: self.inner.registry.counters(name),
        }
    }

    /// Counters of every name used so far.
    pub fn stats(&self) -> BTreeMap<String, CacheStats> {
        self.inner.registry.snapshot()
    }

    /// Current circuit breaker state.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// How many times the breaker has opened since start-up.
    pub fn breaker_trips(&self) -> u64 {
        self.inner.breaker.trips()
    }

    /// True when talking the cluster protocol.
    pub fn is_cluster(&self) -> bool {
        self.inner.cluster
    }

    /// The configured key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// The Redis key a cache key's value is stored under (`<prefix>v:<key>`).
    pub fn value_key(&self, key: &str) -> String {
        join(&self.inner.value_prefix, key)
    }

    /// The Redis key of a tag's membership set (`<prefix>t:<tag>`).
    pub fn tag_key(&self, tag: &str) -> String {
        join(&self.inner.tag_prefix, tag)
    }

    /// The Redis key of a stampede lock (`<prefix>l:<key>`).
    pub fn lock_key(&self, key: &str) -> String {
        join(&self.inner.lock_prefix, key)
    }
}

impl Inner {
    /// Runs one operation through the breaker and the timeout, keeping the counters.
    async fn run<T, F, Fut>(self: &Arc<Self>, counters: &Counters, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        if let Admission::Rejected { start_probe } = self.breaker.admit() {
            if start_probe {
                self.spawn_probe();
            }
            counters.bypass();
            return Err(CacheError::BreakerOpen);
        }
        let conn = Conn::clone(&self.conn.load());
        match tokio::time::timeout(self.op_timeout, op(conn)).await {
            Ok(Ok(v)) => {
                self.breaker.on_success();
                Ok(v)
            }
            Ok(Err(e)) => {
                counters.error();
                match &e {
                    CacheError::Redis(re) if conn::is_availability_error(re) => {
                        self.record_failure(&e)
                    }
                    // Redis answered: it is up, whatever it thought of the request.
                    _ => self.breaker.on_success(),
                }
                Err(e)
            }
            Err(_) => {
                counters.timeout();
                let e = CacheError::Timeout(self.op_timeout);
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    fn record_failure(&self, e: &CacheError) {
        if self.breaker.on_failure() {
            tracing::warn!(error = %e, "cache circuit breaker opened");
        }
    }

    /// Probes Redis in the background on a brand-new connection (so a half-open TCP connection
    /// or a stale DNS answer after a failover cannot keep the breaker open), then swaps it in.
    fn spawn_probe(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.breaker.probe_failed();
            return;
        };
        let inner = self.clone();
        handle.spawn(async move {
            let guard = ProbeGuard {
                breaker: &inner.breaker,
                done: false,
            };
            let fresh = match conn::build(&inner.settings) {
                Ok(mut c) => {
                    match tokio::time::timeout(inner.settings.connect_timeout, conn::ping(&mut c))
                        .await
                    {
                        Ok(Ok(())) => Some(c),
                        _ => None,
                    }
                }
                Err(_) => None,
            };
            match fresh {
                Some(c) => {
                    inner.conn.store(Arc::new(c));
                    guard.finish(true);
                    tracing::info!("cache circuit breaker closed: redis reachable again");
                }
                None => guard.finish(false),
            }
        });
    }
}

/// Puts the breaker back to open if the probe task is dropped before it finishes.
struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    done: bool,
}

impl ProbeGuard<'_> {
    fn finish(mut self, ok: bool) {
        self.done = true;
        if ok {
            self.breaker.probe_succeeded();
        } else {
            self.breaker.probe_failed();
        }
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.probe_failed();
        }
    }
}

/// A view of the [`CacheService`] whose operations count under one cache name.
#[derive(Clone)]
pub struct NamedCache {
    svc: CacheService,
    name: Arc<str>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for NamedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedCache")
            .field("name", &self.name)
            .finish()
    }
}

impl NamedCache {
    /// The cache name counters are kept under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This name's counters.
    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot()
    }

    /// The service this handle belongs to.
    pub fn service(&self) -> &CacheService {
        &self.svc
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.svc.inner
    }

    /// Runs a caller-built pipeline on the shared connection, with the operation timeout and the
    /// circuit breaker, counting failures under this name (for callers such as the monitoring
    /// crate that need commands this API does not wrap, e.g. `HINCRBY` + `EXPIRE`).
    ///
    /// Keys are sent verbatim: prefix them with [`CacheService::key_prefix`] yourself. In cluster
    /// mode every key of the pipeline must hash to one slot (share a `{hash tag}`), otherwise
    /// Redis answers CROSSSLOT. Hit, miss and write counters are not touched.
    pub async fn pipeline<T: redis::FromRedisValue + Send>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, CacheError> {
        self.inner()
            .run(&self.counters, |mut c| async move {
                let reply: T = pipe.query_async(&mut c).await?;
                Ok(reply)
            })
            .await
    }

    // ----- reads -------------------------------------------------------------------------------

    /// Reads and decodes a typed value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Lookup<T> {
        match self.get_stored(key).await {
            Some(Some(stored)) => self.decode_typed(&stored),
            Some(None) => {
                self.counters.miss(1);
                Lookup::Miss
            }
            None => Lookup::Unavailable,
        }
    }

    /// Reads raw bytes (as written by [`NamedCache::set_bytes`]).
    pub async fn get_bytes(&self, key: &str) -> Lookup<Bytes> {
        match self.get_stored(key).await {
            Some(Some(stored)) => self.decode_bytes(stored),
            Some(None) => {
                self.counters.miss(1);
                Lookup::Miss
            }
            None => Lookup::Unavailable,
        }
    }

    /// Reads many typed values in as few round trips as possible; results are in key order.
    pub async fn mget<T: DeserializeOwned, K: AsRef<str>>(&self, keys: &[K]) -> Vec<Lookup<T>> {
        match self.mget_stored(keys).await {
            Some(values) => values
                .into_iter()
                .map(|v| match v {
                    Some(stored) => self.decode_typed(&stored),
                    None => {
                        self.counters.miss(1);
                        Lookup::Miss
                    }
                })
                .collect(),
            None => keys.iter().map(|_| Lookup::Unavailable).collect(),
        }
    }

    /// Reads many raw values; results are in key order.
    pub async fn mget_bytes<K: AsRef<str>>(&self, keys: &[K]) -> Vec<Lookup<Bytes>> {
        match self.mget_stored(keys).await {
            Some(values) => values
                .into_iter()
                .map(|v| match v {
                    Some(stored) => self.decode_bytes(stored),
                    None => {
                        self.counters.miss(1);
                        Lookup::Miss
                    }
                })
                .collect(),
            None => keys.iter().map(|_| Lookup::Unavailable).collect(),
        }
    }

    /// `None` = unavailable, `Some(None)` = miss.
    async fn get_stored(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let full = match self.value_key(key) {
            Ok(k) => k,
            Err(_) => {
                self.counters.error();
                return None;
            }
        };
        self.inner()
            .run(&self.counters, |mut c| async move {
                let v: Option<Vec<u8>> = cmd("GET").arg(&full).query_async(&mut c).await?;
                Ok(v)
            })
            .await
            .ok()
    }

    async fn mget_stored<K: AsRef<str>>(&self, keys: &[K]) -> Option<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Some(Vec::new());
        }
        if keys.iter().any(|k| check_name("key", k.as_ref()).is_err()) {
            self.counters.error();
            return None;
        }
        let prefix = &self.inner().value_prefix;
        if !self.inner().cluster && keys.len() <= BATCH {
            // The usual standalone case: one MGET, replies already in key order. The command is
            // built through one scratch buffer instead of one String per key.
            let mut command = cmd("MGET");
            let mut buf = String::with_capacity(prefix.len() + 64);
            for k in keys {
                buf.clear();
                buf.push_str(prefix);
                buf.push_str(k.as_ref());
                command.arg(buf.as_str());
            }
            let n = keys.len();
            return self
                .inner()
                .run(&self.counters, |mut c| async move {
                    let vals: Vec<Option<Vec<u8>>> = command.query_async(&mut c).await?;
                    if vals.len() != n {
                        return Err(CacheError::Protocol(format!(
                            "MGET returned {} values for {n} keys",
                            vals.len()
                        )));
                    }
                    Ok(vals)
                })
                .await
                .ok();
        }
        let full: Vec<String> = keys.iter().map(|k| join(prefix, k.as_ref())).collect();
        let groups = self.groups(full.iter().map(String::as_str));
        let full = &full;
        self.inner()
            .run(&self.counters, |c| async move {
                let mget = |idx: &Vec<usize>| {
                    let mut c = c.clone();
                    let mut command = cmd("MGET");
                    for &i in idx {
                        command.arg(&full[i]);
                    }
                    async move {
                        let vals: Vec<Option<Vec<u8>>> = command.query_async(&mut c).await?;
                        Ok::<_, CacheError>(vals)
                    }
                };
                // One group (the usual standalone case): no join machinery.
                let replies = if let [only] = groups.as_slice() {
                    vec![mget(only).await?]
                } else {
                    try_join_all(groups.iter().map(mget)).await?
                };
                let mut out: Vec<Option<Vec<u8>>> = vec![None; full.len()];
                for (idx, vals) in groups.iter().zip(replies) {
                    if vals.len() != idx.len() {
                        return Err(CacheError::Protocol(format!(
                            "MGET returned {} values for {} keys",
                            vals.len(),
                            idx.len()
                        )));
                    }
                    for (&i, v) in idx.iter().zip(vals) {
                        out[i] = v;
                    }
                }
                Ok(out)
            })
            .await
            .ok()
    }

    fn decode_typed<T: DeserializeOwned>(&self, stored: &[u8]) -> Lookup<T> {
        match self.inner().codec.decode_value(stored) {
            Ok(v) => {
                self.counters.hit(1);
                Lookup::Hit(v)
            }
            Err(e) => {
                // Typically a type changed between deployments: treat as a miss so the caller
                // recomputes and overwrites it.
                tracing::debug!(cache = %self.name, error = %e.0, "undecodable cache value");
                self.counters.error();
                self.counters.miss(1);
                Lookup::Miss
            }
        }
    }

    fn decode_bytes(&self, stored: Vec<u8>) -> Lookup<Bytes> {
        match self.inner().codec.decode_raw(stored) {
            Ok(v) => {
                self.counters.hit(1);
                Lookup::Hit(v)
            }
            Err(e) => {
                tracing::debug!(cache = %self.name, error = %e.0, "undecodable cache value");
                self.counters.error();
                self.counters.miss(1);
                Lookup::Miss
            }
        }
    }

    // ----- writes ------------------------------------------------------------------------------

    /// Encodes one typed value for [`NamedCache::set_many`].
    pub fn entry<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
        tags: &[&str],
    ) -> Result<Entry, CacheError> {
        let value = self.inner().codec.encode_value(value)?;
        self.make_entry(key, value, ttl, tags)
    }

    /// Wraps raw bytes for [`NamedCache::set_many`].
    pub fn entry_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        tags: &[&str],
    ) -> Result<Entry, CacheError> {
        let value = self.inner().codec.encode_raw(bytes)?;
        self.make_entry(key, value, ttl, tags)
    }

    fn make_entry(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[&str],
    ) -> Result<Entry, CacheError> {
        let key = self.value_key(key)?;
        let ttl_ms = ttl_ms(ttl)?;
        let tags = tags
            .iter()
            .map(|t| {
                check_name("tag", t)?;
                Ok(join(&self.inner().tag_prefix, t))
            })
            .collect::<Result<Vec<_>, CacheError>>()?;
        Ok(Entry {
            key,
            value,
            ttl_ms,
            tags,
        })
    }

    /// Stores a typed value for `ttl`.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.set_tagged(key, value, ttl, &[]).await
    }

    /// Stores a typed value for `ttl`, invalidated also by any of `tags`.
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
        tags: &[&str],
    ) -> Result<(), CacheError> {
        let entry = self.checked(self.entry(key, value, ttl, tags))?;
        self.set_many(std::slice::from_ref(&entry)).await
    }

    /// Stores raw bytes for `ttl`.
    pub async fn set_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.set_bytes_tagged(key, bytes, ttl, &[]).await
    }

    /// Stores raw bytes for `ttl`, invalidated also by any of `tags`.
    pub async fn set_bytes_tagged(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        tags: &[&str],
    ) -> Result<(), CacheError> {
        let entry = self.checked(self.entry_bytes(key, bytes, ttl, tags))?;
        self.set_many(std::slice::from_ref(&entry)).await
    }

    /// Stores many typed values with one TTL, pipelined.
    pub async fn mset<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, T)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let entries = items
            .iter()
            .map(|(k, v)| self.entry(k.as_ref(), v, ttl, &[]))
            .collect::<Result<Vec<_>, _>>();
        let entries = self.checked(entries)?;
        self.set_many(&entries).await
    }

    /// Stores many raw values with one TTL, pipelined.
    pub async fn mset_bytes<K: AsRef<str>, V: AsRef<[u8]>>(
        &self,
        items: &[(K, V)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let entries = items
            .iter()
            .map(|(k, v)| self.entry_bytes(k.as_ref(), v.as_ref(), ttl, &[]))
            .collect::<Result<Vec<_>, _>>();
        let entries = self.checked(entries)?;
        self.set_many(&entries).await
    }

    /// Writes prepared entries (each with its own TTL and tags) in two pipelined phases: tag
    /// memberships first, values second, so a value is never stored without its tags.
    pub async fn set_many(&self, entries: &[Entry]) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let cluster = self.inner().cluster;
        let result = self
            .inner()
            .run(&self.counters, |c| async move {
                let mut by_tag: HashMap<&str, Vec<(u64, &str)>> = HashMap::new();
                for e in entries {
                    for t in &e.tags {
                        by_tag
                            .entry(t.as_str())
                            .or_default()
                            .push((e.ttl_ms.saturating_add(TAG_TTL_MARGIN_MS), e.key.as_str()));
                    }
                }
                if !by_tag.is_empty() {
                    let mut commands = Vec::new();
                    for (tag, members) in &by_tag {
                        for chunk in members.chunks(BATCH) {
                            let mut c = cmd("EVAL");
                            c.arg(TAG_SCRIPT).arg(1).arg(*tag);
                            for (ttl, member) in chunk {
                                c.arg(*ttl).arg(*member);
                            }
                            commands.push((key_slot(tag.as_bytes()), c));
                        }
                    }
                    exec_grouped(&c, cluster, commands).await?;
                }
                let commands = entries
                    .iter()
                    .map(|e| {
                        let mut c = cmd("SET");
                        c.arg(&e.key).arg(&e.value).arg("PX").arg(e.ttl_ms);
                        (key_slot(e.key.as_bytes()), c)
                    })
                    .collect();
                exec_grouped(&c, cluster, commands).await?;
                Ok(())
            })
            .await;
        if result.is_ok() {
            self.counters.wrote(entries.len() as u64);
        }
        result
    }

    // ----- deletes and invalidation ------------------------------------------------------------

    /// Deletes one key; true if it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.delete_many(&[key]).await? > 0)
    }

    /// Deletes keys (grouped by slot in cluster mode); returns how many existed.
    pub async fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64, CacheError> {
        let full = keys
            .iter()
            .map(|k| self.value_key(k.as_ref()))
            .collect::<Result<Vec<_>, _>>();
        let full = self.checked(full)?;
        let full: Vec<Vec<u8>> = full.into_iter().map(String::into_bytes).collect();
        let cluster = self.inner().cluster;
        let full = &full;
        self.inner()
            .run(&self.counters, |c| async move {
                unlink(&c, cluster, full).await
            })
            .await
    }

    /// Deletes every cached value whose key matches the glob `pattern` (e.g. `user:42:*`), using
    /// SCAN (never KEYS) on every primary. Keys outside this service's prefix are never touched.
    /// Each SCAN / UNLINK round trip has the operation timeout. Returns how many were deleted.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        self.checked(check_name("pattern", pattern))?;
        let full_pattern = join(&self.inner().value_prefix, pattern);
        if !self.inner().cluster {
            return self.scan_delete(None, &full_pattern).await;
        }
        let primaries = self
            .inner()
            .run(&self.counters, |mut c| async move {
                let v: Value = cmd("CLUSTER").arg("SLOTS").query_async(&mut c).await?;
                primaries_from_slots(v)
            })
            .await?;
        let counts = try_join_all(
            primaries
                .iter()
                .map(|node| self.scan_delete(Some(node), &full_pattern)),
        )
        .await?;
        Ok(counts.into_iter().sum())
    }

    async fn scan_delete(
        &self,
        node: Option<&(String, u16)>,
        full_pattern: &str,
    ) -> Result<u64, CacheError> {
        let cluster = self.inner().cluster;
        let count = self.inner().scan_count;
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys) = self
                .inner()
                .run(&self.counters, |c| async move {
                    let mut scan = cmd("SCAN");
                    scan.arg(cursor)
                        .arg("MATCH")
                        .arg(full_pattern)
                        .arg("COUNT")
                        .arg(count);
                    let reply: (u64, Vec<Vec<u8>>) = match (c, node) {
                        (Conn::Cluster(mut cc), Some((host, port))) => {
                            let routing =
                                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                    host: host.clone(),
                                    port: *port,
                                });
                            redis::from_redis_value(cc.route_command(scan, routing).await?)
                                .map_err(redis::RedisError::from)?
                        }
                        (mut c, _) => scan.query_async(&mut c).await?,
                    };
                    Ok(reply)
                })
                .await?;
            if !keys.is_empty() {
                let keys = &keys;
                deleted += self
                    .inner()
                    .run(&self.counters, |c| async move {
                        unlink(&c, cluster, keys).await
                    })
                    .await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Deletes every entry written with `tag` (and only those), reading the tag's membership set
    /// with ZSCAN: no keyspace scan. Returns how many values were deleted.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, CacheError> {
        self.checked(check_name("tag", tag))?;
        let tag_key = join(&self.inner().tag_prefix, tag);
        let tag_key = &tag_key;
        let cluster = self.inner().cluster;
        let count = self.inner().scan_count;
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, flat) = self
                .inner()
                .run(&self.counters, |mut c| async move {
                    let reply: (u64, Vec<Vec<u8>>) = cmd("ZSCAN")
                        .arg(tag_key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut c)
                        .await?;
                    Ok(reply)
                })
                .await?;
            // ZSCAN replies member, score, member, score, ...
            let members: Vec<Vec<u8>> = flat.into_iter().step_by(2).collect();
            if !members.is_empty() {
                let members = &members;
                deleted += self
                    .inner()
                    .run(&self.counters, |c| async move {
                        unlink(&c, cluster, members).await
                    })
                    .await?;
            }
            if next == 0 {
                // Memberships are kept (they expire on their own): a value computed before the
                // invalidation but written after it is still caught by the next invalidation.
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    // ----- stampede lock -----------------------------------------------------------------------

    /// Tries to take a short lock for `key` (`SET NX PX` with a random token).
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> LockOutcome {
        let (lock_key, ttl_ms) = match check_name("key", key).and_then(|_| ttl_ms(ttl)) {
            Ok(ms) => (join(&self.inner().lock_prefix, key), ms),
            Err(_) => {
                self.counters.error();
                return LockOutcome::Unavailable;
            }
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        let token_ref = &token;
        let lock_key = &lock_key;
        let reply = self
            .inner()
            .run(&self.counters, |mut c| async move {
                let r: Option<String> = cmd("SET")
                    .arg(lock_key)
                    .arg(token_ref)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await?;
                Ok(r)
            })
            .await;
        match reply {
            Ok(Some(_)) => LockOutcome::Acquired(CacheLock {
                key: key.to_owned(),
                token,
            }),
            Ok(None) => LockOutcome::Busy,
            Err(_) => LockOutcome::Unavailable,
        }
    }

    /// Releases a lock taken by [`NamedCache::try_lock`]; false if it was no longer ours.
    pub async fn release(&self, lock: &CacheLock) -> Result<bool, CacheError> {
        self.release_lock(&lock.key, &lock.token).await
    }

    /// Releases the lock on `key` only if it is still held with `token` (compare-and-delete).
    pub async fn release_lock(&self, key: &str, token: &str) -> Result<bool, CacheError> {
        self.checked(check_name("key", key))?;
        let lock_key = join(&self.inner().lock_prefix, key);
        let lock_key = &lock_key;
        self.inner()
            .run(&self.counters, |mut c| async move {
                let n: i64 = RELEASE_SCRIPT
                    .key(lock_key)
                    .arg(token)
                    .invoke_async(&mut c)
                    .await?;
                Ok(n == 1)
            })
            .await
    }

    // ----- helpers -----------------------------------------------------------------------------

    fn value_key(&self, key: &str) -> Result<String, CacheError> {
        check_name("key", key)?;
        Ok(join(&self.inner().value_prefix, key))
    }

    /// Counts input errors too, so a caller bug shows up in the error counter.
    fn checked<T>(&self, r: Result<T, CacheError>) -> Result<T, CacheError> {
        if r.is_err() {
            self.counters.error();
        }
        r
    }

    /// Index groups for multi-key reads: same slot (cluster) and at most `BATCH` keys each.
    fn groups<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Vec<Vec<usize>> {
        let indexed: Vec<(usize, &str)> = keys.enumerate().collect();
        if !self.inner().cluster {
            return indexed
                .chunks(BATCH)
                .map(|c| c.iter().map(|(i, _)| *i).collect())
                .collect();
        }
        let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (i, k) in indexed {
            by_slot.entry(key_slot(k.as_bytes())).or_default().push(i);
        }
        by_slot
            .into_values()
            .flat_map(|idx| idx.chunks(BATCH).map(<[usize]>::to_vec).collect::<Vec<_>>())
            .collect()
    }
}

fn join(prefix: &str, key: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + key.len());
    s.push_str(prefix);
    s.push_str(key);
    s
}

fn check_name(what: &str, s: &str) -> Result<(), CacheError> {
    if s.is_empty() {
        return Err(CacheError::InvalidInput(format!("empty {what}")));
    }
    if s.len() > MAX_KEY_LEN {
        return Err(CacheError::InvalidInput(format!(
            "{what} longer than {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

fn ttl_ms(ttl: Duration) -> Result<u64, CacheError> {
    let ms = u64::try_from(ttl.as_millis())
        .map_err(|_| CacheError::InvalidInput("TTL too large".into()))?;
    if ms == 0 {
        return Err(CacheError::InvalidInput("TTL must be at least 1 ms".into()));
    }
    // Redis rejects expire times that overflow when added to the current time.
    if ms > i64::MAX as u64 / 2 {
        return Err(CacheError::InvalidInput("TTL too large".into()));
    }
    Ok(ms)
}

/// Sends `(slot, command)` pairs as pipelines: one pipeline per slot in cluster mode (so each hits
/// one node), chunks of `BATCH` otherwise; all pipelines concurrently.
async fn exec_grouped(
    conn: &Conn,
    cluster: bool,
    mut commands: Vec<(u16, Cmd)>,
) -> Result<(), CacheError> {
    // Fast path for the common single write: a plain command, no pipeline machinery.
    if commands.len() == 1
        && let Some((_, single)) = commands.pop()
    {
        let mut c = conn.clone();
        single.exec_async(&mut c).await?;
        return Ok(());
    }
    let mut pipes: Vec<Pipeline> = Vec::new();
    if cluster {
        let mut by_slot: BTreeMap<u16, Pipeline> = BTreeMap::new();
        for (slot, c) in commands {
            by_slot.entry(slot).or_default().add_command(c).ignore();
        }
        pipes.extend(by_slot.into_values());
    } else {
        let mut current = Pipeline::new();
        let mut n = 0;
        for (_, c) in commands {
            current.add_command(c).ignore();
            n += 1;
            if n == BATCH {
                pipes.push(std::mem::take(&mut current));
                n = 0;
            }
        }
        if n > 0 {
            pipes.push(current);
        }
    }
    if let [only] = pipes.as_slice() {
        let mut c = conn.clone();
        only.exec_async(&mut c).await?;
        return Ok(());
    }
    try_join_all(pipes.iter().map(|p| {
        let mut c = conn.clone();
        async move {
            p.exec_async(&mut c).await?;
            Ok::<_, CacheError>(())
        }
    }))
    .await?;
    Ok(())
}

/// UNLINKs keys, one command per slot in cluster mode; returns how many existed.
async fn unlink(conn: &Conn, cluster: bool, keys: &[Vec<u8>]) -> Result<u64, CacheError> {
    let mut groups: Vec<Vec<&[u8]>> = Vec::new();
    if cluster {
        let mut by_slot: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
        for k in keys {
            by_slot.entry(key_slot(k)).or_default().push(k);
        }
        for g in by_slot.into_values() {
            groups.extend(g.chunks(BATCH).map(<[&[u8]]>::to_vec));
        }
    } else {
        groups.extend(
            keys.chunks(BATCH)
                .map(|c| c.iter().map(Vec::as_slice).collect()),
        );
    }
    let counts = try_join_all(groups.iter().map(|g| {
        let mut c = conn.clone();
        let mut command = cmd("UNLINK");
        for k in g {
            command.arg(*k);
        }
        async move {
            let n: u64 = command.query_async(&mut c).await?;
            Ok::<_, CacheError>(n)
        }
    }))
    .await?;
    Ok(counts.into_iter().sum())
}

/// Primary `(host, port)` of every slot range in a `CLUSTER SLOTS` reply.
fn primaries_from_slots(v: Value) -> Result<Vec<(String, u16)>, CacheError> {
    let bad = |what: &str| CacheError::Protocol(format!("CLUSTER SLOTS: {what}"));
    let Value::Array(ranges) = v else {
        return Err(bad("not an array"));
    };
    let mut out: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(items) = range else {
            return Err(bad("range is not an array"));
        };
        let Some(Value::Array(primary)) = items.get(2) else {
            return Err(bad("range without a primary"));
        };
        let host = match primary.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => return Err(bad("primary without a host")),
        };
        let port = match primary.get(1) {
            Some(Value::Int(p)) => u16::try_from(*p).map_err(|_| bad("port out of range"))?,
            _ => return Err(bad("primary without a port")),
        };
        if host.is_empty() || host == "?" {
            return Err(bad("primary with an unknown endpoint"));
        }
        if !out.iter().any(|(h, p)| *h == host && *p == port) {
            out.push((host, port));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert!(ttl_ms(Duration::ZERO).is_err());
        assert!(ttl_ms(Duration::from_micros(999)).is_err());
        assert_eq!(ttl_ms(Duration::from_secs(300)).unwrap(), 300_000);
        assert!(ttl_ms(Duration::MAX).is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("key", "").is_err());
        assert!(check_name("key", &"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(check_name("key", "user:1").is_ok());
    }

    #[test]
    fn parses_cluster_slots() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let v = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 6379),
                node("10.0.0.4", 6379),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 6379),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16000),
                node("10.0.0.3", 6379),
            ]),
            Value::Array(vec![
                Value::Int(16001),
                Value::Int(16383),
                node("10.0.0.3", 6379),
            ]),
        ]);
        assert_eq!(
            primaries_from_slots(v).unwrap(),
            vec![
                ("10.0.0.1".to_owned(), 6379),
                ("10.0.0.2".to_owned(), 6379),
                ("10.0.0.3".to_owned(), 6379)
            ]
        );
        assert!(primaries_from_slots(Value::Int(1)).is_err());
        let unknown = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            node("?", 1),
        ])]);
        assert!(primaries_from_slots(unknown).is_err());
    }

    #[test]
    fn lookup_helpers() {
        assert_eq!(Lookup::Hit(2).map(|v| v * 2), Lookup::Hit(4));
        assert!(Lookup::<u8>::Miss.is_miss());
        assert!(Lookup::<u8>::Unavailable.is_unavailable());
        assert_eq!(Lookup::Hit(1).hit(), Some(1));
        assert_eq!(Lookup::<u8>::Miss.hit(), None);
    }
}
