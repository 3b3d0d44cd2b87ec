//! A fixed-size log-scale latency histogram: bounded memory whatever the number of samples.
//!
//! Microsecond samples; values below 8 µs have their own bucket, above that every power of two is
//! split into 8 buckets, so a bucket is at most 12.5 % wide and a percentile read from it is off by
//! at most that much (reported as the bucket's upper bound, never above the observed maximum).
//! Samples of 2^33 µs (about 2.4 hours) and more land in the last bucket.

use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: u32 = 32;
/// 8 exact buckets + 8 per octave from 2^3 to 2^32.
const BUCKETS: usize = SUB + (MAX_EXP as usize - SUB_BITS as usize + 1) * SUB;

/// Latency distribution plus exact count, sum and max.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    count: u64,
    sum_us: u128,
    max_us: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max_us", &self.max_us)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

fn bucket_of(us: u64) -> usize {
    let us = us.min((1 << (MAX_EXP + 1)) - 1);
    if us < SUB as u64 {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = ((us >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    (SUB + (exp - SUB_BITS) as usize * SUB + sub).min(BUCKETS - 1)
}

/// The largest value (µs) that falls into `bucket`.
fn bucket_upper(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let exp = (bucket - SUB) / SUB + SUB_BITS as usize;
    let sub = ((bucket - SUB) % SUB) as u64;
    let width_shift = exp - SUB_BITS as usize;
    ((SUB as u64 + sub + 1) << width_shift) - 1
}

impl Histogram {
    /// Adds one sample.
    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let b = bucket_of(us);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.count += 1;
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    /// Number of samples.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all samples, in milliseconds.
    pub(crate) fn total_ms(&self) -> f64 {
        self.sum_us as f64 / 1000.0
    }

    /// Mean, in milliseconds (0 when empty).
    pub(crate) fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms() / self.count as f64
        }
    }

    /// Largest sample, in milliseconds.
    pub(crate) fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    /// The `q` quantile (0..=1), in milliseconds, within one bucket's width.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return bucket_upper(b).min(self.max_us) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let mut prev_upper: Option<u64> = None;
        for b in 0..BUCKETS {
            let upper = bucket_upper(b);
            assert_eq!(bucket_of(upper), b, "bucket {b}");
            if let Some(p) = prev_upper {
                assert_eq!(
                    bucket_of(p + 1),
                    b,
                    "bucket {b} starts right after the previous one"
                );
                let lower = p + 1;
                assert!(
                    (upper - lower) as f64 <= lower as f64 * 0.125 + 1.0,
                    "bucket {b} is {lower}..={upper}"
                );
            }
            prev_upper = Some(upper);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn p95_is_within_the_bucket_width() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let p95 = h.quantile_ms(0.95);
        assert!((950.0..=950.0 * 1.125).contains(&p95), "p95 {p95}");
        assert_eq!(h.count(), 1000);
        assert!((h.mean_ms() - 500.5).abs() < 1e-9);
        assert_eq!(h.max_ms(), 1000.0);
        assert_eq!(h.quantile_ms(1.0), 1000.0);
    }

    #[test]
    fn empty_and_single_samples() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.95), 0.0);
        h.record(Duration::from_micros(3));
        assert_eq!(h.quantile_ms(0.95), 0.003);
        h.record(Duration::from_secs(100_000));
        assert_eq!(h.count(), 2);
    }
}
