//! Circuit breaker: skip Redis after repeated failures, probe again after a cool-down.
//!
//! Lock-free on the hot path: a closed breaker costs one atomic load per operation, plus one
//! more after a success that follows a failure.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Circuit breaker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed operations (errors or timeouts) that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe is allowed.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(5),
        }
    }
}

/// Observable breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Operations go to Redis.
    Closed,
    /// Operations are skipped until the cool-down has passed.
    Open,
    /// One probe is running; operations are still skipped.
    HalfOpen,
}

/// Whether an operation may go to Redis.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Go ahead.
    Allowed,
    /// Skip Redis; if `start_probe`, this caller won the right to start the single probe.
    Rejected { start_probe: bool },
}

/// The breaker state machine (time is passed in so it can be tested deterministically).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: AtomicU8,
    failures: AtomicU32,
    open_until_ms: AtomicU64,
    trips: AtomicU64,
    base: Instant,
    threshold: u32,
    cool_down_ms: u64,
}

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new(config: &BreakerConfig) -> Self {
        Breaker {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            trips: AtomicU64::new(0),
            base: Instant::now(),
            threshold: config.failure_threshold.max(1),
            cool_down_ms: u64::try_from(config.cool_down.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Current state.
    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// How many times the breaker went from closed to open.
    pub(crate) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// Decides whether an operation may use Redis now.
    pub(crate) fn admit(&self) -> Admission {
        self.admit_at(Instant::now())
    }

    pub(crate) fn admit_at(&self, now: Instant) -> Admission {
        match self.state.load(Ordering::Acquire) {
            CLOSED => Admission::Allowed,
            OPEN => {
                let start_probe = self.ms(now) >= self.open_until_ms.load(Ordering::Acquire)
                    && self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                Admission::Rejected { start_probe }
            }
            _ => Admission::Rejected { start_probe: false },
        }
    }

    /// Records a successful operation.
    pub(crate) fn on_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records a failed operation; returns true if this failure opened the breaker.
    pub(crate) fn on_failure(&self) -> bool {
        self.on_failure_at(Instant::now())
    }

    pub(crate) fn on_failure_at(&self, now: Instant) -> bool {
        let n = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n < self.threshold || self.state.load(Ordering::Acquire) != CLOSED {
            return false;
        }
        // Publish the deadline before the state so nobody sees OPEN with a stale deadline.
        self.open_until_ms.store(
            self.ms(now).saturating_add(self.cool_down_ms),
            Ordering::Release,
        );
        let tripped = self
            .state
            .compare_exchange(CLOSED, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if tripped {
            self.trips.fetch_add(1, Ordering::Relaxed);
        }
        tripped
    }

    /// The probe reached Redis: close the breaker.
    pub(crate) fn probe_succeeded(&self) {
        self.failures.store(0, Ordering::Release);
        self.state.store(CLOSED, Ordering::Release);
    }

    /// The probe failed (or was abandoned): stay open for another cool-down.
    pub(crate) fn probe_failed(&self) {
        self.probe_failed_at(Instant::now());
    }

    pub(crate) fn probe_failed_at(&self, now: Instant) {
        self.open_until_ms.store(
            self.ms(now).saturating_add(self.cool_down_ms),
            Ordering::Release,
        );
        self.state.store(OPEN, Ordering::Release);
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cool_ms: u64) -> Breaker {
        Breaker::new(&BreakerConfig {
            failure_threshold: threshold,
            cool_down: Duration::from_millis(cool_ms),
        })
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker(3, 1000);
        let t0 = Instant::now();
        assert!(!b.on_failure_at(t0));
        assert!(!b.on_failure_at(t0));
        assert_eq!(b.admit_at(t0), Admission::Allowed);
        assert!(b.on_failure_at(t0));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.trips(), 1);
        assert_eq!(
            b.admit_at(t0 + Duration::from_millis(999)),
            Admission::Rejected { start_probe: false }
        );
    }

    #[test]
    fn success_resets_the_count() {
        let b = breaker(3, 1000);
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        b.on_success();
        assert!(!b.on_failure_at(t0));
        assert!(!b.on_failure_at(t0));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn exactly_one_probe_after_cool_down() {
        let b = breaker(1, 100);
        let t0 = Instant::now();
        assert!(b.on_failure_at(t0));
        let later = t0 + Duration::from_millis(150);
        assert_eq!(b.admit_at(later), Admission::Rejected { start_probe: true });
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Everyone else is still rejected while the probe runs.
        assert_eq!(
            b.admit_at(later),
            Admission::Rejected { start_probe: false }
        );
        b.probe_succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit_at(later), Admission::Allowed);
    }

    #[test]
    fn failed_probe_restarts_the_cool_down() {
        let b = breaker(1, 100);
        let t0 = Instant::now();
        b.on_failure_at(t0);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.admit_at(t1), Admission::Rejected { start_probe: true });
        b.probe_failed_at(t1);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit_at(t1 + Duration::from_millis(50)),
            Admission::Rejected { start_probe: false }
        );
        assert_eq!(
            b.admit_at(t1 + Duration::from_millis(100)),
            Admission::Rejected { start_probe: true }
        );
    }

    #[test]
    fn concurrent_probe_race_has_one_winner() {
        let b = std::sync::Arc::new(breaker(1, 0));
        b.on_failure();
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || {
                        usize::from(b.admit() == Admission::Rejected { start_probe: true })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(winners, 1);
    }
}
