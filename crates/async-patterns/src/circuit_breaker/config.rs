//! The breaker's configuration: its settings, their validation, and the
//! typed error naming the setting that was refused.

use std::fmt;
use std::time::Duration;

use super::window::{RateWindow, Span, TIME_BUCKETS, Threshold};
use crate::millionths;

/// A setting of [`BreakerConfigBuilder`], as a [`BreakerConfigError`] names
/// it; it displays as the builder method that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerSetting {
    /// [`consecutive_failures`](BreakerConfigBuilder::consecutive_failures).
    ConsecutiveFailures,
    /// The size of a count window ([`window`](BreakerConfigBuilder::window)).
    WindowSize,
    /// The minimum number of calls of a [`window`](BreakerConfigBuilder::window)
    /// or [`time_window`](BreakerConfigBuilder::time_window).
    MinCalls,
    /// The span of a [`time_window`](BreakerConfigBuilder::time_window).
    TimeWindow,
    /// [`failure_rate`](BreakerConfigBuilder::failure_rate).
    FailureRate,
    /// The threshold of [`slow_call_rate`](BreakerConfigBuilder::slow_call_rate).
    SlowCallThreshold,
    /// The rate of [`slow_call_rate`](BreakerConfigBuilder::slow_call_rate).
    SlowCallRate,
    /// [`open_for`](BreakerConfigBuilder::open_for).
    OpenFor,
    /// [`half_open_probes`](BreakerConfigBuilder::half_open_probes).
    HalfOpenProbes,
    /// [`close_after`](BreakerConfigBuilder::close_after).
    CloseAfter,
}

impl fmt::Display for BreakerSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerSetting::ConsecutiveFailures => "consecutive_failures",
            BreakerSetting::WindowSize => "window size",
            BreakerSetting::MinCalls => "window min_calls",
            BreakerSetting::TimeWindow => "time_window span",
            BreakerSetting::FailureRate => "failure_rate",
            BreakerSetting::SlowCallThreshold => "slow_call_rate threshold",
            BreakerSetting::SlowCallRate => "slow_call_rate rate",
            BreakerSetting::OpenFor => "open_for",
            BreakerSetting::HalfOpenProbes => "half_open_probes",
            BreakerSetting::CloseAfter => "close_after",
        })
    }
}

/// Why a [`BreakerConfig`] was refused; every variant that is about one
/// setting names it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// A count that must be at least 1 was 0.
    Zero(BreakerSetting),
    /// A rate threshold outside (0, 1].
    RateOutOfRange(BreakerSetting, f64),
    /// The minimum number of calls exceeds the window it is counted in.
    MinCallsAboveWindow {
        /// The minimum number of calls.
        min_calls: u32,
        /// The window size.
        window: u32,
    },
    /// A duration that must be longer than zero was zero (a time window
    /// must be at least 10 ns: it is kept as 10 buckets).
    ZeroDuration(BreakerSetting),
    /// No trip policy was configured: the breaker could never open.
    NoTripPolicy,
    /// A rate was set without a window to judge it in.
    RateWithoutWindow(BreakerSetting),
    /// The backoff multiplier is not a finite number in [1, 1000].
    BadMultiplier(f64),
    /// The cap on the open duration is shorter than the open duration.
    BackoffCapBelowOpenDuration,
    /// Both a count-based and a time-based window were set; pick one.
    TwoWindows,
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerConfigError::Zero(what) => write!(f, "{what} must be at least 1"),
            BreakerConfigError::RateOutOfRange(what, v) => {
                write!(f, "{what} must be in (0, 1], not {v}")
            }
            BreakerConfigError::MinCallsAboveWindow { min_calls, window } => write!(
                f,
                "minimum calls ({min_calls}) exceeds the window ({window} calls)"
            ),
            BreakerConfigError::ZeroDuration(BreakerSetting::TimeWindow) => {
                f.write_str("time_window span must be at least 10 ns (10 buckets)")
            }
            BreakerConfigError::ZeroDuration(what) => write!(f, "{what} must be longer than zero"),
            BreakerConfigError::NoTripPolicy => {
                f.write_str("no trip policy: set consecutive failures or a failure-rate window")
            }
            BreakerConfigError::RateWithoutWindow(what) => {
                write!(
                    f,
                    "{what} needs a window (window or time_window) to be judged in"
                )
            }
            BreakerConfigError::BadMultiplier(m) => {
                write!(
                    f,
                    "backoff multiplier {m} is not a finite number in [1, 1000]"
                )
            }
            BreakerConfigError::BackoffCapBelowOpenDuration => {
                f.write_str("max_open_for is shorter than open_for")
            }
            BreakerConfigError::TwoWindows => {
                f.write_str("set a count-based or a time-based window, not both")
            }
        }
    }
}

impl std::error::Error for BreakerConfigError {}

/// A validated breaker configuration; build it with [`BreakerConfig::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub(super) consecutive_failures: Option<u32>,
    pub(super) window: Option<RateWindow>,
    pub(super) open_for: Duration,
    pub(super) max_open_for: Duration,
    /// The backoff multiplier in millionths (10⁶ is no growth).
    pub(super) multiplier: u64,
    pub(super) half_open_probes: u32,
    pub(super) close_after: u32,
}

/// Builds a [`BreakerConfig`]; [`build`](BreakerConfigBuilder::build) validates it.
#[derive(Debug, Clone)]
pub struct BreakerConfigBuilder {
    pub(super) consecutive_failures: Option<u32>,
    pub(super) window: Option<(u32, u32)>,
    pub(super) time_window: Option<(Duration, u32)>,
    pub(super) failure_rate: Option<f64>,
    pub(super) slow: Option<(Duration, f64)>,
    pub(super) open_for: Duration,
    pub(super) max_open_for: Option<Duration>,
    pub(super) multiplier: f64,
    pub(super) half_open_probes: u32,
    pub(super) close_after: u32,
}

impl BreakerConfig {
    /// A builder with defaults: open for 30 s, no growth, 1 probe, close
    /// after 1 success, and no trip policy (one must be set).
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            consecutive_failures: None,
            window: None,
            time_window: None,
            failure_rate: None,
            slow: None,
            open_for: Duration::from_secs(30),
            max_open_for: None,
            multiplier: 1.0,
            half_open_probes: 1,
            close_after: 1,
        }
    }
}

impl BreakerConfigBuilder {
    /// Open after `k` failures in a row.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn consecutive_failures(mut self, k: u32) -> Self {
        self.consecutive_failures = Some(k);
        self
    }

    /// Judge rates over the last `size` calls, once at least `min_calls`
    /// have been seen.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn window(mut self, size: u32, min_calls: u32) -> Self {
        self.window = Some((size, min_calls));
        self
    }

    /// Judge rates over the calls of the last `span` (kept as 10 buckets of
    /// `span / 10`, so the window slides a bucket at a time), once at least
    /// `min_calls` have been seen in it.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn time_window(mut self, span: Duration, min_calls: u32) -> Self {
        self.time_window = Some((span, min_calls));
        self
    }

    /// Open when at least this share of the window's calls failed. The
    /// share is compared exactly, to nine decimal places: with 0.55, 55
    /// failures of 100 calls trip the breaker and 54 do not.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = Some(rate);
        self
    }

    /// Open when at least `rate` of the window's calls were slow: took
    /// strictly longer than `threshold` (measured on the breaker's clock;
    /// a call of exactly `threshold` is not slow). `rate` is compared
    /// exactly, as in [`failure_rate`](Self::failure_rate).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn slow_call_rate(mut self, threshold: Duration, rate: f64) -> Self {
        self.slow = Some((threshold, rate));
        self
    }

    /// How long the breaker stays open after a trip.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// Multiply the open duration by `multiplier` on each trip without a
    /// close in between (resilience4j's default is 1.5): each trip's open
    /// duration is the previous one's times the multiplier, **rounded down
    /// to the nanosecond**, up to [`max_open_for`](Self::max_open_for) if
    /// set (else up to `u64::MAX` ns). The multiplier is taken to six
    /// decimal places (rounded to the nearest millionth) and must be in
    /// [1, 1000]; 1 (the default) means no growth.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn backoff(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The longest the breaker stays open, however many trips in a row.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn max_open_for(mut self, cap: Duration) -> Self {
        self.max_open_for = Some(cap);
        self
    }

    /// At most `p` probe calls at once while half-open.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn half_open_probes(mut self, p: u32) -> Self {
        self.half_open_probes = p;
        self
    }

    /// Close after `s` successful probes.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn close_after(mut self, s: u32) -> Self {
        self.close_after = s;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<BreakerConfig, BreakerConfigError> {
        fn nonzero(v: u32, what: BreakerSetting) -> Result<u32, BreakerConfigError> {
            if v == 0 {
                Err(BreakerConfigError::Zero(what))
            } else {
                Ok(v)
            }
        }
        fn rate(v: f64, what: BreakerSetting) -> Result<Threshold, BreakerConfigError> {
            Threshold::new(v).ok_or(BreakerConfigError::RateOutOfRange(what, v))
        }
        if let Some(k) = self.consecutive_failures {
            nonzero(k, BreakerSetting::ConsecutiveFailures)?;
        }
        let span = match (self.window, self.time_window) {
            (Some(_), Some(_)) => return Err(BreakerConfigError::TwoWindows),
            (Some((size, min_calls)), None) => {
                nonzero(size, BreakerSetting::WindowSize)?;
                nonzero(min_calls, BreakerSetting::MinCalls)?;
                if min_calls > size {
                    return Err(BreakerConfigError::MinCallsAboveWindow {
                        min_calls,
                        window: size,
                    });
                }
                Some((Span::Calls(size), min_calls))
            }
            (None, Some((span, min_calls))) => {
                let bucket = span / TIME_BUCKETS as u32;
                if bucket.is_zero() {
                    return Err(BreakerConfigError::ZeroDuration(BreakerSetting::TimeWindow));
                }
                Some((
                    Span::Time { bucket },
                    nonzero(min_calls, BreakerSetting::MinCalls)?,
                ))
            }
            (None, None) => None,
        };
        let window = match span {
            None if self.failure_rate.is_some() => {
                return Err(BreakerConfigError::RateWithoutWindow(
                    BreakerSetting::FailureRate,
                ));
            }
            None if self.slow.is_some() => {
                return Err(BreakerConfigError::RateWithoutWindow(
                    BreakerSetting::SlowCallRate,
                ));
            }
            None => None,
            Some((span, min_calls)) => {
                let failure_rate = self
                    .failure_rate
                    .map(|r| rate(r, BreakerSetting::FailureRate))
                    .transpose()?;
                let slow = match self.slow {
                    Some((t, _)) if t.is_zero() => {
                        return Err(BreakerConfigError::ZeroDuration(
                            BreakerSetting::SlowCallThreshold,
                        ));
                    }
                    Some((t, r)) => Some((t, rate(r, BreakerSetting::SlowCallRate)?)),
                    None => None,
                };
                if failure_rate.is_none() && slow.is_none() {
                    return Err(BreakerConfigError::NoTripPolicy);
                }
                Some(RateWindow {
                    span,
                    min_calls,
                    failure_rate,
                    slow,
                })
            }
        };
        if self.consecutive_failures.is_none() && window.is_none() {
            return Err(BreakerConfigError::NoTripPolicy);
        }
        if self.open_for.is_zero() {
            return Err(BreakerConfigError::ZeroDuration(BreakerSetting::OpenFor));
        }
        if !(1.0..=millionths::MAX_FACTOR).contains(&self.multiplier) {
            return Err(BreakerConfigError::BadMultiplier(self.multiplier));
        }
        let max_open_for = match (self.max_open_for, self.multiplier == 1.0) {
            (Some(cap), _) => cap,
            (None, true) => self.open_for,
            (None, false) => Duration::from_nanos(u64::MAX),
        };
        if max_open_for < self.open_for {
            return Err(BreakerConfigError::BackoffCapBelowOpenDuration);
        }
        Ok(BreakerConfig {
            consecutive_failures: self.consecutive_failures,
            window,
            open_for: self.open_for,
            max_open_for,
            // In [1, 1000], so in [10⁶, 10⁹] millionths.
            multiplier: millionths::of(self.multiplier),
            half_open_probes: nonzero(self.half_open_probes, BreakerSetting::HalfOpenProbes)?,
            close_after: nonzero(self.close_after, BreakerSetting::CloseAfter)?,
        })
    }
}
