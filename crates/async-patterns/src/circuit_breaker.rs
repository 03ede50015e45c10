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
//! skip the mutex (one atomic load, one compare-and-swap). Time comes from the injected [`Clock`](crate::time::Clock), also for
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

mod breaker;
mod config;
mod policy;
#[cfg(all(test, not(async_patterns_loom)))]
mod tests;
mod window;

pub use breaker::{BreakerPermit, CallError, CircuitBreaker, OwnedBreakerPermit, Refused};
pub use config::{BreakerConfig, BreakerConfigBuilder, BreakerConfigError, BreakerSetting};
pub use policy::{BreakerState, Transition, TransitionCause};
