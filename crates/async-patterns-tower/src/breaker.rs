//! A circuit breaker layer on the core's [`CircuitBreaker`].
//!
//! * `poll_ready` is the inner service's. `call` asks the breaker for an
//!   owned permit ([`CircuitBreaker::try_acquire_owned`]); refused, it
//!   fails at once with [`Error::Refused`] — an open breaker's
//!   [`Refused::Open`] names the instant it will probe again, which a
//!   retry layer above waits for — and the inner service is not called.
//! * Admitted, the permit lives in the response future: when the inner
//!   future completes, the classifier decides success or failure (default
//!   [`ErrorsFail`]: every `Err`); a refusal by another of our layers
//!   inside counts as neither. A response future dropped before it
//!   completes abandons the call: its half-open probe slot is freed and
//!   nothing is counted.
//!
//! # Checked by
//!
//! `tests/breaker_shed.rs`: `open_breaker_refuses_without_calling_inner`,
//! `dropped_probe_frees_its_slot`, `classifier_decides_what_fails`,
//! `refusals_from_inner_layers_are_not_breaker_failures`,
//! `refusal_survives_boxing_and_downcasts`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use async_patterns::{BreakerConfig, CircuitBreaker, Refused};
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::{BreakerLayer, Error};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let breaker = Arc::new(CircuitBreaker::new(
//!     BreakerConfig::builder().consecutive_failures(1).build().unwrap(),
//!     TokioTimer::new(),
//! ));
//! let svc = ServiceBuilder::new()
//!     .layer(BreakerLayer::new(breaker))
//!     .service(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("down")) }));
//! assert!(matches!(svc.clone().oneshot(()).await, Err(Error::Inner(_))));
//! assert!(matches!(svc.oneshot(()).await, Err(Error::Refused(Refused::Open(_)))));
//! # });
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

#[cfg(doc)]
use async_patterns::Refused;
use async_patterns::{CircuitBreaker, Clock, OwnedBreakerPermit};
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::{Classify, ErrorsFail};
use crate::error::{BoxError, Error};
use crate::future::ClassifiedFuture;

/// Builds [`Breaker`] services sharing one [`CircuitBreaker`].
pub struct BreakerLayer<C, K = ErrorsFail> {
    breaker: Arc<CircuitBreaker<C>>,
    classify: K,
}

impl<C, K: Clone> Clone for BreakerLayer<C, K> {
    fn clone(&self) -> Self {
        BreakerLayer {
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<C, K> std::fmt::Debug for BreakerLayer<C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> BreakerLayer<C> {
    /// Guards calls with `breaker`; every `Err` is a failure.
    pub fn new(breaker: Arc<CircuitBreaker<C>>) -> Self {
        BreakerLayer {
            breaker,
            classify: ErrorsFail,
        }
    }
}

impl<C: Clock, K> BreakerLayer<C, K> {
    /// Decides failures with `classify` (a `Fn(&Result<Res, Error>) ->
    /// bool`, `true` = failure; or a [`Classify`] such as
    /// [`ServerErrorsFail`](crate::ServerErrorsFail)).
    pub fn classify<K2>(self, classify: K2) -> BreakerLayer<C, K2> {
        BreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }
}

impl<S, C, K: Clone> Layer<S> for BreakerLayer<C, K> {
    type Service = Breaker<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Breaker {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The breaker-guarded service. See the [module docs](self).
pub struct Breaker<S, C, K = ErrorsFail> {
    inner: S,
    breaker: Arc<CircuitBreaker<C>>,
    classify: K,
}

impl<S: Clone, C, K: Clone> Clone for Breaker<S, C, K> {
    fn clone(&self) -> Self {
        Breaker {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S: std::fmt::Debug, C, K> std::fmt::Debug for Breaker<S, C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, C, K, Req> Service<Req> for Breaker<S, C, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
    K: Classify<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ClassifiedFuture<S::Future, OwnedBreakerPermit<C>, K>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.clone().try_acquire_owned() {
            Ok(permit) => {
                ClassifiedFuture::called(self.inner.call(req), permit, self.classify.clone())
            }
            Err(refused) => ClassifiedFuture::refused(Error::Refused(refused)),
        }
    }
}
