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
//!   [`Quota`](rate_limiter::Quota).
//! * [`retry`] — exponential backoff with full, equal or decorrelated
//!   jitter from a seeded generator, attempt and elapsed-time limits, and a
//!   shared [`RetryBudget`](retry::RetryBudget) against retry storms.
//! * [`deadline`] — `timeout`, `timeout_at` and a
//!   [`Deadline`](deadline::Deadline) that nested calls share.
//! * [`fan_out`] — `gather` / `try_gather` with a concurrency limit, a
//!   deadline and a streaming form, all inside the caller's task.
//! * [`pipeline`] — producer → stages → consumer with per-stage
//!   concurrency, backpressure, ordered or unordered delivery, error
//!   policies, drain on shutdown and cancel on drop.
//! * [`adaptive`] — an AIMD concurrency limit that sheds overload: a
//!   bulkhead whose size follows what the dependency can take.
//! * [`rng`] — the seeded SplitMix64 generator behind every jitter.
//! * [`time`] — the injected [`Clock`](time::Clock) and
//!   [`Timer`](time::Timer) every time-based pattern takes, and a
//!   [`ManualClock`](time::ManualClock) for tests and model checks.
//!
//! The crate depends on no async runtime and never reads the wall clock or an
//! unseeded random number generator. Under `--cfg async_patterns_loom` its
//! synchronisation primitives come from `loom`, so the model checks in
//! `tests/loom_*.rs` explore every interleaving of the real code.

pub mod adaptive;
mod buckets;
pub mod circuit_breaker;
pub mod deadline;
pub mod fan_out;
pub mod pipeline;
pub mod rate_limiter;
pub mod retry;
pub mod rng;
pub mod semaphore;
mod sync;
pub mod time;

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
