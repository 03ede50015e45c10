//! tower layers for `async-patterns`: the core's proven patterns in a
//! `tower::ServiceBuilder`, with tower kept out of the core.
//!
//! | layer | service | on the core's | at the limit |
//! |---|---|---|---|
//! | [`ConcurrencyLimitLayer`] | [`ConcurrencyLimit`] | `Semaphore` | waits in `poll_ready`, or refuses with [`Error::Overloaded`] ([`reject_when_full`](ConcurrencyLimitLayer::reject_when_full)) |
//! | [`RateLimitLayer`] | [`RateLimit`] | `RateLimiter` | waits in `poll_ready` until the limiter's instant |
//! | [`KeyedRateLimitLayer`] | [`KeyedRateLimit`] | `KeyedRateLimiter` | refuses in `call` with [`Error::RateLimited`] |
//! | [`BreakerLayer`] | [`Breaker`] | `CircuitBreaker` | refuses in `call` with [`Error::Refused`] |
//! | [`RetryLayer`] | [`Retry`] | `RetryPolicy`, `RetryBudget` | — |
//! | [`TimeoutLayer`], [`DeadlineLayer`] | [`Timeout`], [`DeadlineService`] | `deadline::timeout_at`, `Deadline` | [`Error::Elapsed`] |
//! | [`LoadShedLayer`] | [`LoadShed`] | `AdaptiveLimit` | refuses in `call` with [`Error::Overloaded`] |
//!
//! # Rules every layer keeps
//!
//! These come from tower users' bug reports (see the project's design
//! notes); each is tested in `tests/`.
//!
//! * **Reserve in `poll_ready`, spend in `call`, release on every path.**
//!   A layer that limits holds a real permit when it reports ready (never
//!   only a comparison, never a spawned waiter); `call` moves it into the
//!   response future; it is released when that future completes, and also
//!   if it is dropped first (a cancelled call).
//! * **Readiness does not transfer to clones.** A clone starts without a
//!   permit; the retry layer takes the readied inner service with
//!   `std::mem::replace(&mut self.inner, self.inner.clone())`.
//! * **One error type, flat and matchable**: [`Error`]. An error from an
//!   inner layer of this crate keeps its variant through any number of our
//!   layers (and through tower's `BoxError`: [`Error::from_inner`]
//!   downcasts); the inner service's own error is [`Error::Inner`].
//! * **A refusal is not a failure**: the breaker and the adaptive limit
//!   count a refusal by another of our layers as neither success nor
//!   failure.
//! * **Time is injected** (a `Timer`, e.g. `async_patterns_tokio::TokioTimer`):
//!   no layer reads the wall clock, so paused time and simulations drive
//!   them exactly. Layers that share a [`Deadline`](async_patterns::Deadline)
//!   must share one timer value.
//!
//! # Example: a server stack and a client stack
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use async_patterns::{AdaptiveConfig, AdaptiveLimit, BreakerConfig, CircuitBreaker, RetryPolicy};
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::*;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let timer = TokioTimer::new();
//! // Server side: shed overload at once, bound concurrency, time out.
//! let limit = Arc::new(AdaptiveLimit::new(AdaptiveConfig::builder().build().unwrap(), timer));
//! let server = ServiceBuilder::new()
//!     .layer(LoadShedLayer::new(limit))
//!     .layer(ConcurrencyLimitLayer::new(64).unwrap())
//!     .layer(TimeoutLayer::new(Duration::from_secs(1), timer))
//!     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x * 2) }));
//! // Client side: retry around a breaker, each attempt with a timeout.
//! let breaker = Arc::new(CircuitBreaker::new(
//!     BreakerConfig::builder().consecutive_failures(5).build().unwrap(),
//!     timer,
//! ));
//! let policy = RetryPolicy::builder().max_attempts(3).seed(1).build().unwrap();
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy, timer).max_elapsed(Duration::from_secs(5)))
//!     .layer(BreakerLayer::new(breaker))
//!     .layer(TimeoutLayer::new(Duration::from_millis(500), timer))
//!     .service(server);
//! assert_eq!(client.oneshot(21).await.unwrap(), 42);
//! # });
//! ```

pub mod breaker;
mod classify;
pub mod concurrency;
mod error;
mod future;
pub mod rate_limit;
pub mod respond;
pub mod retry;
pub mod shed;
pub mod timeout;

pub use breaker::{Breaker, BreakerLayer};
pub use classify::{Classify, ErrorsFail, ServerErrorsFail};
pub use concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
pub use error::{BoxError, Error};
pub use future::{ClassifiedFuture, Report, ResponseFuture};
pub use rate_limit::{KeyedRateLimit, KeyedRateLimitLayer, RateLimit, RateLimitLayer};
pub use retry::{
    CloneHttpRequest, CloneRequest, IDEMPOTENCY_KEY, Idempotent, Retry, RetryClassify, RetryErrors,
    RetryFuture, RetryHttp, RetryLayer, RetryRequest, http_decision, http_not_taken,
    http_replayable, retry_after,
};
pub use shed::{LoadShed, LoadShedLayer};
pub use timeout::{DeadlineLayer, DeadlineService, Timeout, TimeoutFuture, TimeoutLayer};
