//! Runtime-agnostic async resilience patterns that are proven, not just
//! tested.
//!
//! Every pattern lives in its own module whose documentation opens with the
//! guarantees it makes and names the check (unit test, proptest property
//! against a reference model, loom model check, turmoil simulation) that
//! proves each one.
//!
//! * [`semaphore`] — bounded concurrency: a fair, cancel-safe semaphore.
//! * [`circuit_breaker`] — closed / open / half-open with generation-stamped
//!   permits, trip on consecutive failures or failure / slow-call rates.
//! * [`rate_limiter`] — a lock-free GCRA rate limiter with a validated
//!   [`Quota`].
//! * [`retry`] — exponential backoff with full, equal or decorrelated
//!   jitter from a seeded generator, attempt and elapsed-time limits, and a
//!   shared [`RetryBudget`] against retry storms.
//! * [`deadline`] — `timeout`, `timeout_at` and a
//!   [`Deadline`] that nested calls share.
//! * [`fan_out`] — `gather` / `try_gather` with a concurrency limit, a
//!   deadline and a streaming form, all inside the caller's task.
//! * [`pipeline`] — producer → stages → consumer with per-stage
//!   concurrency, backpressure, ordered or unordered delivery, error
//!   policies, drain on shutdown and cancel on drop.
//! * [`adaptive`] — an AIMD concurrency limit that sheds overload: a
//!   bulkhead whose size follows what the dependency can take.
//! * [`rng`] — the seeded SplitMix64 generator behind every jitter.
//! * [`time`] — the injected [`Clock`] and
//!   [`Timer`] every time-based pattern takes, and a
//!   [`ManualClock`] for tests and model checks.
//!
//! Every pattern's main types are also at the crate root, named for their
//! pattern (`BreakerConfig`, `AdaptiveConfig`, `RetryPolicy`, …), so
//! `use async_patterns::*` brings them all in without a collision.
//!
//! With the optional `tracing` feature, the patterns emit structured
//! `tracing` events (breaker transitions, retries, refusals, budget
//! exhaustion, dead letters); without it they cost nothing.
//!
//! The crate depends on no async runtime and never reads the wall clock or an
//! unseeded random number generator. Under `--cfg async_patterns_loom` its
//! synchronisation primitives come from `loom`, so the model checks in
//! `tests/loom_*.rs` explore every interleaving of the real code.

pub mod adaptive;
mod buckets;
pub mod circuit_breaker;
pub mod deadline;
mod events;
pub mod fan_out;
mod millionths;
mod permit;
pub mod pipeline;
pub mod points;
pub mod rate_limiter;
pub mod retry;
pub mod rng;
pub mod semaphore;
mod sync;
pub mod time;

// The main types at the crate root, so `use async_patterns::*` (or any
// mix of the modules' globs) brings them in without a collision: every name
// says which pattern it belongs to (tested by `tests/root_exports.rs`).
pub use adaptive::{
    AdaptiveConfig, AdaptiveConfigBuilder, AdaptiveConfigError, AdaptiveLimit, AdaptivePermit,
    Overloaded, OwnedAdaptivePermit,
};
pub use circuit_breaker::{
    BreakerConfig, BreakerConfigBuilder, BreakerConfigError, BreakerPermit, BreakerSetting,
    BreakerState, CallError, CircuitBreaker, OwnedBreakerPermit, Refused, Transition,
    TransitionCause,
};
pub use deadline::{Deadline, Elapsed, Timeout, timeout, timeout_at};
pub use fan_out::{
    GatherStream, gather, gather_stream, gather_until, try_gather, try_gather_until,
};
pub use pipeline::{OnError, Order, Pipeline, Report, Shutdown};
pub use rate_limiter::{CheckError, KeyedRateLimiter, NotUntil, Quota, QuotaError, RateLimiter};
pub use retry::{
    Attempt, BudgetError, Decision, GaveUp, Jitter, Retrier, RetryBudget, RetryConfigError,
    RetryError, RetryEvent, RetryPolicy, RetryPolicyBuilder, Schedule,
};
pub use rng::SplitMix64;
pub use semaphore::{
    Acquire, AcquireError, AcquireOwned, CapacityError, OwnedSemaphorePermit, Semaphore,
    SemaphorePermit, TryAcquireError,
};
pub use time::{Clock, Instant, ManualClock, Timer};

/// How an admitted call ended, as a permit reports it to its limiter or
/// breaker (a two-valued outcome plus "dropped unreported").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `success()`.
    Succeeded,
    /// `failure()`.
    Failed,
    /// Dropped without a report (cancelled): frees its slot, counts as
    /// neither.
    Abandoned,
}
