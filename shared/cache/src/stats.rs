//! Per-cache-name counters (atomic, readable as a snapshot).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Live counters for one cache name.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    bypasses: AtomicU64,
    writes: AtomicU64,
}

/// A point-in-time copy of one cache name's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Keys found.
    pub hits: u64,
    /// Keys not found (or found but undecodable, which also counts as an error).
    pub misses: u64,
    /// Failed operations: Redis errors, timeouts, undecodable values.
    pub errors: u64,
    /// The subset of `errors` that were timeouts.
    pub timeouts: u64,
    /// Operations skipped because the circuit breaker was open.
    pub bypasses: u64,
    /// Values written successfully.
    pub writes: u64,
}

impl CacheStats {
    /// hits / (hits + misses), or `None` before any lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits + self.misses;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }
}

impl Counters {
    pub(crate) fn hit(&self, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn miss(&self, n: u64) {
        self.misses.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn timeout(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn bypass(&self) {
        self.bypasses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn wrote(&self, n: u64) {
        self.writes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            bypasses: self.bypasses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// Name → counters. Handles keep their own `Arc`, so the map is only touched when a handle is made.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_name: RwLock<HashMap<String, Arc<Counters>>>,
}

impl Registry {
    pub(crate) fn counters(&self, name: &str) -> Arc<Counters> {
        if let Ok(map) = self.by_name.read()
            && let Some(c) = map.get(name)
        {
            return c.clone();
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut map = self
            .by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(name.to_owned()).or_default().clone()
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, CacheStats> {
        let map = self
            .by_name
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(k, v)| (k.clone(), v.snapshot())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_shares_counters() {
        let r = Registry::default();
        r.counters("userData").hit(2);
        r.counters("userData").miss(1);
        r.counters("cadFileMetadata").timeout();
        let snap = r.snapshot();
        assert_eq!(snap["userData"].hits, 2);
        assert_eq!(snap["userData"].misses, 1);
        assert_eq!(snap["userData"].hit_ratio(), Some(2.0 / 3.0));
        assert_eq!(snap["cadFileMetadata"].errors, 1);
        assert_eq!(snap["cadFileMetadata"].timeouts, 1);
        assert_eq!(snap["cadFileMetadata"].hit_ratio(), None);
    }
}
