//! The points the patterns report to a listening simulation
//! ([`async_patterns_assert`]): a scenario that lists one of these names
//! in its catalogue learns how many seeds of a sweep reached it ("the
//! sweep never opened the breaker: it proves nothing about it").
//!
//! Nothing listens in production: each site then costs one relaxed load of
//! a global counter and a branch not taken (the Callgrind gate counts the
//! patterns with these sites in). Every point here is *reachable*: a place
//! worth reaching, never a failure in itself.
//!
//! | name | reached when |
//! |---|---|
//! | [`BREAKER_OPENED`] | a circuit breaker opens (from closed, or from half-open) |
//! | [`BREAKER_PROBE_REFUSED`] | a half-open breaker refuses a call: every probe slot is taken |
//! | [`BREAKER_CLOSED_AGAIN`] | a half-open breaker closes after its probes succeeded |
//! | [`LIMITER_REFUSED`] | a rate limiter (plain or keyed) refuses a check |
//! | [`LIMITER_MADE_WAIT`] | a rate limiter's `until_ready` (or `until_n_ready`) makes its caller wait |
//! | [`RETRY_BUDGET_EXHAUSTED`] | a retry budget refuses a withdrawal |
//! | [`RETRY_GAVE_UP`] | a retrier gives up (attempts, time, budget, or a fatal error) |
//! | [`ADAPTIVE_SHED`] | an adaptive limit sheds a call |
//! | [`DEAD_LETTER`] | a pipeline dead-letters an error |
//! | [`PERMIT_RETURNED_ON_CANCEL`] | a semaphore acquire dropped while holding assigned permits gives them back |
//! | [`FAN_OUT_PARTIAL`] | a gather with a deadline answers with some outcomes `Elapsed` |

/// A circuit breaker opened.
pub const BREAKER_OPENED: &str = "async-patterns: breaker opened";
/// A half-open breaker refused a call (every probe slot taken).
pub const BREAKER_PROBE_REFUSED: &str = "async-patterns: breaker half-open probe refused";
/// A half-open breaker closed again.
pub const BREAKER_CLOSED_AGAIN: &str = "async-patterns: breaker closed again";
/// A rate limiter refused a check.
pub const LIMITER_REFUSED: &str = "async-patterns: limiter refused";
/// A rate limiter's wait (`until_ready`) made its caller wait.
pub const LIMITER_MADE_WAIT: &str = "async-patterns: limiter made a caller wait";
/// A retry budget refused a withdrawal.
pub const RETRY_BUDGET_EXHAUSTED: &str = "async-patterns: retry budget exhausted";
/// A retrier gave up.
pub const RETRY_GAVE_UP: &str = "async-patterns: retry gave up";
/// An adaptive limit shed a call.
pub const ADAPTIVE_SHED: &str = "async-patterns: adaptive limit shed";
/// A pipeline dead-lettered an error.
pub const DEAD_LETTER: &str = "async-patterns: pipeline dead letter";
/// A cancelled semaphore acquire returned the permits assigned to it.
pub const PERMIT_RETURNED_ON_CANCEL: &str = "async-patterns: permit returned on cancel";
/// A gather with a deadline answered with some outcomes `Elapsed`.
pub const FAN_OUT_PARTIAL: &str = "async-patterns: partial fan-out answer";

/// Every point above, in that order.
pub const ALL: &[&str] = &[
    BREAKER_OPENED,
    BREAKER_PROBE_REFUSED,
    BREAKER_CLOSED_AGAIN,
    LIMITER_REFUSED,
    LIMITER_MADE_WAIT,
    RETRY_BUDGET_EXHAUSTED,
    RETRY_GAVE_UP,
    ADAPTIVE_SHED,
    DEAD_LETTER,
    PERMIT_RETURNED_ON_CANCEL,
    FAN_OUT_PARTIAL,
];
