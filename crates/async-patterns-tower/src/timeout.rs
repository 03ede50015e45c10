//! Timeouts, and a [`Deadline`] that nested calls share.
//!
//! * [`TimeoutLayer`]: any request; each call gets at most its own
//!   duration, on the injected [`Timer`]. When it passes, the inner future
//!   is dropped and the call fails with [`Error::Elapsed`].
//! * [`DeadlineLayer`]: `http::Request`s. The request may carry a
//!   [`Deadline`] in its extensions (put there by an outer layer, e.g. an
//!   overall budget around a retry); the call gets **min(its own timeout,
//!   the carried deadline)**, and that deadline is put in the request's
//!   extensions for the layers and services inside (so a nested call gets
//!   what is left, never a fresh timeout; the retry layer never sleeps
//!   past it). Read it with `req.extensions().get::<Deadline>()`.
//!
//! A [`Deadline`] is an instant on *one* clock: every layer of a stack that
//! reads or writes it must use the same timer value (copy one
//! `TokioTimer`; two `TokioTimer::new()` have different epochs).
//!
//! # Checked by
//!
//! `tests/timeout_rate.rs`: `timeout_elapses_exactly_and_drops_the_inner_future`,
//! `nested_deadline_gets_the_remaining_budget_not_a_fresh_timeout`,
//! `a_shorter_own_timeout_tightens_the_carried_deadline`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::Deadline;
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::DeadlineLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let timer = TokioTimer::new();
//! let svc = ServiceBuilder::new()
//!     .layer(DeadlineLayer::new(Duration::from_secs(2), timer))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         // What an inner call has left.
//!         Ok::<_, std::io::Error>(req.extensions().get::<Deadline>().copied())
//!     }));
//! let carried = svc.oneshot(http::Request::new(())).await.unwrap().unwrap();
//! assert_eq!(carried.remaining(&timer), Duration::from_secs(2));
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_patterns::{Deadline, Timer, deadline};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error};

/// Builds [`Timeout`] services.
#[derive(Debug, Clone)]
pub struct TimeoutLayer<T> {
    timeout: Duration,
    timer: T,
}

impl<T: Timer + Clone> TimeoutLayer<T> {
    /// Each call gets at most `timeout` on `timer`.
    pub fn new(timeout: Duration, timer: T) -> Self {
        TimeoutLayer { timeout, timer }
    }
}

impl<S, T: Clone> Layer<S> for TimeoutLayer<T> {
    type Service = Timeout<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
            timer: self.timer.clone(),
        }
    }
}

/// A service whose calls time out. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Timeout<S, T> {
    inner: S,
    timeout: Duration,
    timer: T,
}

impl<S, T, Req> Service<Req> for Timeout<S, T>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: Timer + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = TimeoutFuture<T, S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture {
            inner: deadline::timeout(&self.timer, self.timeout, self.inner.call(req)),
        }
    }
}

/// Builds [`DeadlineService`]s for `http::Request`s.
#[derive(Debug, Clone)]
pub struct DeadlineLayer<T> {
    timeout: Duration,
    timer: T,
}

impl<T: Timer + Clone> DeadlineLayer<T> {
    /// Each call gets at most `timeout`, and never more than the deadline
    /// its request carries.
    pub fn new(timeout: Duration, timer: T) -> Self {
        DeadlineLayer { timeout, timer }
    }
}

impl<S, T: Clone> Layer<S> for DeadlineLayer<T> {
    type Service = DeadlineService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.timeout,
            timer: self.timer.clone(),
        }
    }
}

/// A service that bounds each `http::Request` by min(its timeout, the
/// request's carried [`Deadline`]) and passes that deadline inside. See
/// the [module docs](self).
#[derive(Debug, Clone)]
pub struct DeadlineService<S, T> {
    inner: S,
    timeout: Duration,
    timer: T,
}

impl<S, T, B> Service<http::Request<B>> for DeadlineService<S, T>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    T: Timer + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = TimeoutFuture<T, S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let own = Deadline::after(&self.timer, self.timeout);
        let deadline = match req.extensions().get::<Deadline>() {
            Some(&carried) if carried <= own => carried,
            _ => {
                req.extensions_mut().insert(own);
                own
            }
        };
        TimeoutFuture {
            inner: deadline::timeout_at(&self.timer, deadline, self.inner.call(req)),
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`] and [`DeadlineService`].
    pub struct TimeoutFuture<T, F>
    where
        T: Timer,
    {
        #[pin]
        inner: deadline::Timeout<T, F>,
    }
}

impl<T, F, R, E> Future for TimeoutFuture<T, F>
where
    T: Timer,
    F: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
{
    type Output = Result<R, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll(cx)) {
            Ok(out) => out.map_err(Error::from_inner),
            Err(elapsed) => Err(Error::Elapsed(elapsed)),
        })
    }
}

impl<T: Timer, F> std::fmt::Debug for TimeoutFuture<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutFuture").finish_non_exhaustive()
    }
}
