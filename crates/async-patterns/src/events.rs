//! The `tracing` events the patterns emit, behind the optional `tracing`
//! feature. With the feature off, [`emit!`] expands to nothing: its
//! arguments are not even evaluated, so the patterns cost exactly what they
//! cost without it (the Callgrind baseline is counted with it off).
//!
//! | target | level | when | fields |
//! |---|---|---|---|
//! | `async_patterns::circuit_breaker` | INFO | every state change | `from`, `to`, `generation`, `cause` |
//! | `async_patterns::retry` | DEBUG | a retry is about to sleep | `retrier`, `failed_attempt`, `delay_ns`, `reason` |
//! | `async_patterns::retry` | DEBUG | a retrier gives up | `retrier`, `attempts`, `gave_up` |
//! | `async_patterns::retry` | WARN | the retry budget refuses a withdrawal | `available` (0) |
//! | `async_patterns::rate_limiter` | DEBUG | a check is refused | `not_until_ns` |
//! | `async_patterns::adaptive` | DEBUG | a call is shed | `limit` |
//! | `async_patterns::adaptive` | DEBUG | the limit moves | `limit` |
//! | `async_patterns::pipeline` | WARN | an error is dead-lettered | `dead_lettered` (the count so far) |
//!
//! Tested by `tests/tracing_events.rs` (run with `--features tracing`).

/// A `tracing::event!` when the `tracing` feature is on; nothing when off.
macro_rules! emit {
    ($($event:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::event!($($event)*);
    };
}

pub(crate) use emit;
