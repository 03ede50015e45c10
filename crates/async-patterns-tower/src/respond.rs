//! A server's answer to our errors: the HTTP response each [`Error`] should
//! become when a server stack of this crate's layers refuses or gives up,
//! ready for axum's `HandleErrorLayer`.
//!
//! | error | status | `Retry-After` (seconds, at least 1) |
//! |---|---|---|
//! | [`Error::Overloaded`] (load shed, a full concurrency limit) | `503 Service Unavailable` | 1 |
//! | [`Error::RateLimited`] | `429 Too Many Requests` | until the limiter's instant |
//! | [`Error::Refused`] (an open breaker) | `503 Service Unavailable` | until it half-opens (1 while its probes are busy) |
//! | [`Error::Elapsed`] | `504 Gateway Timeout` | — |
//! | [`Error::Acquire`] (a closed limit: never again) | `503 Service Unavailable` | — |
//! | [`Error::Inner`] | `500 Internal Server Error` | — |
//!
//! The refusals all carry `Retry-After`: a client of this crate's retry
//! layer then retries them for any method (the server did not take the
//! request) and not before the instant it names.
//!
//! ```
//! # async fn doc() {
//! use std::{sync::Arc, time::Duration};
//! use async_patterns::{AdaptiveConfig, AdaptiveLimit};
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::{LoadShedLayer, TimeoutLayer, respond::handle_error};
//! use axum::{Router, error_handling::HandleErrorLayer, routing::get};
//! use tower::ServiceBuilder;
//!
//! let timer = TokioTimer::new();
//! let limit = Arc::new(AdaptiveLimit::new(AdaptiveConfig::builder().build().unwrap(), timer));
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(HandleErrorLayer::new(handle_error(timer)))
//!         .layer(LoadShedLayer::new(limit))
//!         .layer(TimeoutLayer::new(Duration::from_secs(2), timer)),
//! );
//! # let _ = app;
//! # }
//! ```

use std::future::{Ready, ready};
use std::time::Duration;

use async_patterns::{Clock, Instant, Refused};

use crate::error::{BoxError, Error};

/// The response `error` becomes (see the [module docs](self)), its
/// `Retry-After` computed on `clock`.
pub fn error_response(error: &Error, clock: &dyn Clock) -> http::Response<String> {
    use http::StatusCode as S;
    let until = |at: Instant| Some(at.saturating_duration_since(clock.now()));
    let (status, retry_after) = match error {
        Error::Overloaded(_) => (S::SERVICE_UNAVAILABLE, Some(Duration::ZERO)),
        Error::RateLimited(n) => (S::TOO_MANY_REQUESTS, until(n.earliest())),
        Error::Refused(Refused::Open(at)) => (S::SERVICE_UNAVAILABLE, until(*at)),
        Error::Refused(_) => (S::SERVICE_UNAVAILABLE, Some(Duration::ZERO)),
        Error::Elapsed(_) => (S::GATEWAY_TIMEOUT, None),
        Error::Acquire(_) => (S::SERVICE_UNAVAILABLE, None),
        Error::Inner(_) => (S::INTERNAL_SERVER_ERROR, None),
    };
    let mut response = http::Response::new(format!("{error}\n"));
    *response.status_mut() = status;
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up, and never 0 (0 would invite an
        // immediate retry of a refusal).
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(secs.max(1)),
        );
    }
    response
}

/// A handler for axum's `HandleErrorLayer` over a stack of this crate's
/// layers (whose error is [`Error`]): [`error_response`] on `clock`.
pub fn handle_error<C>(
    clock: C,
) -> impl Fn(Error) -> Ready<http::Response<String>> + Clone + Send + Sync + 'static
where
    C: Clock + Clone + Send + Sync + 'static,
{
    move |error| ready(error_response(&error, &clock))
}

/// The same for a stack whose error is boxed (tower's own layers box
/// theirs): ours keep their variant ([`Error::from_inner`]); anything else
/// is a `500`.
pub fn handle_boxed_error<C>(
    clock: C,
) -> impl Fn(BoxError) -> Ready<http::Response<String>> + Clone + Send + Sync + 'static
where
    C: Clock + Clone + Send + Sync + 'static,
{
    move |error| ready(error_response(&Error::from_inner(error), &clock))
}
