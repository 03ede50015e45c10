//! Load shedding on the core's adaptive (AIMD) concurrency limit.
//!
//! * `poll_ready` asks the [`AdaptiveLimit`] for an owned permit
//!   ([`AdaptiveLimit::try_acquire_owned`]), which *counts* the call in
//!   flight at once — it never only compares, so clones can never
//!   over-admit between a check and a call (tower-resilience #365). Over
//!   the limit, `poll_ready` is **ready** (it never returns `Pending` and
//!   never wakes itself: no busy spin) and the next `call` fails at once
//!   with [`Error::Overloaded`], without calling the inner service. Nothing
//!   ever queues.
//! * Admitted, `poll_ready` then polls the inner service, holding the
//!   permit meanwhile (the call's latency is measured from admission).
//! * `call` moves the permit into the response future, which reports the
//!   outcome when the inner future completes (by the classifier, default
//!   [`ErrorsFail`]; a refusal by another of our layers inside counts as
//!   neither), and frees the slot; dropped first, it abandons the call:
//!   the slot is freed and the limit does not move.
//!
//! # Checked by
//!
//! `tests/breaker_shed.rs`: `sheds_at_the_limit_without_calling_inner_or_pending`,
//! `outcomes_move_the_limit_and_drops_do_not`,
//! `shed_waits_for_inner_readiness_holding_its_slot`; proptest
//! `shed_clones_never_exceed_the_limit_nor_leak` against a counting model.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use async_patterns::{AdaptiveConfig, AdaptiveLimit};
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::LoadShedLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let limit = Arc::new(AdaptiveLimit::new(
//!     AdaptiveConfig::builder().limits(1, 10, 100).build().unwrap(),
//!     TokioTimer::new(),
//! ));
//! let svc = ServiceBuilder::new()
//!     .layer(LoadShedLayer::new(limit.clone()))
//!     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! assert_eq!(svc.oneshot(7).await.unwrap(), 7);
//! assert_eq!(limit.in_flight(), 0);
//! # });
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use async_patterns::{AdaptiveLimit, Clock, Overloaded, OwnedAdaptivePermit};
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::{Classify, ErrorsFail};
use crate::error::{BoxError, Error};
use crate::future::ClassifiedFuture;

/// Builds [`LoadShed`] services sharing one [`AdaptiveLimit`].
pub struct LoadShedLayer<C, K = ErrorsFail> {
    limit: Arc<AdaptiveLimit<C>>,
    classify: K,
}

impl<C, K: Clone> Clone for LoadShedLayer<C, K> {
    fn clone(&self) -> Self {
        LoadShedLayer {
            limit: self.limit.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<C, K> std::fmt::Debug for LoadShedLayer<C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadShedLayer")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> LoadShedLayer<C> {
    /// Sheds above `limit`; every `Err` is a failure (shrinks the limit).
    pub fn new(limit: Arc<AdaptiveLimit<C>>) -> Self {
        LoadShedLayer {
            limit,
            classify: ErrorsFail,
        }
    }
}

impl<C: Clock, K> LoadShedLayer<C, K> {
    /// Decides failures with `classify` (see
    /// [`BreakerLayer::classify`](crate::BreakerLayer::classify)).
    pub fn classify<K2>(self, classify: K2) -> LoadShedLayer<C, K2> {
        LoadShedLayer {
            limit: self.limit,
            classify,
        }
    }
}

impl<S, C: Clock, K: Clone> Layer<S> for LoadShedLayer<C, K> {
    type Service = LoadShed<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            limit: self.limit.clone(),
            classify: self.classify.clone(),
            state: None,
        }
    }
}

/// The load-shedding service. See the [module docs](self).
pub struct LoadShed<S, C: Clock, K = ErrorsFail> {
    inner: S,
    limit: Arc<AdaptiveLimit<C>>,
    classify: K,
    /// What the last `poll_ready` decided for the next call.
    state: Option<Result<OwnedAdaptivePermit<C>, Overloaded>>,
}

impl<S: Clone, C: Clock, K: Clone> Clone for LoadShed<S, C, K> {
    /// A clone shares the limit, not a permit already taken.
    fn clone(&self) -> Self {
        LoadShed {
            inner: self.inner.clone(),
            limit: self.limit.clone(),
            classify: self.classify.clone(),
            state: None,
        }
    }
}

impl<S: std::fmt::Debug, C: Clock, K> std::fmt::Debug for LoadShed<S, C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadShed")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S, C, K, Req> Service<Req> for LoadShed<S, C, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
    K: Classify<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ClassifiedFuture<S::Future, OwnedAdaptivePermit<C>, K>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(Err(_)) = self.state {
            // Refused at the last poll; a slot may have freed since.
            self.state = None;
        }
        match self
            .state
            .get_or_insert_with(|| self.limit.clone().try_acquire_owned())
        {
            // Shed: ready, so the caller calls and gets the refusal now.
            Err(_) => Poll::Ready(Ok(())),
            Ok(_) => match self.inner.poll_ready(cx) {
                Poll::Ready(Err(e)) => {
                    self.state = None;
                    Poll::Ready(Err(Error::from_inner(e)))
                }
                other => other.map_err(Error::from_inner),
            },
        }
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.state.take() {
            Some(Ok(permit)) => {
                ClassifiedFuture::called(self.inner.call(req), permit, self.classify.clone())
            }
            Some(Err(overloaded)) => ClassifiedFuture::refused(Error::Overloaded(overloaded)),
            None => panic!("LoadShed called before poll_ready returned Ready(Ok)"),
        }
    }
}
