//! Retry with exponential backoff and jitter, bounded by attempts, by an
//! overall deadline and by a shared [`RetryBudget`].
//!
//! The policy ([`RetryPolicy`], [`Schedule`]) is pure: it says how long to wait
//! before each retry, from a seeded generator, and knows nothing of futures.
//! [`Retrier`] is the mechanism: it runs an operation, asks a classifier
//! whether an error is worth retrying, sleeps on the injected [`Timer`], and
//! reports each retry to an observer.
//!
//! # Seeds: choose one, visibly
//!
//! Jitter exists so that clients which failed together do not retry
//! together. The core never reads an unseeded RNG (a simulation must be a
//! pure function of its seed), so a jittered policy **must be given a
//! seed**: [`RetryPolicyBuilder::build`] refuses one without it
//! ([`RetryConfigError::NoSeed`]).
//!
//! - In production, give every process its own: e.g.
//!   `.seed(async_patterns_tokio::entropy_seed())`, or any random `u64`
//!   your service already has. A constant here makes a whole fleet retry in
//!   lockstep.
//! - In tests and simulations, give a fixed seed (derived from the
//!   simulation's seed), so that a run replays exactly.
//!
//! Within one process, retriers sharing a policy still draw apart: each
//! has an id ([`Retrier::with_id`]) and each call a stream of its own.
//!
//! # Refusals that say when
//!
//! A classifier returns a [`Decision`] (or a `bool`): retry after the
//! policy's delay, retry **not before an instant** — a circuit breaker's
//! [`Refused::Open`] or a rate
//! limiter's [`NotUntil`] convert into
//! [`Decision::RetryAfter`] — or stop. So a retrier around our own breaker
//! waits for it to half-open (or gives up when that is past its deadline)
//! instead of spending its attempts on refusals:
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::{
//!     BreakerConfig, CallError, CircuitBreaker, Decision, Jitter, ManualClock, Retrier,
//!     RetryPolicy,
//! };
//!
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::new(
//!     BreakerConfig::builder().consecutive_failures(3).build().unwrap(),
//!     clock.clone(),
//! );
//! let policy = RetryPolicy::builder()
//!     .max_attempts(5)
//!     .max_elapsed(Duration::from_secs(60))
//!     .jitter(Jitter::Equal)
//!     .seed(7) // fixed for the example; entropy_seed() in production
//!     .build()
//!     .unwrap();
//! let retrier = Retrier::new(policy, clock.clone());
//! let call = retrier.run_classified(
//!     |_attempt| breaker.call(async { Ok::<_, &str>("fresh data") }),
//!     // Open: not before it half-opens. Busy probes or a failed call: the
//!     // usual delay.
//!     |e: &CallError<&str>| Decision::from(e),
//! );
//! # let out = futures::executor::block_on(call);
//! # assert!(matches!(out, Ok("fresh data")));
//! ```
//!
//! # Delays
//!
//! Delays before retry `n` (from 0), with `ceil(0) = base` and
//! `ceil(n + 1) = min(cap, ⌊ceil(n) × factor⌋)` in whole nanoseconds (the
//! factor, from 1 to 1000, is kept in millionths rounded to the nearest,
//! so this is exact integer arithmetic; a ceiling past `u64::MAX` ns
//! saturates there):
//!
//! | jitter | delay |
//! |---|---|
//! | [`Jitter::None`] | `ceil(n)` |
//! | [`Jitter::Full`] | uniform in `0..=ceil(n)` |
//! | [`Jitter::Equal`] | uniform in `ceil(n)/2..=ceil(n)` |
//! | [`Jitter::Decorrelated`] | uniform in `base..=3 × previous`, capped at `cap` (the first previous is `base`) |
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | every delay is within its jitter's bounds above | proptest `delays_stay_within_their_jitter_bounds` (`tests/retry_model.rs`) |
//! | the same seed and retrier id give the same delays; other ids, other delays | proptest `same_seed_same_delays`; unit test `derived_streams_differ_by_id_and_repeat_by_seed` (`rng`) |
//! | at most `max_attempts` attempts; a non-retryable error stops at once | proptest `retrier_matches_reference_model` |
//! | a retry the classifier puts off until an instant starts no earlier than it (and not before the policy's delay); one put off to or past the deadline is not made | proptest `retrier_matches_reference_model` (refusals with an instant are part of the outcome mix); unit test `retry_waits_for_the_breaker_to_half_open` (`tests/retry.rs`) |
//! | every attempt is handed the one overall deadline (what is left of `max_elapsed`, never a fresh one) | proptest `retrier_matches_reference_model` (each attempt's [`Attempt::deadline`] is checked) |
//! | a jittered policy cannot be built without a seed; retriers seeded the recommended way draw distinct, uniform delays | unit test `bad_policies_are_typed_errors`; `fleet_seeded_from_entropy_draws_distinct_uniform_delays` (`async-patterns-tokio`) |
//! | no sleep ends past `max_elapsed` after the first attempt began (attempts included): a retry that would start at or after it is not made | proptest `retrier_matches_reference_model` (virtual time) |
//! | retries never exceed the budget's `⌊ratio × calls⌋ + floor` over its window (the ratio to the nearest millionth) | proptest `retrier_matches_reference_model` (shared budget); unit tests in [`budget`]; loom `loom_budget_withdrawals_never_exceed_the_allowance` |
//! | each retry is reported to the observer before its sleep, with its delay | insta snapshot `seeded_retry_schedule` (`tests/retry.rs`, in `snapshots/`); proptest `retrier_matches_reference_model` (the observer reads the clock: still the failure's instant) |
//! | bad configuration is a typed [`RetryConfigError`] when built | unit test `bad_policies_are_typed_errors` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::retry::{Jitter, RetryPolicy, Retrier};
//! use async_patterns::time::ManualClock;
//!
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1))
//!     .jitter(Jitter::Full)
//!     // A fixed seed, for a reproducible example; in production give each
//!     // process its own (e.g. `async_patterns_tokio::entropy_seed()`).
//!     .seed(42)
//!     .build()
//!     .unwrap();
//! // The same seed always gives the same schedule.
//! let delays: Vec<Duration> = policy.schedule(0).take(3).collect();
//! assert_eq!(delays, policy.schedule(0).take(3).collect::<Vec<_>>());
//! let retrier = Retrier::new(policy, ManualClock::new());
//! # let _ = retrier;
//! ```

pub mod budget;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod policy;

pub use budget::{BudgetError, RetryBudget};
pub use policy::{Jitter, RetryConfigError, RetryPolicy, RetryPolicyBuilder, Schedule};

use crate::circuit_breaker::{CallError, Refused};
use crate::deadline::Deadline;
use crate::events::emit;
use crate::rate_limiter::{CheckError, NotUntil};
use crate::rng::SplitMix64;
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Instant, Timer};

/// What a classifier says about an error: see [`Retrier::run_classified`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Retry after the policy's next delay.
    Retry,
    /// Retry, but not before this instant: the retry starts at the later
    /// of it and the policy's next delay, and is not made (the retrier
    /// gives up with [`GaveUp::Elapsed`]) when that is at or past the
    /// overall deadline.
    RetryAfter(Instant),
    /// Do not retry ([`GaveUp::NotRetryable`]).
    Stop,
}

/// `true` retries, `false` stops.
impl From<bool> for Decision {
    fn from(retry: bool) -> Self {
        if retry {
            Decision::Retry
        } else {
            Decision::Stop
        }
    }
}

/// An open breaker: not before it half-opens. Busy probe slots: the
/// policy's delay.
impl From<&Refused> for Decision {
    fn from(refused: &Refused) -> Self {
        match *refused {
            Refused::Open(until) => Decision::RetryAfter(until),
            Refused::ProbesBusy => Decision::Retry,
        }
    }
}

/// A breaker's refusal as for [`Refused`]; a failed call: retry after the
/// policy's delay (classify the inner error yourself when some are fatal).
impl<E> From<&CallError<E>> for Decision {
    fn from(e: &CallError<E>) -> Self {
        match e {
            CallError::Refused(r) => Decision::from(r),
            CallError::Inner(_) => Decision::Retry,
        }
    }
}

/// Not before the limiter conforms; never, if it never will.
impl From<&NotUntil> for Decision {
    fn from(e: &NotUntil) -> Self {
        match e.earliest() {
            Instant::MAX => Decision::Stop,
            at => Decision::RetryAfter(at),
        }
    }
}

/// Not before the limiter conforms; never for more than its burst.
impl From<&CheckError> for Decision {
    fn from(e: &CheckError) -> Self {
        match e {
            CheckError::NotUntil(e) => e.into(),
            _ => Decision::Stop,
        }
    }
}

/// Why a [`Retrier`] stopped and returned the last error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GaveUp {
    /// The classifier said the error is not worth retrying.
    NotRetryable,
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next retry would have started at or after `max_elapsed` (its
    /// delay, or the instant the classifier put it off to, reached it).
    Elapsed,
    /// The retry budget had nothing left.
    Budget,
}

/// The last error, how many attempts were made, and why no more were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryError<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Why the retrier stopped.
    pub gave_up: GaveUp,
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.gave_up {
            GaveUp::NotRetryable => "not retryable",
            GaveUp::Attempts => "out of attempts",
            GaveUp::Elapsed => "out of time",
            GaveUp::Budget => "retry budget spent",
        };
        write!(
            f,
            "{} after {} attempt(s) ({why})",
            self.error, self.attempts
        )
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}

/// What an operation is told about the attempt it is making.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first call, 2 for the first retry, …
    pub number: u32,
    /// The overall deadline (`max_elapsed` after the first attempt began),
    /// to pass on to nested calls; `None` without `max_elapsed`.
    pub deadline: Option<Deadline>,
}

/// A retry about to be made, as passed to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryEvent {
    /// The retrier's id.
    pub id: u64,
    /// The attempt that failed (1 = the first call).
    pub failed_attempt: u32,
    /// When it was seen to fail.
    pub at: Instant,
    /// The sleep before the next attempt.
    pub delay: Duration,
}

type Observer = Box<dyn Fn(&RetryEvent) + Send + Sync>;

/// Runs operations under a [`RetryPolicy`] on an injected timer. See the
/// [module docs](self).
pub struct Retrier<T> {
    policy: RetryPolicy,
    timer: T,
    id: u64,
    runs: AtomicU64,
    budget: Option<Arc<RetryBudget>>,
    observer: Option<Observer>,
}

impl<T: Timer> Retrier<T> {
    /// A retrier with id 0, no budget and no observer.
    pub fn new(policy: RetryPolicy, timer: T) -> Self {
        Retrier {
            policy,
            timer,
            id: 0,
            runs: AtomicU64::new(0),
            budget: None,
            observer: None,
        }
    }

    /// Sets the id that, with the policy's seed, picks this retrier's jitter
    /// stream: give each client its own, so they do not retry in lockstep.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// Draws every retry from `budget` (shared with other retriers), and
    /// deposits every call into it.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Calls `observer` before each retry's sleep.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn with_observer(mut self, observer: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Runs `op` until it succeeds, retrying every error.
    pub async fn run<O, E, F, Fut>(&self, op: F) -> Result<O, RetryError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        self.run_classified(op, |_| true).await
    }

    /// Runs `op` until it succeeds, retrying as `classify` decides for
    /// each error: a `bool` (retry or not), or a [`Decision`], which can
    /// put a retry off until an instant (`(&refused).into()` for a circuit
    /// breaker's or a rate limiter's refusal).
    ///
    /// The `k`-th call of this retrier whose first attempt fails (counting
    /// from 0) draws its delays from `policy.schedule(SplitMix64::derive(id,
    /// k).next_u64())`, so a deterministic caller gets deterministic delays.
    ///
    /// `max_elapsed` stops *retries*; it does not cut an attempt short. To
    /// bound the attempts too, wrap each in
    /// [`timeout_at`](crate::deadline::timeout_at) with
    /// [`Attempt::deadline`]. A retry's budget is withdrawn before its
    /// sleep, so a call cancelled during the sleep has spent it.
    /// A call that succeeds at once reads the clock only if `max_elapsed`
    /// or a budget needs its start.
    pub async fn run_classified<O, E, F, Fut, D>(
        &self,
        mut op: F,
        classify: impl Fn(&E) -> D,
    ) -> Result<O, RetryError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        D: Into<Decision>,
    {
        // A call that succeeds at once reads no clock and draws no delay:
        // the clock is read up front only if a limit needs the start.
        let start =
            (self.policy.max_elapsed.is_some() || self.budget.is_some()).then(|| self.timer.now());
        let deadline = start
            .zip(self.policy.max_elapsed)
            .map(|(start, d)| Deadline::at(start + d));
        if let (Some(budget), Some(start)) = (&self.budget, start) {
            budget.deposit(start);
        }
        let mut schedule = None;
        let mut number = 1;
        loop {
            let error = match op(Attempt { number, deadline }).await {
                Ok(out) => return Ok(out),
                Err(error) => error,
            };
            let schedule = schedule.get_or_insert_with(|| {
                let k = self.runs.fetch_add(1, Ordering::Relaxed);
                self.policy
                    .schedule(SplitMix64::derive(self.id, k).next_u64())
            });
            let delay = schedule.next_nanos();
            let now = self.timer.now();
            let mut wake = Instant::from_nanos(now.as_nanos().saturating_add(delay));
            let decision = classify(&error).into();
            if let Decision::RetryAfter(at) = decision {
                wake = wake.max(at);
            }
            let gave_up = if decision == Decision::Stop {
                Some(GaveUp::NotRetryable)
            } else if number >= self.policy.max_attempts {
                Some(GaveUp::Attempts)
            } else if deadline.is_some_and(|d| wake >= d.instant()) {
                Some(GaveUp::Elapsed)
            } else if self
                .budget
                .as_ref()
                .is_some_and(|budget| !budget.try_withdraw(now))
            {
                Some(GaveUp::Budget)
            } else {
                None
            };
            if let Some(gave_up) = gave_up {
                async_patterns_assert::reachable!(crate::points::RETRY_GAVE_UP);
                emit!(
                    target: "async_patterns::retry",
                    tracing::Level::DEBUG,
                    retrier = self.id,
                    attempts = number,
                    gave_up = ?gave_up,
                    "retrier gave up"
                );
                return Err(RetryError {
                    error,
                    attempts: number,
                    gave_up,
                });
            }
            emit!(
                target: "async_patterns::retry",
                tracing::Level::DEBUG,
                retrier = self.id,
                failed_attempt = number,
                delay_ns = wake.saturating_duration_since(now).as_nanos() as u64,
                reason = ?decision,
                "retrying"
            );
            if let Some(observer) = &self.observer {
                observer(&RetryEvent {
                    id: self.id,
                    failed_attempt: number,
                    at: now,
                    delay: wake.saturating_duration_since(now),
                });
            }
            if wake > now {
                self.timer.sleep_until(wake).await;
            }
            number += 1;
        }
    }
}

impl<T> fmt::Debug for Retrier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;

    /// The policy reports the limit it was built with (the tower retry
    /// layer reads it), and none by default.
    #[test]
    fn the_policy_reports_its_max_elapsed() {
        let unlimited = RetryPolicy::builder().seed(1).build().unwrap();
        assert_eq!(unlimited.max_elapsed(), None);
        let limited = RetryPolicy::builder()
            .seed(1)
            .max_elapsed(Duration::from_millis(2_500))
            .build()
            .unwrap();
        assert_eq!(limited.max_elapsed(), Some(Duration::from_millis(2_500)));
    }

    #[test]
    fn bad_policies_are_typed_errors() {
        let ms = Duration::from_millis;
        let err = |b: RetryPolicyBuilder| b.build().unwrap_err();
        assert_eq!(
            err(RetryPolicy::builder().max_attempts(0)),
            RetryConfigError::ZeroAttempts
        );
        assert_eq!(
            err(RetryPolicy::builder().exponential(Duration::ZERO, 2.0, ms(5))),
            RetryConfigError::ZeroBase
        );
        assert_eq!(
            err(RetryPolicy::builder().exponential(ms(1), 0.5, ms(5))),
            RetryConfigError::BadFactor(0.5)
        );
        assert!(matches!(
            err(RetryPolicy::builder().exponential(ms(1), f64::INFINITY, ms(5))),
            RetryConfigError::BadFactor(_)
        ));
        // Up to 1000, as the breaker's multiplier: a factor kept in u64
        // millionths could not hold 1e14 (it would grow by 1.8e13 at most).
        for huge in [1000.001, 1e14] {
            assert_eq!(
                err(RetryPolicy::builder().exponential(ms(1), huge, ms(5))),
                RetryConfigError::BadFactor(huge)
            );
        }
        let most = RetryPolicy::builder()
            .exponential(Duration::from_nanos(1), 1000.0, Duration::MAX)
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let ns: Vec<u128> = most.schedule(0).take(3).map(|d| d.as_nanos()).collect();
        assert_eq!(ns, [1, 1000, 1_000_000]);
        assert_eq!(
            err(RetryPolicy::builder().exponential(ms(10), 2.0, ms(5))),
            RetryConfigError::CapBelowBase
        );
        assert_eq!(
            err(RetryPolicy::builder().max_elapsed(Duration::ZERO)),
            RetryConfigError::ZeroMaxElapsed
        );
        // Zero delay is fine when asked for explicitly.
        assert!(
            RetryPolicy::builder()
                .constant(Duration::ZERO)
                .seed(1)
                .build()
                .is_ok()
        );
        // Jitter needs a seed; without jitter nothing is drawn.
        assert_eq!(err(RetryPolicy::builder()), RetryConfigError::NoSeed);
        assert_eq!(
            err(RetryPolicy::builder().jitter(Jitter::Decorrelated)),
            RetryConfigError::NoSeed
        );
        assert!(RetryPolicy::builder().jitter(Jitter::None).build().is_ok());
    }

    #[test]
    fn refusals_convert_into_decisions() {
        use crate::rate_limiter::{Quota, RateLimiter};
        use crate::time::ManualClock;
        let at = Instant::from_nanos(5);
        assert_eq!(Decision::from(true), Decision::Retry);
        assert_eq!(Decision::from(false), Decision::Stop);
        assert_eq!(Decision::from(&Refused::Open(at)), Decision::RetryAfter(at));
        assert_eq!(Decision::from(&Refused::ProbesBusy), Decision::Retry);

        let clock = ManualClock::new();
        let limiter = RateLimiter::new(Quota::per_second(1).unwrap(), clock.clone());
        limiter.check().unwrap();
        // "Not now": not before the instant it names (1 s).
        let second = Instant::from_nanos(1_000_000_000);
        let e = limiter.check().unwrap_err();
        assert_eq!(Decision::from(&e), Decision::RetryAfter(second));
        let e = limiter.check_n(1).unwrap_err();
        assert_eq!(Decision::from(&e), Decision::RetryAfter(second));
        // "Never": more than the burst at once, or a limiter that can never
        // conform again (its clock at the end of time).
        let e = limiter.check_n(2).unwrap_err();
        assert_eq!(Decision::from(&e), Decision::Stop);
        clock.advance_to(Instant::MAX);
        let e = limiter.check().unwrap_err();
        assert_eq!(e.earliest(), Instant::MAX);
        assert_eq!(Decision::from(&e), Decision::Stop);
    }

    #[test]
    fn exponential_ceiling_grows_then_holds_at_the_cap() {
        let policy = RetryPolicy::builder()
            .exponential(Duration::from_millis(100), 2.0, Duration::from_millis(500))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let delays: Vec<u64> = policy
            .schedule(0)
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 500, 500, 500]);
        // The ceiling ahead of each delay, read before drawing it.
        let mut schedule = policy.schedule(0);
        let mut ceilings = Vec::new();
        for _ in 0..4 {
            ceilings.push(schedule.ceiling().as_millis() as u64);
            schedule.next();
        }
        assert_eq!(ceilings, [100, 200, 400, 500]);
        assert_eq!(policy.max_attempts(), 3, "the builder's default");
        let once = RetryPolicy::builder().max_attempts(7).jitter(Jitter::None);
        assert_eq!(once.build().unwrap().max_attempts(), 7);
    }

    #[test]
    fn huge_delays_saturate_instead_of_overflowing() {
        let policy = RetryPolicy::builder()
            .exponential(Duration::from_secs(1), 1000.0, Duration::MAX)
            .jitter(Jitter::Decorrelated)
            .seed(3)
            .build()
            .unwrap();
        let delays: Vec<Duration> = policy.schedule(3).take(50).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_nanos(u64::MAX)));
        // Without jitter: 1 s × 1000 per retry until the product passes
        // u64::MAX ns (about 584 years), then that for ever.
        let exact = RetryPolicy::builder()
            .exponential(Duration::from_secs(1), 1000.0, Duration::MAX)
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let delays: Vec<Duration> = exact.schedule(0).take(6).collect();
        let (s, most) = (Duration::from_secs, Duration::from_nanos(u64::MAX));
        assert_eq!(
            delays,
            [s(1), s(1_000), s(1_000_000), s(1_000_000_000), most, most]
        );
        // A cap just above a product that fits: the product, then the cap.
        let near = RetryPolicy::builder()
            .exponential(
                Duration::from_nanos(u64::MAX / 4),
                3.0,
                Duration::from_nanos(u64::MAX - 1),
            )
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let delays: Vec<u64> = near
            .schedule(0)
            .take(3)
            .map(|d| d.as_nanos() as u64)
            .collect();
        assert_eq!(delays, [u64::MAX / 4, u64::MAX / 4 * 3, u64::MAX - 1]);
    }
}
