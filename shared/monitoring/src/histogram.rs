//! Log-scale latency histogram whose buckets are the same everywhere, so counts written by any
//! process in any minute can simply be added and percentiles read from the sum.
//!
//! Bucket 0 holds values below 1 ms. Bucket `k` (1..=80) holds `[2^((k-1)/4), 2^(k/4))` ms: four
//! buckets per doubling, up to 2^20 ms (about 17.5 minutes, beyond Lambda's 15-minute limit).
//! Bucket 81 holds everything longer. A percentile is reported as the geometric middle of the
//! bucket that holds the nearest-rank sample, so it is within [`RELATIVE_ERROR`] of the exact
//! nearest-rank percentile for values of 1 ms or more, and within 0.5 ms below 1 ms.

use std::collections::BTreeMap;

/// Buckets per doubling of the value.
const PER_DOUBLING: f64 = 4.0;
/// Index of the last bounded bucket; `OVERFLOW` holds everything above it.
const LAST_BOUNDED: u8 = 80;
/// Index of the overflow bucket (values of 2^20 ms and more).
pub const OVERFLOW: u8 = LAST_BOUNDED + 1;

/// Largest relative error of a reported percentile for values of at least 1 ms: half a bucket
/// on the log scale, `2^(1/8) - 1` ≈ 0.0905.
pub const RELATIVE_ERROR: f64 = 0.090_507_732_665_257_66;

/// Largest absolute error (ms) of a reported percentile below 1 ms (bucket 0 reports 0.5 ms).
pub const SUB_MS_ABSOLUTE_ERROR: f64 = 0.5;

/// The bucket a duration in milliseconds falls into. Negative and NaN values count as 0.
pub fn bucket_of(ms: f64) -> u8 {
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    let k = (ms.log2() * PER_DOUBLING).floor() + 1.0;
    if k > f64::from(LAST_BOUNDED) {
        OVERFLOW
    } else {
        // 1..=80 by the checks above.
        k as u8
    }
}

/// Lower and upper bound (ms) of a bucket; the overflow bucket is unbounded above.
pub fn bounds(bucket: u8) -> (f64, f64) {
    match bucket {
        0 => (0.0, 1.0),
        b if b >= OVERFLOW => (
            2f64.powf(f64::from(LAST_BOUNDED) / PER_DOUBLING),
            f64::INFINITY,
        ),
        b => (
            2f64.powf(f64::from(b - 1) / PER_DOUBLING),
            2f64.powf(f64::from(b) / PER_DOUBLING),
        ),
    }
}

/// The value reported for samples in a bucket: 0.5 ms for bucket 0, the geometric middle for
/// bounded buckets, the lower bound for the overflow bucket.
pub fn representative(bucket: u8) -> f64 {
    match bucket {
        0 => 0.5,
        b if b >= OVERFLOW => bounds(b).0,
        b => 2f64.powf((f64::from(b) - 0.5) / PER_DOUBLING),
    }
}

/// Counts per bucket (only non-empty buckets are kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u8, u64>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sample.
    pub fn record_ms(&mut self, ms: f64) {
        self.add_count(bucket_of(ms), 1);
    }

    /// Adds `n` samples to a bucket (what reading a stored bucket does).
    pub fn add_count(&mut self, bucket: u8, n: u64) {
        if n == 0 {
            return;
        }
        let bucket = bucket.min(OVERFLOW);
        let c = self.counts.entry(bucket).or_default();
        *c = c.saturating_add(n);
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (&b, &n) in &other.counts {
            self.add_count(b, n);
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.counts.values().fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// Non-empty buckets in ascending order.
    pub fn buckets(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.counts.iter().map(|(&b, &n)| (b, n))
    }

    /// Nearest-rank percentile estimate (`p` in 0..=1), `None` when empty.
    ///
    /// The sample of rank `ceil(p * n)` (at least 1) lies in the bucket found here, so the
    /// result is within [`RELATIVE_ERROR`] of it (see the module documentation).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (&b, &c) in &self.counts {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return Some(representative(b));
            }
        }
        self.counts.keys().next_back().map(|&b| representative(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_line_without_gaps() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(-3.0), 0);
        assert_eq!(bucket_of(f64::NAN), 0);
        assert_eq!(bucket_of(0.999), 0);
        assert_eq!(bucket_of(1.0), 1);
        assert_eq!(bucket_of(2.0), 5);
        assert_eq!(bucket_of(1024.0), 41);
        assert_eq!(bucket_of(1e12), OVERFLOW);
        for b in 1..OVERFLOW {
            let (lo, hi) = bounds(b);
            assert_eq!(bucket_of(lo * 1.000_001), b, "lower edge of {b}");
            assert_eq!(bucket_of(hi * 0.999_999), b, "upper edge of {b}");
            let r = representative(b);
            assert!(lo <= r && r < hi);
            // Half a bucket on the log scale either side.
            assert!((r / lo - 1.0) <= RELATIVE_ERROR + 1e-12);
            assert!((1.0 - r / hi) <= RELATIVE_ERROR + 1e-12);
        }
        assert_eq!(bounds(OVERFLOW).0, 2f64.powi(20));
    }

    #[test]
    fn percentile_of_empty_and_single() {
        assert_eq!(Histogram::new().percentile(0.5), None);
        let mut h = Histogram::new();
        h.record_ms(100.0);
        let p = h.percentile(0.99).unwrap();
        assert!((p / 100.0 - 1.0).abs() <= RELATIVE_ERROR);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record_ms(10.0);
        b.record_ms(10.0);
        b.record_ms(1000.0);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.buckets().count(), 2);
    }
}
