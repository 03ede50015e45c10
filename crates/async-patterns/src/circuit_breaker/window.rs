//! The rate window: what it spans, the exact thresholds it is judged
//! against, and the outcomes it holds.

use std::time::Duration;

use super::policy::{Outcome, TransitionCause};
use crate::buckets::TimeBuckets;
use crate::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RateWindow {
    pub(super) span: Span,
    pub(super) min_calls: u32,
    pub(super) failure_rate: Option<Threshold>,
    pub(super) slow: Option<(Duration, Threshold)>,
}

impl RateWindow {
    /// Whether a window holding `counts` trips the breaker: at least the
    /// minimum number of calls, and failures or slow calls at or over their
    /// share.
    pub(super) fn trips(&self, counts: Counts) -> bool {
        if counts.calls < self.min_calls {
            return false;
        }
        let over = |count: u32, threshold: Option<Threshold>| {
            threshold.is_some_and(|t| t.reached_by(count, counts.calls))
        };
        over(counts.failures, self.failure_rate) || over(counts.slows, self.slow.map(|s| s.1))
    }

    /// Which rate tripped a window that [`trips`](Self::trips): the
    /// failure rate if it is over its threshold, else the slow-call rate.
    pub(super) fn cause(&self, counts: Counts) -> TransitionCause {
        match self.failure_rate {
            Some(t) if t.reached_by(counts.failures, counts.calls) => TransitionCause::FailureRate,
            _ => TransitionCause::SlowCallRate,
        }
    }
}

/// A rate threshold in parts per billion: the `f64` the caller gave,
/// rounded to nine decimal places, so that a decimal threshold is compared
/// exactly. (In `f64`, `0.55 * 100.0` is `55.00000000000001`, and 55
/// failures of 100 would not reach a threshold of 0.55.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Threshold(pub(super) u64);

pub(super) const PARTS: u64 = 1_000_000_000;

impl Threshold {
    /// The threshold for a rate in (0, 1], or `None` outside it (or below
    /// one part per billion).
    pub(super) fn new(rate: f64) -> Option<Self> {
        if !(rate > 0.0 && rate <= 1.0) {
            return None;
        }
        // In range, so the product is in (0, 1e9] and the cast is exact.
        let parts = (rate * PARTS as f64).round() as u64;
        (parts > 0).then_some(Threshold(parts))
    }

    /// `count / calls >= parts / 10⁹`, in integers: both products are below
    /// `2³² · 10⁹ < 2⁶⁴`.
    pub(super) fn reached_by(self, count: u32, calls: u32) -> bool {
        u64::from(count) * PARTS >= self.0 * u64::from(calls)
    }
}

/// What a rate window spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Span {
    /// The last `n` calls.
    Calls(u32),
    /// The calls of the last [`TIME_BUCKETS`] buckets of `bucket` each
    /// (the current bucket included), as resilience4j counts them.
    Time { bucket: Duration },
}

/// A time window is kept as this many buckets.
pub(super) const TIME_BUCKETS: usize = 10;

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) calls: u32,
    pub(super) failures: u32,
    pub(super) slows: u32,
}

impl Counts {
    pub(super) fn add(&mut self, o: Outcome) {
        self.calls += 1;
        self.failures += u32::from(o.failed);
        self.slows += u32::from(o.slow);
    }
}

/// The outcomes a rate window holds.
#[derive(Debug, Clone)]
pub(super) enum Outcomes {
    None,
    /// The last `bits.len()` outcomes, as a ring (bit 0 failed, bit 1 slow),
    /// with running counts.
    Calls {
        bits: Vec<u8>,
        size: usize,
        next: usize,
        counts: Counts,
    },
    /// Per-bucket counts over a time window.
    Time(TimeBuckets<Counts>),
}

impl Outcomes {
    pub(super) fn new(window: Option<RateWindow>) -> Self {
        match window.map(|w| w.span) {
            None => Outcomes::None,
            Some(Span::Calls(n)) => Outcomes::Calls {
                bits: Vec::with_capacity(n as usize),
                size: n as usize,
                next: 0,
                counts: Counts::default(),
            },
            Some(Span::Time { bucket }) => Outcomes::Time(TimeBuckets::new(
                TIME_BUCKETS,
                u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX),
            )),
        }
    }

    /// Adds an outcome at `now`; returns the window's counts.
    pub(super) fn push(&mut self, o: Outcome, now: Instant) -> Counts {
        match self {
            Outcomes::None => Counts::default(),
            Outcomes::Calls {
                bits,
                size,
                next,
                counts,
            } => {
                let bit = u8::from(o.failed) | (u8::from(o.slow) << 1);
                if bits.len() < *size {
                    bits.push(bit);
                } else {
                    let old = std::mem::replace(&mut bits[*next], bit);
                    counts.calls -= 1;
                    counts.failures -= u32::from(old & 1);
                    counts.slows -= u32::from(old >> 1);
                }
                *next = (*next + 1) % *size;
                counts.add(o);
                *counts
            }
            Outcomes::Time(buckets) => {
                buckets.current(now).add(o);
                let mut total = Counts::default();
                for c in buckets.live() {
                    total.calls += c.calls;
                    total.failures += c.failures;
                    total.slows += c.slows;
                }
                total
            }
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            Outcomes::None => {}
            Outcomes::Calls {
                bits, next, counts, ..
            } => {
                bits.clear();
                *next = 0;
                *counts = Counts::default();
            }
            Outcomes::Time(buckets) => buckets.clear(),
        }
    }
}
