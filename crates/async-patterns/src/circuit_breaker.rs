//! A circuit breaker: stop calling a dependency that keeps failing, and
//! probe it carefully before trusting it again.
//!
//! States: **closed** (calls run; outcomes are watched), **open** (calls are
//! refused without being run, until a cool-down passes), **half-open** (at
//! most `P` probe calls at once; `S` successes close the breaker, one failure
//! opens it again, for a cool-down that may grow with each trip).
//!
//! The policy is a plain state machine (crate-private, so no sequence of
//! public calls can record an outcome twice or release a slot it never
//! took) that knows nothing of futures or threads; [`CircuitBreaker`] puts
//! it behind a mutex, hands out
//! [`BreakerPermit`]s stamped with the state's *generation*, and wraps futures in
//! [`CircuitBreaker::call`]. While closed, admissions and most successes
//! skip the mutex (one atomic load, one compare-and-swap). Time comes from the injected [`Clock`], also for
//! call durations (slow calls).
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | opens on `k` consecutive failures, or when failures (or slow calls) are at least the threshold share of the calls in the window — the last `N` calls, or the last `T` of time in 10 buckets — with at least `m` calls seen | proptest `breaker_matches_reference_model` (`tests/circuit_breaker_model.rs`), against a model that recomputes the rates from the full outcome history in integers |
//! | a rate exactly at its threshold trips: thresholds are compared exactly (to nine decimal places), never as `rate × calls` in floating point | proptest `rate_at_or_over_the_threshold_trips` (every two-decimal threshold × windows up to 10,000 calls) and unit tests `failure_rate_exactly_at_the_threshold_trips`, `slow_call_rate_exactly_at_the_threshold_trips` (`tests/circuit_breaker_edges.rs`); exhaustive unit test `two_decimal_thresholds_are_exact` |
//! | a call is slow when it takes strictly longer than the slow-call threshold | unit test `a_call_of_exactly_the_slow_threshold_is_not_slow` |
//! | half-open begins exactly at the open deadline: refused 1 ns before it, admitted at it | unit test `half_open_begins_at_the_open_deadline_to_the_nanosecond` |
//! | while open, every call is refused without being run | proptest `breaker_matches_reference_model`; unit test `open_breaker_refuses_without_running_the_call` |
//! | half-open admits at most `P` probes at once; `S` successes close it, a failure reopens it | proptest `breaker_matches_reference_model` (probes in flight ≤ P after every step); loom `loom_half_open_admits_at_most_p_probes` (`tests/loom_circuit_breaker.rs`) |
//! | outcomes of calls admitted in an earlier state or generation never move the new state | proptest `breaker_matches_reference_model` (stale outcomes are part of the op mix); unit test `stale_outcomes_are_ignored` |
//! | a dropped (cancelled) call frees its probe slot | unit test `dropped_probe_frees_its_slot`; proptest (drops are part of the op mix); loom `loom_dropped_probe_frees_its_slot` |
//! | transitions are linearizable: concurrent failures trip the breaker exactly once | loom `loom_concurrent_failures_trip_exactly_once` |
//! | a success counted without the lock (see [`CircuitBreaker`]) is never lost and counts exactly as if recorded under it | loom `loom_lock_free_success_is_never_lost`; proptest `breaker_matches_reference_model` (the model records every outcome in order, so a deferred trip shows) |
//! | a success counted without the lock never counts in a later generation | loom `loom_stale_success_never_counts_in_a_later_closed_state`; unit test `stale_success_after_a_full_cycle_is_ignored` |
//! | the transition log for a scripted run does not change unnoticed | insta snapshot `scripted_outcomes_transition_log_snapshot` (`tests/circuit_breaker.rs`, in `snapshots/`) |
//! | each trip in a row opens for the last duration times the (fractional) multiplier, rounded down to the nanosecond, up to the cap; a close starts again | proptest `breaker_matches_reference_model` (multipliers 1, 5/4, 7/5, 3/2, 2, 3, 11/10 against a model in integer fractions); unit test `open_duration_grows_by_a_fractional_multiplier_rounded_down` |
//! | growing open durations saturate at their cap (or at `u64::MAX` ns without one), never overflow | unit tests `open_duration_grows_and_saturates`, `uncapped_growth_saturates` |
//! | an owned permit ([`CircuitBreaker::try_acquire_owned`]) reports and releases exactly as a borrowed one, from any thread | unit test `owned_permits_report_and_release_from_another_thread`; `tests/async_send_sync.rs` (it is `Send + Sync + 'static`) |
//! | bad configuration is a typed [`BreakerConfigError`] naming the [`BreakerSetting`] when built | unit test `bad_configs_are_typed_errors` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::circuit_breaker::{CircuitBreaker, BreakerConfig, BreakerState};
//! use async_patterns::time::ManualClock;
//!
//! let clock = ManualClock::new();
//! let config = BreakerConfig::builder()
//!     .consecutive_failures(2)
//!     .open_for(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! let breaker = CircuitBreaker::new(config, clock.clone());
//! for _ in 0..2 {
//!     breaker.try_acquire().unwrap().failure();
//! }
//! assert!(matches!(breaker.state(), BreakerState::Open { .. }));
//! assert!(breaker.try_acquire().is_err());
//! ```

use crate::Ending;
use crate::permit::{Held, Settle, permit_api};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::buckets::TimeBuckets;
use crate::sync::{AtomicU64, Mutex, Ordering, lock};
use crate::time::{Clock, Instant};

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
    consecutive_failures: Option<u32>,
    window: Option<RateWindow>,
    open_for: Duration,
    max_open_for: Duration,
    /// The backoff multiplier in millionths (10⁶ is no growth).
    multiplier: u64,
    half_open_probes: u32,
    close_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct RateWindow {
    span: Span,
    min_calls: u32,
    failure_rate: Option<Threshold>,
    slow: Option<(Duration, Threshold)>,
}

impl RateWindow {
    /// Whether a window holding `counts` trips the breaker: at least the
    /// minimum number of calls, and failures or slow calls at or over their
    /// share.
    fn trips(&self, counts: Counts) -> bool {
        if counts.calls < self.min_calls {
            return false;
        }
        let over = |count: u32, threshold: Option<Threshold>| {
            threshold.is_some_and(|t| t.reached_by(count, counts.calls))
        };
        over(counts.failures, self.failure_rate) || over(counts.slows, self.slow.map(|s| s.1))
    }
}

/// A rate threshold in parts per billion: the `f64` the caller gave,
/// rounded to nine decimal places, so that a decimal threshold is compared
/// exactly. (In `f64`, `0.55 * 100.0` is `55.00000000000001`, and 55
/// failures of 100 would not reach a threshold of 0.55.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Threshold(u64);

const PARTS: u64 = 1_000_000_000;

/// The backoff multiplier's unit: it is kept in millionths.
const MILLIONTHS: u64 = 1_000_000;

impl Threshold {
    /// The threshold for a rate in (0, 1], or `None` outside it (or below
    /// one part per billion).
    fn new(rate: f64) -> Option<Self> {
        if !(rate > 0.0 && rate <= 1.0) {
            return None;
        }
        // In range, so the product is in (0, 1e9] and the cast is exact.
        let parts = (rate * PARTS as f64).round() as u64;
        (parts > 0).then_some(Threshold(parts))
    }

    /// `count / calls >= parts / 10⁹`, in integers: both products are below
    /// `2³² · 10⁹ < 2⁶⁴`.
    fn reached_by(self, count: u32, calls: u32) -> bool {
        u64::from(count) * PARTS >= self.0 * u64::from(calls)
    }
}

/// What a rate window spans.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Span {
    /// The last `n` calls.
    Calls(u32),
    /// The calls of the last [`TIME_BUCKETS`] buckets of `bucket` each
    /// (the current bucket included), as resilience4j counts them.
    Time { bucket: Duration },
}

/// A time window is kept as this many buckets.
const TIME_BUCKETS: usize = 10;

/// Builds a [`BreakerConfig`]; [`build`](BreakerConfigBuilder::build) validates it.
#[derive(Debug, Clone)]
pub struct BreakerConfigBuilder {
    consecutive_failures: Option<u32>,
    window: Option<(u32, u32)>,
    time_window: Option<(Duration, u32)>,
    failure_rate: Option<f64>,
    slow: Option<(Duration, f64)>,
    open_for: Duration,
    max_open_for: Option<Duration>,
    multiplier: f64,
    half_open_probes: u32,
    close_after: u32,
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
        if !(1.0..=1000.0).contains(&self.multiplier) {
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
            // In [1, 1000], so the product is in [10⁶, 10⁹] and the cast
            // is exact.
            multiplier: (self.multiplier * MILLIONTHS as f64).round() as u64,
            half_open_probes: nonzero(self.half_open_probes, BreakerSetting::HalfOpenProbes)?,
            close_after: nonzero(self.close_after, BreakerSetting::CloseAfter)?,
        })
    }
}

/// The breaker's state, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls run.
    Closed,
    /// Calls are refused until `until`.
    Open {
        /// When probing may start.
        until: Instant,
    },
    /// Probing: `in_flight` probes running, `successes` so far.
    HalfOpen {
        /// Probes running now (≤ the configured maximum).
        in_flight: u32,
        /// Successful probes since the breaker went half-open.
        successes: u32,
    },
}

/// A state change, as passed to the observer and kept for snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
}

/// "Not now": the breaker refused the call without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Open until the instant named.
    Open(Instant),
    /// Half-open with every probe slot taken.
    ProbesBusy,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Open(until) => write!(f, "circuit open until {until:?}"),
            Refused::ProbesBusy => f.write_str("circuit half-open and every probe slot is taken"),
        }
    }
}

impl std::error::Error for Refused {}

/// Why [`CircuitBreaker::call`] returned no value: the breaker refused to
/// run the call ("not now"), or the call ran and failed.
///
/// ```
/// use async_patterns::circuit_breaker::{CallError, CircuitBreaker, BreakerConfig, Refused};
/// use async_patterns::time::ManualClock;
///
/// let breaker = CircuitBreaker::new(
///     BreakerConfig::builder().consecutive_failures(1).build().unwrap(),
///     ManualClock::new(),
/// );
/// # futures::executor::block_on(async {
/// let failed = breaker.call(async { Err::<u32, _>("timeout") }).await;
/// assert_eq!(failed, Err(CallError::Inner("timeout")));
/// let refused = breaker.call(async { Ok::<u32, &str>(1) }).await;
/// assert!(matches!(refused, Err(CallError::Refused(Refused::Open(_)))));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    Refused(Refused),
    /// The call ran and returned this error (recorded as a failure).
    Inner(E),
}

impl<E> CallError<E> {
    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            CallError::Refused(_) => None,
        }
    }

    /// The refusal, if the breaker did not run the call.
    pub fn refused(&self) -> Option<Refused> {
        match self {
            CallError::Refused(r) => Some(*r),
            CallError::Inner(_) => None,
        }
    }
}

impl<E> From<Refused> for CallError<E> {
    fn from(r: Refused) -> Self {
        CallError::Refused(r)
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused(r) => r.fmt(f),
            CallError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Refused(r) => Some(r),
            CallError::Inner(e) => Some(e),
        }
    }
}

/// What a finished call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// It failed (by the caller's classification).
    pub(crate) failed: bool,
    /// It took longer than the slow-call threshold.
    pub(crate) slow: bool,
}

/// The pure state machine: no clock, no lock, no futures. Every method takes
/// the current instant; [`CircuitBreaker`] is the thread-safe wrapper, and
/// the only one that may call it: `record` and `release` trust that each
/// admitted generation is ended once, which [`BreakerPermit`] (consumed by its
/// outcome, released once on drop) guarantees.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    config: BreakerConfig,
    state: BreakerState,
    generation: u64,
    consecutive_failures: u32,
    /// Trips since the last close (for the growing open duration).
    /// The open duration of the next trip (reset by a close).
    open_next: Duration,
    /// Outcomes in the rate window while closed.
    outcomes: Outcomes,
}

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    calls: u32,
    failures: u32,
    slows: u32,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        self.calls += 1;
        self.failures += u32::from(o.failed);
        self.slows += u32::from(o.slow);
    }
}

/// The outcomes a rate window holds.
#[derive(Debug, Clone)]
enum Outcomes {
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
    fn new(window: Option<RateWindow>) -> Self {
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
    fn push(&mut self, o: Outcome, now: Instant) -> Counts {
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

    fn clear(&mut self) {
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

impl Policy {
    /// A closed breaker.
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Policy {
            outcomes: Outcomes::new(config.window),
            open_next: config.open_for,
            config,
            state: BreakerState::Closed,
            generation: 0,
            consecutive_failures: 0,
        }
    }

    /// The current state (an expired open state reads as open until the
    /// next admission attempt moves it to half-open).
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// The generation: bumped on every transition.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Tries to admit a call at `now`; on success returns the generation to
    /// stamp its outcome with.
    pub(crate) fn try_admit(&mut self, now: Instant) -> Result<(u64, Option<Transition>), Refused> {
        let mut transition = None;
        if let BreakerState::Open { until } = self.state {
            if now < until {
                return Err(Refused::Open(until));
            }
            transition = Some(self.move_to(
                BreakerState::HalfOpen {
                    in_flight: 0,
                    successes: 0,
                },
                now,
            ));
        }
        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {
            if *in_flight >= self.config.half_open_probes {
                return Err(Refused::ProbesBusy);
            }
            *in_flight += 1;
        }
        Ok((self.generation, transition))
    }

    /// Records the outcome of a call admitted in `generation`. Outcomes
    /// from an earlier generation are ignored.
    pub(crate) fn record(
        &mut self,
        generation: u64,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition> {
        if generation != self.generation {
            return None;
        }
        match self.state {
            BreakerState::Closed => self.record_closed(outcome, now),
            BreakerState::HalfOpen {
                in_flight,
                successes,
            } => {
                if outcome.failed {
                    return Some(self.trip(now));
                }
                let successes = successes + 1;
                if successes >= self.config.close_after {
                    return Some(self.close(now));
                }
                self.state = BreakerState::HalfOpen {
                    in_flight: in_flight.saturating_sub(1),
                    successes,
                };
                None
            }
            // Open never admits, so no current-generation call can end here.
            BreakerState::Open { .. } => None,
        }
    }

    /// A call admitted in `generation` ended without an outcome (dropped):
    /// frees its probe slot, counts as nothing.
    pub(crate) fn release(&mut self, generation: u64) {
        if generation != self.generation {
            return;
        }
        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    fn record_closed(&mut self, outcome: Outcome, now: Instant) -> Option<Transition> {
        if outcome.failed {
            self.consecutive_failures += 1;
        } else {
            self.consecutive_failures = 0;
        }
        if let Some(k) = self.config.consecutive_failures
            && self.consecutive_failures >= k
        {
            return Some(self.trip(now));
        }
        let w = self.config.window?;
        let counts = self.outcomes.push(outcome, now);
        w.trips(counts).then(|| self.trip(now))
    }

    /// How many fast successes in a row could be recorded now without any
    /// of them moving the state, so that they may be counted without the
    /// lock and folded in later, in order, by
    /// [`record_quiet_successes`](Self::record_quiet_successes).
    ///
    /// Only a closed breaker has any. With a count window, a success never
    /// raises a rate: below the window size it adds a call and no failure;
    /// at the size it replaces the oldest outcome. So once the minimum
    /// number of calls has been judged, no success can trip the breaker, and
    /// before that only the success that reaches the minimum can. A time
    /// window may drop old outcomes between any two calls, so it has none.
    fn quiet_successes(&self) -> u32 {
        if self.state != BreakerState::Closed {
            return 0;
        }
        let Some(w) = self.config.window else {
            return u32::MAX; // consecutive failures only
        };
        let Outcomes::Calls { counts, .. } = &self.outcomes else {
            return 0;
        };
        if counts.calls >= w.min_calls {
            return u32::MAX;
        }
        let at_minimum = Counts {
            calls: w.min_calls,
            ..*counts
        };
        if w.trips(at_minimum) {
            w.min_calls - counts.calls - 1
        } else {
            u32::MAX
        }
    }

    /// Records `n` fast successes counted while
    /// [`quiet_successes`](Self::quiet_successes) allowed at least `n`.
    fn record_quiet_successes(&mut self, n: u32, now: Instant) {
        // Past the window's size, more successes leave the same window.
        let n = match &self.outcomes {
            Outcomes::None => n.min(1),
            Outcomes::Calls { size, .. } => n.min(u32::try_from(*size).unwrap_or(u32::MAX)),
            Outcomes::Time(_) => n,
        };
        for _ in 0..n {
            let transition = self.record_closed(
                Outcome {
                    failed: false,
                    slow: false,
                },
                now,
            );
            debug_assert!(transition.is_none(), "a quiet success moved the state");
        }
    }

    fn trip(&mut self, now: Instant) -> Transition {
        let open_for = self.open_next;
        // Rounded down; below 2⁶⁴ · 10⁹ < 2¹²⁸, and capped below 2⁶⁴.
        let grown =
            open_for.as_nanos() * u128::from(self.config.multiplier) / u128::from(MILLIONTHS);
        let cap = self.config.max_open_for.as_nanos();
        self.open_next = Duration::from_nanos(u64::try_from(grown.min(cap)).unwrap_or(u64::MAX));
        self.move_to(
            BreakerState::Open {
                until: now + open_for,
            },
            now,
        )
    }

    fn close(&mut self, now: Instant) -> Transition {
        self.open_next = self.config.open_for;
        self.move_to(BreakerState::Closed, now)
    }

    fn move_to(&mut self, to: BreakerState, now: Instant) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.consecutive_failures = 0;
        self.outcomes.clear();
        Transition { at: now, from, to }
    }
}

type Observer = Box<dyn Fn(&Transition) + Send + Sync>;

/// The lock-free word's layout: bit 63 set means "not closed, take the
/// lock"; otherwise bits 20..63 hold the closed state's generation (modulo
/// 2^43) and bits 0..20 how many more successes may be counted without the
/// lock.
const NOT_CLOSED: u64 = 1 << 63;
const QUIET_BITS: u32 = 20;
const QUIET_MAX: u64 = (1 << QUIET_BITS) - 1;
const GENERATION_MASK: u64 = (1 << (63 - QUIET_BITS)) - 1;

/// A thread-safe circuit breaker on an injected clock. See the
/// [module docs](self).
///
/// While closed, admitting a call is one atomic load, and a success that
/// cannot move the state (see below) is one compare-and-swap: neither
/// takes the lock. Under the lock the breaker publishes, after every
/// change, how many successes in a row could not move the state; fast
/// successes count that budget down, and the next locked operation folds
/// them into the policy, in order, before it does anything else. A success
/// that could trip the breaker (the one that completes the minimum number
/// of calls, a slow call, any success under a time window), every failure
/// and every call outside the closed state take the lock.
///
/// Generations are compared modulo 2^43: a permit would have to stay out
/// across 8.8 trillion state changes to be mistaken for a current one.
pub struct CircuitBreaker<C> {
    clock: C,
    slow_threshold: Option<Duration>,
    /// See [`NOT_CLOSED`]; written under the lock after every locked
    /// operation, counted down by fast successes.
    fast: AtomicU64,
    locked: Mutex<Locked>,
    observer: Option<Observer>,
}

struct Locked {
    policy: Policy,
    /// The quiet-success budget last published in `fast`.
    quiet: u32,
}

impl<C: Clock> CircuitBreaker<C> {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, clock: C) -> Self {
        let slow_threshold = config.window.and_then(|w| w.slow.map(|s| s.0));
        let policy = Policy::new(config);
        let quiet = policy.quiet_successes().min(QUIET_MAX as u32);
        CircuitBreaker {
            clock,
            slow_threshold,
            fast: AtomicU64::new(u64::from(quiet)),
            locked: Mutex::new(Locked { policy, quiet }),
            observer: None,
        }
    }

    /// Calls `observer` on every state change (outside the breaker's lock).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_observer(mut self, observer: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The state as of the last call: **lazy**. Once the open duration has
    /// elapsed the breaker still reads `Open { until }` (with `until` now in
    /// the past) until the next [`try_acquire`](Self::try_acquire) moves it
    /// to half-open and tells the observer; reading the state never changes
    /// it. So `Open { until }` with `until <= now` means "will probe on the
    /// next call". (Tested by `state_is_lazy_until_the_next_call`.)
    pub fn state(&self) -> BreakerState {
        // Successes not yet folded in cannot have moved it.
        lock(&self.locked).policy.state()
    }

    /// Takes a permit to make one call, or refuses ("not now").
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_, C>, Refused> {
        let (generation, started) = self.admit()?;
        Ok(BreakerPermit(Held::new(
            self,
            Ticket {
                generation,
                started,
            },
        )))
    }

    /// [`try_acquire`](Self::try_acquire) for a permit that owns a handle
    /// to the breaker, so it can move into a spawned task or a response
    /// future (`'static` and `Send` when the clock is).
    #[inline]
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedBreakerPermit<C>, Refused> {
        let (generation, started) = self.admit()?;
        Ok(OwnedBreakerPermit(Held::new(
            self,
            Ticket {
                generation,
                started,
            },
        )))
    }

    /// Admits one call: its generation and start.
    #[inline]
    fn admit(&self) -> Result<(u64, Instant), Refused> {
        let word = self.fast.load(Ordering::Acquire);
        if word & NOT_CLOSED == 0 {
            // Closed: admitting changes nothing in the policy. The clock is
            // read only if call durations matter.
            let started = match self.slow_threshold {
                Some(_) => self.clock.now(),
                None => Instant::ZERO,
            };
            Ok((word >> QUIET_BITS, started))
        } else {
            self.try_acquire_locked()
        }
    }

    #[inline(never)]
    fn try_acquire_locked(&self) -> Result<(u64, Instant), Refused> {
        let now = self.clock.now();
        let (generation, transition) = self.with_policy(now, |policy| policy.try_admit(now))?;
        self.notify(transition);
        Ok((generation & GENERATION_MASK, now))
    }

    /// Runs `fut` if the breaker admits it, recording `Err` as a failure:
    /// its value, or why there is none ([`CallError`]).
    pub async fn call<T, E, F>(&self, fut: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        match self.call_classified(fut, Result::is_err).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Inner(e)),
            Err(refused) => Err(CallError::Refused(refused)),
        }
    }

    /// Runs `fut` if the breaker admits it; `is_failure` decides which
    /// outputs count as failures (e.g. not a 404). Dropping the returned
    /// future mid-call records nothing and frees the probe slot.
    pub async fn call_classified<O, F>(
        &self,
        fut: F,
        is_failure: impl FnOnce(&O) -> bool,
    ) -> Result<O, Refused>
    where
        F: Future<Output = O>,
    {
        let permit = self.try_acquire()?;
        let out = fut.await;
        if is_failure(&out) {
            permit.failure();
        } else {
            permit.success();
        }
        Ok(out)
    }

    /// A success: counted lock-free if the published budget allows it and
    /// the permit is from the current closed generation.
    #[inline]
    fn succeed(&self, generation: u64, started: Instant) {
        let now = self.slow_threshold.map(|_| self.clock.now());
        let slow = self.is_slow(started, now);
        if !slow && self.count_quiet_success(generation) {
            return;
        }
        self.finish(generation, started, Ending::Succeeded, now);
    }

    fn count_quiet_success(&self, generation: u64) -> bool {
        let mut word = self.fast.load(Ordering::Relaxed);
        // A not-closed word never matches: its generation bits read 2^43.
        while word >> QUIET_BITS == generation && word & QUIET_MAX > 0 {
            match self.fast.compare_exchange_weak(
                word,
                word - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
        false
    }

    fn is_slow(&self, started: Instant, now: Option<Instant>) -> bool {
        match (self.slow_threshold, now) {
            (Some(t), Some(now)) => now.saturating_duration_since(started) > t,
            _ => false,
        }
    }

    /// Records an outcome (`Some(failed)`) or a release (`None`) under the
    /// lock.
    #[inline(never)]
    fn finish(&self, generation: u64, started: Instant, ending: Ending, now: Option<Instant>) {
        let now = now.unwrap_or_else(|| self.clock.now());
        let slow = self.is_slow(started, Some(now));
        let transition = self.with_policy(now, |policy| {
            // The permit's generation is the policy's modulo 2^43.
            let generation = (policy.generation() & !GENERATION_MASK) | generation;
            match ending {
                Ending::Succeeded => policy.record(
                    generation,
                    Outcome {
                        failed: false,
                        slow,
                    },
                    now,
                ),
                Ending::Failed => policy.record(generation, Outcome { failed: true, slow }, now),
                Ending::Abandoned => {
                    policy.release(generation);
                    None
                }
            }
        });
        self.notify(transition);
    }

    /// Runs `op` on the policy under the lock: first folds in the successes
    /// counted lock-free since the last publish, then runs `op`, then
    /// publishes the new state and budget for the lock-free paths.
    fn with_policy<R>(&self, now: Instant, op: impl FnOnce(&mut Policy) -> R) -> R {
        let mut guard = lock(&self.locked);
        let Locked { policy, quiet } = &mut *guard;
        if *quiet > 0 {
            // The swap stops the count: later fast successes find no budget
            // and wait for this lock.
            let generation = policy.generation() & GENERATION_MASK;
            let left = self.fast.swap(generation << QUIET_BITS, Ordering::AcqRel) & QUIET_MAX;
            policy.record_quiet_successes(*quiet - left as u32, now);
        }
        let out = op(policy);
        let word = match policy.state() {
            BreakerState::Closed => {
                *quiet = policy.quiet_successes().min(QUIET_MAX as u32);
                (policy.generation() & GENERATION_MASK) << QUIET_BITS | u64::from(*quiet)
            }
            _ => {
                *quiet = 0;
                NOT_CLOSED
            }
        };
        self.fast.store(word, Ordering::Release);
        out
    }

    fn notify(&self, transition: Option<Transition>) {
        if let (Some(t), Some(observer)) = (transition, &self.observer) {
            observer(&t);
        }
    }
}

impl<C> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &lock(&self.locked).policy.state())
            .finish()
    }
}

/// A breaker's ticket: the generation and start of an admitted call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    started: Instant,
}

impl<C: Clock> Settle for CircuitBreaker<C> {
    type Ticket = Ticket;

    #[inline]
    fn settle(&self, t: Ticket, ending: Ending) {
        match ending {
            Ending::Succeeded => self.succeed(t.generation, t.started),
            _ => self.finish(t.generation, t.started, ending, None),
        }
    }
}

/// Leave to make one call; say how it went with
/// [`success`](BreakerPermit::success) or
/// [`failure`](BreakerPermit::failure). Dropping it unrecorded frees its
/// probe slot and counts as nothing.
#[must_use = "record the call's outcome, or drop the permit to abandon the call"]
pub struct BreakerPermit<'a, C: Clock>(Held<&'a CircuitBreaker<C>>);

/// A [`BreakerPermit`] that owns an `Arc` of its breaker, from
/// [`CircuitBreaker::try_acquire_owned`]: the same reports, the same
/// release on drop.
#[must_use = "record the call's outcome, or drop the permit to abandon the call"]
pub struct OwnedBreakerPermit<C: Clock>(Held<Arc<CircuitBreaker<C>>>);

permit_api!(
    BreakerPermit<'_, C>,
    "The call succeeded.",
    "The call failed."
);
permit_api!(
    OwnedBreakerPermit<C>,
    "The call succeeded.",
    "The call failed."
);

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;

    fn breaker(config: BreakerConfig) -> (CircuitBreaker<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        (CircuitBreaker::new(config, clock.clone()), clock)
    }

    fn consecutive(k: u32) -> BreakerConfigBuilder {
        BreakerConfig::builder()
            .consecutive_failures(k)
            .open_for(Duration::from_secs(10))
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let b = BreakerConfig::builder;
        assert_eq!(b().build(), Err(BreakerConfigError::NoTripPolicy));
        assert_eq!(
            b().consecutive_failures(0).build(),
            Err(BreakerConfigError::Zero(
                BreakerSetting::ConsecutiveFailures
            ))
        );
        assert_eq!(
            b().window(10, 5).failure_rate(0.0).build(),
            Err(BreakerConfigError::RateOutOfRange(
                BreakerSetting::FailureRate,
                0.0
            ))
        );
        assert_eq!(
            b().window(10, 5).failure_rate(1.5).build(),
            Err(BreakerConfigError::RateOutOfRange(
                BreakerSetting::FailureRate,
                1.5
            ))
        );
        assert!(matches!(
            b().window(10, 5).failure_rate(f64::NAN).build(),
            Err(BreakerConfigError::RateOutOfRange(..))
        ));
        assert_eq!(
            b().window(5, 10).failure_rate(0.5).build(),
            Err(BreakerConfigError::MinCallsAboveWindow {
                min_calls: 10,
                window: 5
            })
        );
        assert_eq!(
            b().window(0, 0).failure_rate(0.5).build(),
            Err(BreakerConfigError::Zero(BreakerSetting::WindowSize))
        );
        assert_eq!(
            b().failure_rate(0.5).build(),
            Err(BreakerConfigError::RateWithoutWindow(
                BreakerSetting::FailureRate
            ))
        );
        assert_eq!(
            consecutive(3)
                .slow_call_rate(Duration::from_secs(1), 0.5)
                .build(),
            Err(BreakerConfigError::RateWithoutWindow(
                BreakerSetting::SlowCallRate
            ))
        );
        assert_eq!(
            b().window(10, 5).build(),
            Err(BreakerConfigError::NoTripPolicy)
        );
        assert_eq!(
            consecutive(3).half_open_probes(0).build(),
            Err(BreakerConfigError::Zero(BreakerSetting::HalfOpenProbes))
        );
        assert_eq!(
            consecutive(3).close_after(0).build(),
            Err(BreakerConfigError::Zero(BreakerSetting::CloseAfter))
        );
        assert_eq!(
            consecutive(3).open_for(Duration::ZERO).build(),
            Err(BreakerConfigError::ZeroDuration(BreakerSetting::OpenFor))
        );
        assert_eq!(
            consecutive(3)
                .backoff(2.0)
                .max_open_for(Duration::from_secs(1))
                .build(),
            Err(BreakerConfigError::BackoffCapBelowOpenDuration)
        );
        for bad in [0.0, 0.999_999, 1000.001, f64::NAN, f64::INFINITY, -1.5] {
            assert!(
                matches!(
                    consecutive(3).backoff(bad).build(),
                    Err(BreakerConfigError::BadMultiplier(m)) if m.to_bits() == bad.to_bits()
                ),
                "{bad}"
            );
        }
        for good in [1.0, 1.5, 1000.0] {
            assert!(consecutive(3).backoff(good).build().is_ok(), "{good}");
        }
        assert_eq!(
            b().window(10, 5)
                .slow_call_rate(Duration::ZERO, 0.5)
                .build(),
            Err(BreakerConfigError::ZeroDuration(
                BreakerSetting::SlowCallThreshold
            ))
        );
        assert!(b().window(10, 10).failure_rate(1.0).build().is_ok());
        assert_eq!(
            b().window(10, 5)
                .time_window(Duration::from_secs(1), 5)
                .failure_rate(0.5)
                .build(),
            Err(BreakerConfigError::TwoWindows)
        );
        assert_eq!(
            b().time_window(Duration::from_nanos(9), 1)
                .failure_rate(0.5)
                .build(),
            Err(BreakerConfigError::ZeroDuration(BreakerSetting::TimeWindow))
        );
        assert_eq!(
            b().time_window(Duration::from_secs(1), 0)
                .failure_rate(0.5)
                .build(),
            Err(BreakerConfigError::Zero(BreakerSetting::MinCalls))
        );
    }

    #[test]
    fn open_breaker_refuses_without_running_the_call() {
        let (b, clock) = breaker(consecutive(1).build().unwrap());
        let ran = std::cell::Cell::new(0);
        let fail = || async {
            ran.set(ran.get() + 1);
            Err::<(), ()>(())
        };
        assert_eq!(run_now(b.call(fail())), Err(CallError::Inner(())));
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: Instant::from_duration(Duration::from_secs(10))
            }
        );
        assert!(matches!(
            run_now(b.call(fail())),
            Err(CallError::Refused(Refused::Open(_)))
        ));
        assert_eq!(ran.get(), 1, "the refused call never ran");
        clock.advance(Duration::from_secs(10));
        assert_eq!(run_now(b.call(async { Ok::<_, ()>(7) })), Ok(7));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    /// Polls a future that never waits to completion.
    fn run_now<F: Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        match fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("test futures complete at once"),
        }
    }

    #[test]
    fn half_open_caps_probes_and_closes_after_successes() {
        let config = consecutive(1)
            .half_open_probes(2)
            .close_after(3)
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        assert_eq!(b.try_acquire().unwrap_err(), Refused::ProbesBusy);
        p1.success();
        let p3 = b.try_acquire().unwrap();
        p2.success();
        assert!(matches!(
            b.state(),
            BreakerState::HalfOpen {
                in_flight: 1,
                successes: 2
            }
        ));
        p3.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let (b, clock) = breaker(consecutive(1).build().unwrap());
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        b.try_acquire().unwrap().failure();
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: Instant::from_duration(Duration::from_secs(20))
            }
        );
    }

    #[test]
    fn dropped_probe_frees_its_slot() {
        let (b, clock) = breaker(consecutive(1).build().unwrap());
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire().unwrap();
        assert_eq!(b.try_acquire().unwrap_err(), Refused::ProbesBusy);
        drop(probe);
        assert!(matches!(
            b.state(),
            BreakerState::HalfOpen {
                in_flight: 0,
                successes: 0
            }
        ));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    /// An owned permit reports and releases exactly as a borrowed one:
    /// its failure trips the breaker from another thread, an owned probe
    /// dropped there frees its slot, and an owned success closes it.
    #[test]
    fn owned_permits_report_and_release_from_another_thread() {
        let (b, clock) = breaker(consecutive(1).build().unwrap());
        let b = Arc::new(b);
        let permit = b.clone().try_acquire_owned().unwrap();
        std::thread::spawn(move || permit.failure()).join().unwrap();
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(matches!(
            b.clone().try_acquire_owned(),
            Err(Refused::Open(_))
        ));
        clock.advance(Duration::from_secs(10));
        let probe = b.clone().try_acquire_owned().unwrap();
        assert_eq!(
            b.clone().try_acquire_owned().unwrap_err(),
            Refused::ProbesBusy
        );
        std::thread::spawn(move || drop(probe)).join().unwrap();
        assert!(matches!(
            b.state(),
            BreakerState::HalfOpen { in_flight: 0, .. }
        ));
        b.clone().try_acquire_owned().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(Arc::strong_count(&b), 1, "permits gave their handle back");
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let (b, clock) = breaker(consecutive(2).build().unwrap());
        let slow_call = b.try_acquire().unwrap(); // admitted while closed
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure(); // opens
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire().unwrap(); // half-open
        slow_call.failure(); // from the closed generation: ignored
        assert!(matches!(
            b.state(),
            BreakerState::HalfOpen { in_flight: 1, .. }
        ));
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    /// A success from a call admitted before a trip, finishing after the
    /// breaker has closed again, is from an old generation: it must not
    /// count in the new window (the lock-free path checks the generation).
    #[test]
    fn stale_success_after_a_full_cycle_is_ignored() {
        let config = BreakerConfig::builder()
            .window(3, 3)
            .failure_rate(0.5)
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        let old = b.try_acquire().unwrap();
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        clock.advance(Duration::from_secs(60));
        b.try_acquire().unwrap().success(); // the probe closes it
        assert_eq!(b.state(), BreakerState::Closed);
        old.success();
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
        }
        // Two failures are below the new window's minimum of three.
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failure_rate_window_with_minimum_calls() {
        let config = BreakerConfig::builder()
            .window(4, 3)
            .failure_rate(0.5)
            .build()
            .unwrap();
        let (b, _clock) = breaker(config);
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure(); // 2 of 2, but under 3 calls
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire().unwrap().success(); // 2 of 3 ≥ 50%
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let config = BreakerConfig::builder()
            .time_window(Duration::from_secs(10), 2)
            .failure_rate(1.0)
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(11)); // that failure's bucket slid out
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Closed, "one failure in the window");
        clock.advance(Duration::from_secs(8));
        b.try_acquire().unwrap().failure();
        assert!(
            matches!(b.state(), BreakerState::Open { .. }),
            "two in the last 10 s"
        );
    }

    #[test]
    fn slow_calls_trip_on_the_injected_clock() {
        let config = BreakerConfig::builder()
            .window(2, 2)
            .slow_call_rate(Duration::from_millis(100), 1.0)
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        for _ in 0..2 {
            let p = b.try_acquire().unwrap();
            clock.advance(Duration::from_millis(101));
            p.success();
        }
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }

    /// Every two-decimal threshold `k / 100` against every window of up to
    /// 10,000 calls: `ceil(k·n / 100)` failures reach it, one fewer does
    /// not. The expectation is integer arithmetic alone.
    #[test]
    fn two_decimal_thresholds_are_exact() {
        for k in 1..=100u32 {
            let rate = f64::from(k) / 100.0;
            let window = RateWindow {
                span: Span::Calls(10_000),
                min_calls: 1,
                failure_rate: Threshold::new(rate),
                slow: None,
            };
            for n in 1..=10_000u32 {
                let at = (k * n).div_ceil(100);
                let counts = |failures| Counts {
                    calls: n,
                    failures,
                    slows: 0,
                };
                assert!(window.trips(counts(at)), "{at} of {n} at {rate}");
                assert!(!window.trips(counts(at - 1)), "{} of {n} at {rate}", at - 1);
            }
        }
    }

    #[test]
    fn thresholds_round_to_nine_decimals_and_refuse_what_rounds_to_zero() {
        assert_eq!(Threshold::new(0.55), Some(Threshold(550_000_000)));
        assert_eq!(Threshold::new(1.0), Some(Threshold(PARTS)));
        assert_eq!(Threshold::new(1e-9), Some(Threshold(1)));
        assert_eq!(Threshold::new(4e-10), None);
        assert_eq!(Threshold::new(0.0), None);
        assert_eq!(Threshold::new(1.0 + f64::EPSILON), None);
        assert_eq!(Threshold::new(f64::NAN), None);
        assert_eq!(Threshold::new(-0.5), None);
    }

    /// The crate-private policy, driven past what a permit allows (a slot
    /// released twice, an outcome recorded after a release), neither
    /// panics nor wedges: the next admission still works.
    #[test]
    fn policy_survives_double_release_and_double_record() {
        let mut policy = Policy::new(consecutive(1).half_open_probes(1).build().unwrap());
        let t0 = Instant::ZERO;
        let (g, _) = policy.try_admit(t0).unwrap();
        policy.record(
            g,
            Outcome {
                failed: true,
                slow: false,
            },
            t0,
        );
        let t1 = t0 + Duration::from_secs(10);
        let (g, _) = policy.try_admit(t1).unwrap();
        policy.release(g);
        policy.release(g);
        policy.record(
            g,
            Outcome {
                failed: false,
                slow: false,
            },
            t1,
        );
        assert!(matches!(
            policy.state(),
            BreakerState::Closed | BreakerState::HalfOpen { in_flight: 0, .. }
        ));
        assert!(policy.try_admit(t1).is_ok(), "not wedged");
    }

    #[test]
    fn open_duration_grows_and_saturates() {
        let config = consecutive(1)
            .open_for(Duration::from_secs(1))
            .backoff(1000.0)
            .max_open_for(Duration::from_secs(60))
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        let mut opens = Vec::new();
        for _ in 0..40 {
            b.try_acquire().unwrap().failure();
            let BreakerState::Open { until } = b.state() else {
                panic!("should be open")
            };
            opens.push(until.saturating_duration_since(clock.now()));
            clock.advance_to(until);
        }
        assert_eq!(opens[0], Duration::from_secs(1));
        assert!(
            opens[1..].iter().all(|&d| d == Duration::from_secs(60)),
            "{opens:?}"
        );
    }

    /// resilience4j's default multiplier, 1.5: each open duration is the
    /// last one's times 3/2, rounded down to the nanosecond, up to the cap;
    /// a close starts again from `open_for`.
    #[test]
    fn open_duration_grows_by_a_fractional_multiplier_rounded_down() {
        let config = consecutive(1)
            .open_for(Duration::from_nanos(1_001))
            .backoff(1.5)
            .max_open_for(Duration::from_nanos(5_000))
            .build()
            .unwrap();
        let (b, clock) = breaker(config);
        let trip = || {
            b.try_acquire().unwrap().failure();
            let BreakerState::Open { until } = b.state() else {
                panic!("should be open")
            };
            let d = until.saturating_duration_since(clock.now()).as_nanos();
            clock.advance_to(until);
            d
        };
        // 1001, 1501 (1501.5 down), 2251 (2251.5 down), 3376 (3376.5 down),
        // then 5064 capped at 5000.
        let opens: Vec<u128> = (0..6).map(|_| trip()).collect();
        assert_eq!(opens, [1_001, 1_501, 2_251, 3_376, 5_000, 5_000]);
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(trip(), 1_001, "a close resets the growth");
    }

    /// Without `max_open_for`, or with a cap beyond `u64::MAX` ns, growth
    /// saturates at `u64::MAX` ns instead of overflowing.
    #[test]
    fn uncapped_growth_saturates() {
        for cap in [None, Some(Duration::MAX)] {
            let mut b = consecutive(1)
                .open_for(Duration::from_secs(1))
                .backoff(1000.0);
            if let Some(cap) = cap {
                b = b.max_open_for(cap);
            }
            let mut policy = Policy::new(b.build().unwrap());
            for _ in 0..10 {
                policy.trip(Instant::ZERO);
            }
            assert_eq!(policy.open_next, Duration::from_nanos(u64::MAX), "{cap:?}");
        }
    }

    #[test]
    fn transitions_are_observed() {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let sink = log.clone();
        let clock = ManualClock::new();
        let b = CircuitBreaker::new(consecutive(1).build().unwrap(), clock.clone())
            .with_observer(move |t| sink.lock().unwrap().push((t.from, t.to)));
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        b.try_acquire().unwrap().success();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3, "{log:?}");
        assert_eq!(log[2].1, BreakerState::Closed);
    }
}
