//! Latency statistics for async-patterns: count, mean, p50 / p95 / p99 /
//! p99.9, max and throughput, on an HDR histogram (fixed memory, stated
//! precision), mergeable across tasks and threads.
//!
//! Record on each task (or thread) into its own [`LatencyRecorder`], then
//! [`merge`](LatencyRecorder::merge) them: merging is exact, so the merged
//! percentiles are those of all the samples together.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | every percentile is within the configured precision of the exact quantile of the samples (never below it, above it by at most `value / 10^digits + 1 ns`, never above the exact max) — for samples up to the trackable maximum; samples above it count as the maximum | proptest `percentiles_are_within_precision_of_exact_quantiles` (`tests/stats_model.rs`) |
//! | count, max and mean are exact (the mean is kept as an exact sum, not read back from the buckets) | proptest `percentiles_are_within_precision_of_exact_quantiles` |
//! | merging recorders equals recording every sample into one | proptest `merge_equals_recording_everything_once` |
//! | values above the trackable maximum are clamped to it and counted, never dropped or a panic | unit test `values_beyond_the_maximum_are_clamped_and_counted` |
//! | bad configuration is a typed [`StatsError`] | unit test `bad_configuration_is_a_typed_error` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns_stats::LatencyRecorder;
//!
//! let mut a = LatencyRecorder::new(3, Duration::from_secs(60)).unwrap();
//! let mut b = a.clone();
//! for ms in 1..=90 { a.record(Duration::from_millis(ms)); }
//! for ms in 91..=100 { b.record(Duration::from_millis(ms)); }
//! a.merge(&b).unwrap();
//! let s = a.summary();
//! assert_eq!(s.count, 100);
//! assert_eq!(s.max, Duration::from_millis(100));
//! assert!(s.p50 >= Duration::from_millis(50) && s.p50 <= Duration::from_micros(50_051));
//! ```

use std::fmt;
use std::time::Duration;

use async_patterns::time::Instant;
use hdrhistogram::Histogram;

/// Why a recorder could not be built or merged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsError {
    /// Significant digits must be 1 to 5 (hdrhistogram's range).
    Digits(u8),
    /// The highest trackable latency must be at least 2 ns.
    MaxTooSmall(Duration),
    /// The two recorders were built with different settings.
    Mismatch,
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::Digits(d) => write!(f, "{d} significant digits: must be 1 to 5"),
            StatsError::MaxTooSmall(d) => {
                write!(f, "highest trackable latency {d:?} is under 2 ns")
            }
            StatsError::Mismatch => {
                f.write_str("recorders with different settings cannot be merged")
            }
        }
    }
}

impl std::error::Error for StatsError {}

/// A latency histogram in nanoseconds, plus exact count, sum and max, and
/// the span of completion instants seen (for throughput).
#[derive(Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    digits: u8,
    max_ns: u64,
    sum_ns: u128,
    max_seen: u64,
    clamped: u64,
    /// First and last completion instants given to `record_at`.
    span: Option<(Instant, Instant)>,
    completions: u64,
}

/// What a recorder has seen. Percentiles are `Duration::ZERO` when empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Exact mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Exact maximum (before clamping).
    pub max: Duration,
    /// Samples above the trackable maximum, recorded as the maximum.
    pub clamped: u64,
    /// Completions per second between the first and last instant given to
    /// [`record_at`](LatencyRecorder::record_at); `None` with fewer than two
    /// or no time between them.
    pub throughput: Option<f64>,
}

impl LatencyRecorder {
    /// A recorder tracking 1 ns up to `max` with `digits` significant
    /// decimal digits (3 means within 0.1%).
    pub fn new(digits: u8, max: Duration) -> Result<Self, StatsError> {
        if !(1..=5).contains(&digits) {
            return Err(StatsError::Digits(digits));
        }
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        if max_ns < 2 {
            return Err(StatsError::MaxTooSmall(max));
        }
        let hist = Histogram::new_with_bounds(1, max_ns, digits)
            .map_err(|_| StatsError::MaxTooSmall(max))?;
        Ok(LatencyRecorder {
            hist,
            digits,
            max_ns,
            sum_ns: 0,
            max_seen: 0,
            clamped: 0,
            span: None,
            completions: 0,
        })
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns += u128::from(ns);
        self.max_seen = self.max_seen.max(ns);
        if ns > self.max_ns {
            self.clamped += 1;
        }
        // In range by construction (the lowest trackable value is 1 ns and
        // hdrhistogram records 0 in the first bucket).
        self.hist.saturating_record(ns.min(self.max_ns));
    }

    /// Records one latency for a call that completed at `at` (on the
    /// caller's clock), which also counts towards throughput.
    pub fn record_at(&mut self, at: Instant, latency: Duration) {
        self.record(latency);
        self.completions += 1;
        self.span = Some(match self.span {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    /// Adds everything `other` recorded (it must have the same settings).
    pub fn merge(&mut self, other: &LatencyRecorder) -> Result<(), StatsError> {
        if (self.digits, self.max_ns) != (other.digits, other.max_ns) {
            return Err(StatsError::Mismatch);
        }
        self.hist
            .add(&other.hist)
            .map_err(|_| StatsError::Mismatch)?;
        self.sum_ns += other.sum_ns;
        self.max_seen = self.max_seen.max(other.max_seen);
        self.clamped += other.clamped;
        self.completions += other.completions;
        self.span = match (self.span, other.span) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, None) | (None, x) => x,
        };
        Ok(())
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The value at quantile `q` (0.0 to 1.0), within the recorder's
    /// precision; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        // A bucket's highest equivalent value may lie above every sample:
        // never report more than the exact maximum.
        let value = self.hist.value_at_quantile(q.clamp(0.0, 1.0));
        Duration::from_nanos(value.min(self.max_seen))
    }

    /// Count, mean, percentiles, max and throughput.
    pub fn summary(&self) -> Summary {
        let count = self.hist.len();
        let mean = match u128::from(count) {
            0 => Duration::ZERO,
            n => Duration::from_nanos(u64::try_from(self.sum_ns / n).unwrap_or(u64::MAX)),
        };
        let throughput = match self.span {
            Some((first, last)) if self.completions >= 2 && last > first => {
                let secs = last.saturating_duration_since(first).as_secs_f64();
                Some((self.completions - 1) as f64 / secs)
            }
            _ => None,
        };
        Summary {
            count,
            mean,
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: Duration::from_nanos(self.max_seen),
            clamped: self.clamped,
            throughput,
        }
    }
}

impl fmt::Debug for LatencyRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyRecorder")
            .field("digits", &self.digits)
            .field("max_ns", &self.max_ns)
            .field("count", &self.hist.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configuration_is_a_typed_error() {
        let s = Duration::from_secs(1);
        assert_eq!(
            LatencyRecorder::new(0, s).unwrap_err(),
            StatsError::Digits(0)
        );
        assert_eq!(
            LatencyRecorder::new(6, s).unwrap_err(),
            StatsError::Digits(6)
        );
        assert_eq!(
            LatencyRecorder::new(3, Duration::from_nanos(1)).unwrap_err(),
            StatsError::MaxTooSmall(Duration::from_nanos(1))
        );
        let mut a = LatencyRecorder::new(3, s).unwrap();
        let b = LatencyRecorder::new(2, s).unwrap();
        assert_eq!(a.merge(&b).unwrap_err(), StatsError::Mismatch);
    }

    #[test]
    fn values_beyond_the_maximum_are_clamped_and_counted() {
        let mut r = LatencyRecorder::new(3, Duration::from_millis(10)).unwrap();
        r.record(Duration::from_secs(5));
        r.record(Duration::MAX);
        let s = r.summary();
        assert_eq!((s.count, s.clamped), (2, 2));
        assert_eq!(s.max, Duration::from_nanos(u64::MAX));
        assert!(s.p50 >= Duration::from_millis(10) && s.p50 <= Duration::from_micros(10_011));
    }

    #[test]
    fn throughput_counts_completions_over_their_span() {
        let mut r = LatencyRecorder::new(3, Duration::from_secs(1)).unwrap();
        assert_eq!(r.summary().throughput, None);
        for i in 0..=100u64 {
            r.record_at(
                Instant::from_nanos(i * 10_000_000),
                Duration::from_millis(5),
            );
        }
        // 101 completions, 100 gaps of 10 ms: 100 per second.
        let t = r.summary().throughput.unwrap();
        assert!((t - 100.0).abs() < 1e-9, "{t}");
        assert_eq!(
            LatencyRecorder::new(3, Duration::from_secs(1))
                .unwrap()
                .summary()
                .p99,
            Duration::ZERO
        );
    }
}
