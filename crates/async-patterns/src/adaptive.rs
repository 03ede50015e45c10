//! An adaptive concurrency limit (AIMD), usable as a bulkhead: it admits a
//! call only while fewer than `limit` are in flight, and moves `limit` by
//! how calls end — additive increase while calls succeed quickly and the
//! limit is in use, multiplicative decrease on a failure or a call slower
//! than the latency target. Overload is shed at once with [`Overloaded`],
//! never queued: the caller decides whether to wait, retry or fail.
//!
//! This is the seeds' "adaptive rate limiter", done the way services do it
//! (Netflix's `concurrency-limits` AIMD): the limit tracks how much
//! concurrency the dependency can take instead of a rate guessed up front.
//!
//! # The rule, per finished call
//!
//! * failure, or latency above the target: `limit = max(min, ⌊limit × backoff⌋)`,
//!   in integers: the ratio is kept in millionths (rounded to the nearest),
//!   so `0.99` takes 100 to exactly 99;
//! * success within the target, with at least half the limit in flight
//!   when it finished: `limit = min(max, limit + increase)`;
//! * otherwise (a success while the limit is mostly unused, or a dropped
//!   call): unchanged.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | calls in flight never exceed the limit in force when each was admitted, nor `max` | proptest `adaptive_limit_matches_reference_model` (`tests/adaptive_model.rs`); loom `loom_adaptive_admissions_never_exceed_the_limit` |
//! | the limit stays within `min..=max` and follows the rule above exactly | proptest `adaptive_limit_matches_reference_model` |
//! | a dropped (cancelled) call frees its slot and moves nothing | proptest (drops are in the op mix); loom `loom_adaptive_admissions_never_exceed_the_limit` |
//! | an owned permit ([`AdaptiveLimit::try_acquire_owned`]) counts, releases and reports exactly as a borrowed one, from any thread | unit test `owned_permits_count_release_and_report`; `tests/async_send_sync.rs` (it is `Send + Sync + 'static`) |
//! | bad configuration is a typed [`AdaptiveConfigError`] | unit test `bad_configs_are_typed_errors` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::adaptive::{AdaptiveLimit, AdaptiveConfig};
//! use async_patterns::time::ManualClock;
//!
//! let config = AdaptiveConfig::builder().limits(1, 4, 100).initial(2).build().unwrap();
//! let limit = AdaptiveLimit::new(config, ManualClock::new());
//! let a = limit.try_acquire().unwrap();
//! let b = limit.try_acquire().unwrap();
//! assert!(limit.try_acquire().is_err()); // shed, not queued
//! a.success(); // 2 in flight of 2 when it finished: the limit grows
//! assert_eq!(limit.limit(), 3);
//! b.failure(); // halves it
//! assert_eq!(limit.limit(), 1);
//! ```

use crate::Ending;
use crate::events::emit;
use crate::millionths;
use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use crate::permit::{Held, Settle, permit_api};
use crate::sync::{Mutex, lock};
use crate::time::{Clock, Instant};

/// Why a [`AdaptiveConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum AdaptiveConfigError {
    /// The minimum limit was 0: nothing could ever run.
    ZeroMin,
    /// `min <= initial <= max` does not hold.
    OutOfOrder {
        /// The minimum.
        min: u32,
        /// The initial limit.
        initial: u32,
        /// The maximum.
        max: u32,
    },
    /// The additive increase was 0: the limit could never grow.
    ZeroIncrease,
    /// The backoff ratio is not a number in (0, 1), or is under 0.0000005,
    /// which rounds to zero millionths.
    Backoff(f64),
    /// The latency target was zero: every call would count as slow.
    ZeroLatencyTarget,
}

impl fmt::Display for AdaptiveConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdaptiveConfigError::ZeroMin => f.write_str("the minimum limit must be at least 1"),
            AdaptiveConfigError::OutOfOrder { min, initial, max } => {
                write!(f, "need min <= initial <= max, got {min}, {initial}, {max}")
            }
            AdaptiveConfigError::ZeroIncrease => {
                f.write_str("the additive increase must be at least 1")
            }
            AdaptiveConfigError::Backoff(b) => {
                write!(f, "backoff ratio {b} is not in (0, 1) (at least 0.0000005)")
            }
            AdaptiveConfigError::ZeroLatencyTarget => {
                f.write_str("the latency target must be above zero")
            }
        }
    }
}

impl std::error::Error for AdaptiveConfigError {}

/// A validated AIMD configuration; build it with [`AdaptiveConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    min: u32,
    max: u32,
    initial: u32,
    increase: u32,
    /// As given (what `Debug` shows).
    backoff: f64,
    /// The backoff ratio in millionths, in 0..10⁶.
    backoff_millionths: u64,
    latency_target: Option<Duration>,
}

/// Builds a [`AdaptiveConfig`]. Defaults: limits 1..=1000 starting at 10, increase
/// 1, backoff 0.5, no latency target.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveConfigBuilder {
    min: u32,
    max: u32,
    initial: Option<u32>,
    increase: u32,
    backoff: f64,
    latency_target: Option<Duration>,
}

impl AdaptiveConfig {
    /// A builder with the defaults listed on [`AdaptiveConfigBuilder`].
    pub fn builder() -> AdaptiveConfigBuilder {
        AdaptiveConfigBuilder {
            min: 1,
            max: 1_000,
            initial: None,
            increase: 1,
            backoff: 0.5,
            latency_target: None,
        }
    }
}

impl AdaptiveConfigBuilder {
    /// The limit's range and its initial value.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn limits(mut self, min: u32, initial: u32, max: u32) -> Self {
        (self.min, self.max, self.initial) = (min, max, Some(initial));
        self
    }

    /// The initial limit (default: 10, or `min` if higher).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn initial(mut self, initial: u32) -> Self {
        self.initial = Some(initial);
        self
    }

    /// Added to the limit per fast success at high use (default 1).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn increase(mut self, step: u32) -> Self {
        self.increase = step;
        self
    }

    /// The limit is multiplied by this on a failure or slow call (default
    /// 0.5), and rounded down. The ratio is kept in millionths, rounded to
    /// the nearest (one that would round to 1, above 0.9999995, counts as
    /// 0.999999; one that would round to 0, under 0.0000005, is refused),
    /// so the product is exact: 0.99 takes 100 to 99.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn backoff(mut self, ratio: f64) -> Self {
        self.backoff = ratio;
        self
    }

    /// Calls slower than this count as overload, like failures.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn latency_target(mut self, target: Duration) -> Self {
        self.latency_target = Some(target);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<AdaptiveConfig, AdaptiveConfigError> {
        let initial = self.initial.unwrap_or(self.min.max(10).min(self.max));
        if self.min == 0 {
            return Err(AdaptiveConfigError::ZeroMin);
        }
        if !(self.min <= initial && initial <= self.max) {
            return Err(AdaptiveConfigError::OutOfOrder {
                min: self.min,
                initial,
                max: self.max,
            });
        }
        if self.increase == 0 {
            return Err(AdaptiveConfigError::ZeroIncrease);
        }
        if !(self.backoff < 1.0 && millionths::of(self.backoff) > 0) {
            return Err(AdaptiveConfigError::Backoff(self.backoff));
        }
        if self.latency_target == Some(Duration::ZERO) {
            return Err(AdaptiveConfigError::ZeroLatencyTarget);
        }
        Ok(AdaptiveConfig {
            min: self.min,
            max: self.max,
            initial,
            increase: self.increase,
            backoff: self.backoff,
            // In (0, 1), so the rounded millionths are in 1..=10⁶; a ratio
            // that rounds to 10⁶ would never shrink the limit: one less.
            backoff_millionths: millionths::of(self.backoff).min(millionths::ONE - 1),
            latency_target: self.latency_target,
        })
    }
}

/// "Not now": the limit is reached; the call was shed without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    /// The limit in force.
    pub limit: u32,
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "overloaded: {} calls in flight already", self.limit)
    }
}

impl std::error::Error for Overloaded {}

#[derive(Debug)]
struct State {
    limit: u32,
    in_flight: u32,
}

type Observer = Box<dyn Fn(u32) + Send + Sync>;

/// An AIMD concurrency limit on an injected clock. See the
/// [module docs](self).
pub struct AdaptiveLimit<C> {
    config: AdaptiveConfig,
    clock: C,
    state: Mutex<State>,
    observer: Option<Observer>,
}

impl<C: Clock> AdaptiveLimit<C> {
    /// A limit at `config`'s initial value, nothing in flight.
    pub fn new(config: AdaptiveConfig, clock: C) -> Self {
        AdaptiveLimit {
            state: Mutex::new(State {
                limit: config.initial,
                in_flight: 0,
            }),
            config,
            clock,
            observer: None,
        }
    }

    /// Calls `observer` with the new limit whenever it changes (outside
    /// the lock).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_observer(mut self, observer: impl Fn(u32) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        lock(&self.state).limit
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        lock(&self.state).in_flight
    }

    /// Admits one call if fewer than the limit are in flight.
    pub fn try_acquire(&self) -> Result<AdaptivePermit<'_, C>, Overloaded> {
        let started = self.admit()?;
        Ok(AdaptivePermit(Held::new(self, started)))
    }

    /// [`try_acquire`](Self::try_acquire) for a permit that owns a handle
    /// to the limit, so it can move into a spawned task or a response
    /// future (`'static` and `Send` when the clock is).
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedAdaptivePermit<C>, Overloaded> {
        let started = self.admit()?;
        Ok(OwnedAdaptivePermit(Held::new(self, started)))
    }

    /// Counts one more call in flight, if the limit allows: its start.
    fn admit(&self) -> Result<Instant, Overloaded> {
        {
            let mut state = lock(&self.state);
            if state.in_flight >= state.limit {
                async_patterns_assert::reachable!(crate::points::ADAPTIVE_SHED);
                emit!(
                    target: "async_patterns::adaptive",
                    tracing::Level::DEBUG,
                    limit = state.limit,
                    "overloaded: call shed"
                );
                return Err(Overloaded { limit: state.limit });
            }
            state.in_flight += 1;
        }
        // The clock is read only if latency matters.
        Ok(match self.config.latency_target {
            Some(_) => self.clock.now(),
            None => Instant::ZERO,
        })
    }

    fn finish(&self, started: Instant, ending: Ending) {
        let now = self.config.latency_target.map(|_| self.clock.now());
        let changed = {
            let mut state = lock(&self.state);
            // Use is judged with this call still counted in flight.
            let busy = state.in_flight.saturating_mul(2) >= state.limit;
            state.in_flight -= 1;
            let slow = match (self.config.latency_target, now) {
                (Some(t), Some(now)) => now.saturating_duration_since(started) > t,
                _ => false,
            };
            let before = state.limit;
            state.limit = match ending {
                Ending::Failed => self.decreased(before),
                Ending::Succeeded if slow => self.decreased(before),
                Ending::Succeeded if busy => before
                    .saturating_add(self.config.increase)
                    .min(self.config.max),
                _ => before,
            };
            (state.limit != before).then_some(state.limit)
        };
        let Some(limit) = changed else { return };
        emit!(
            target: "async_patterns::adaptive",
            tracing::Level::DEBUG,
            limit,
            "adaptive limit moved"
        );
        if let Some(observer) = &self.observer {
            observer(limit);
        }
    }

    fn decreased(&self, limit: u32) -> u32 {
        // ⌊limit × millionths / 10⁶⌋ < limit: fits in u32.
        let shrunk = millionths::scale(u128::from(limit), self.config.backoff_millionths);
        (shrunk as u32).max(self.config.min)
    }
}

impl<C> fmt::Debug for AdaptiveLimit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("AdaptiveLimit")
            .field("limit", &state.limit)
            .field("in_flight", &state.in_flight)
            .finish()
    }
}

impl<C: Clock> Settle for AdaptiveLimit<C> {
    type Ticket = Instant;

    fn settle(&self, started: Instant, ending: Ending) {
        self.finish(started, ending);
    }
}

/// One admitted call: report how it went with
/// [`success`](AdaptivePermit::success) or
/// [`failure`](AdaptivePermit::failure); dropping it frees the slot and
/// moves nothing.
#[must_use = "report the call's outcome, or drop the permit to abandon it"]
pub struct AdaptivePermit<'a, C: Clock>(Held<&'a AdaptiveLimit<C>>);

/// An [`AdaptivePermit`] that owns an `Arc` of its limit, from
/// [`AdaptiveLimit::try_acquire_owned`]: the same reports, the same
/// release on drop.
#[must_use = "report the call's outcome, or drop the permit to abandon it"]
pub struct OwnedAdaptivePermit<C: Clock>(Held<Arc<AdaptiveLimit<C>>>);

permit_api!(
    AdaptivePermit<'_, C>,
    "The call succeeded (its latency is measured on the limit's clock).",
    "The call failed, or was rejected downstream as overload."
);
permit_api!(
    OwnedAdaptivePermit<C>,
    "The call succeeded (its latency is measured on the limit's clock).",
    "The call failed, or was rejected downstream as overload."
);

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use crate::time::ManualClock;

    /// Owned permits count in flight, free their slot when dropped in
    /// another thread, and move the limit as borrowed ones do.
    #[test]
    fn owned_permits_count_release_and_report() {
        let config = AdaptiveConfig::builder()
            .limits(1, 2, 4)
            .backoff(0.5)
            .build()
            .unwrap();
        let limit = Arc::new(AdaptiveLimit::new(config, ManualClock::new()));
        let a = limit.clone().try_acquire_owned().unwrap();
        let b = limit.clone().try_acquire_owned().unwrap();
        assert_eq!(limit.in_flight(), 2);
        assert_eq!(
            limit.clone().try_acquire_owned().unwrap_err(),
            Overloaded { limit: 2 }
        );
        std::thread::spawn(move || drop(a)).join().unwrap();
        assert_eq!(
            (limit.in_flight(), limit.limit()),
            (1, 2),
            "a drop moves nothing"
        );
        b.failure();
        assert_eq!((limit.in_flight(), limit.limit()), (0, 1));
        limit.clone().try_acquire_owned().unwrap().success();
        assert_eq!((limit.in_flight(), limit.limit()), (0, 2));
        assert_eq!(Arc::strong_count(&limit), 1);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let err = |b: AdaptiveConfigBuilder| b.build().unwrap_err();
        assert_eq!(
            err(AdaptiveConfig::builder().limits(0, 1, 5)),
            AdaptiveConfigError::ZeroMin
        );
        assert_eq!(
            err(AdaptiveConfig::builder().limits(2, 1, 5)),
            AdaptiveConfigError::OutOfOrder {
                min: 2,
                initial: 1,
                max: 5
            }
        );
        assert_eq!(
            err(AdaptiveConfig::builder().increase(0)),
            AdaptiveConfigError::ZeroIncrease
        );
        assert_eq!(
            err(AdaptiveConfig::builder().backoff(1.0)),
            AdaptiveConfigError::Backoff(1.0)
        );
        assert_eq!(
            err(AdaptiveConfig::builder().backoff(0.0)),
            AdaptiveConfigError::Backoff(0.0)
        );
        // Positive, but zero millionths: it would act as 0.
        for tiny in [4e-7, 1e-300, -0.5] {
            assert_eq!(
                err(AdaptiveConfig::builder().backoff(tiny)),
                AdaptiveConfigError::Backoff(tiny)
            );
        }
        assert!(AdaptiveConfig::builder().backoff(5e-7).build().is_ok());
        assert!(matches!(
            err(AdaptiveConfig::builder().backoff(f64::NAN)),
            AdaptiveConfigError::Backoff(_)
        ));
        assert_eq!(
            err(AdaptiveConfig::builder().latency_target(Duration::ZERO)),
            AdaptiveConfigError::ZeroLatencyTarget
        );
        assert_eq!(AdaptiveConfig::builder().build().unwrap().initial, 10);
    }

    /// The decrease is exact: 100 × 0.99 is 99 (`f64` multiplication
    /// gives 98.99999999999999); a ratio just below 1 still shrinks the
    /// limit, and the smallest (one millionth) takes it to the minimum.
    #[test]
    fn the_decrease_is_an_exact_product_rounded_down() {
        let after_failure = |ratio: f64, limit: u32| {
            let config = AdaptiveConfig::builder()
                .limits(3, limit, 1_000)
                .backoff(ratio)
                .build()
                .unwrap();
            let adaptive = AdaptiveLimit::new(config, ManualClock::new());
            adaptive.try_acquire().unwrap().failure();
            adaptive.limit()
        };
        assert_eq!(after_failure(0.99, 100), 99);
        assert_eq!(after_failure(0.9, 1_000), 900);
        assert_eq!(after_failure(0.7, 10), 7);
        assert_eq!(after_failure(0.9999999, 1_000), 999);
        assert_eq!(after_failure(5e-7, 1_000), 3);
        assert_eq!(after_failure(0.5, 7), 3);
    }
}
