//! Rate limits on the core's GCRA limiters: [`RateLimit`] (one bucket,
//! waits) and [`KeyedRateLimit`] (a bucket per key, refuses).
//!
//! * **Direct** ([`RateLimitLayer`]): `poll_ready` takes a cell from the
//!   limiter; when refused, it sleeps on the injected [`Timer`] until the
//!   instant the refusal names ([`NotUntil::earliest`]) and checks again —
//!   one timer registration per refusal, no busy loop. Ready means a cell
//!   is held for the next call; a service made ready and then dropped
//!   without calling has spent its cell (as tower's `RateLimit`). All the
//!   services a layer makes, and their clones, share one limiter.
//! * **Keyed** ([`KeyedRateLimitLayer`]): the key is known only from the
//!   request, which `poll_ready` does not see; so `poll_ready` is the
//!   inner service's, and `call` checks the request's key and, when it is
//!   over its rate, fails at once with [`Error::RateLimited`], whose
//!   [`NotUntil`] says when the key conforms again (without calling the
//!   inner service). A retry layer above waits until then.
//!
//! # Checked by
//!
//! `tests/timeout_rate.rs`: `direct_waits_until_the_refusal_instant_exactly`
//! (pending 1 ms before the instant, ready at it, under paused time),
//! `keyed_refuses_in_call_with_the_instant_and_keys_are_independent`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use async_patterns::Quota;
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::{Error, KeyedRateLimitLayer, RateLimitLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let timer = TokioTimer::new();
//! let per_user = KeyedRateLimitLayer::new(
//!     Quota::per_second(1).unwrap(),
//!     timer,
//!     1_000.try_into().unwrap(),
//!     |user: &(&str, u32)| user.0.to_owned(),
//! );
//! let svc = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(Quota::per_second(100).unwrap(), timer))
//!     .layer(per_user)
//!     .service(service_fn(|(_, x): (&str, u32)| async move { Ok::<_, std::io::Error>(x) }));
//! assert_eq!(svc.clone().oneshot(("ann", 1)).await.unwrap(), 1);
//! let refused = svc.clone().oneshot(("ann", 2)).await.unwrap_err();
//! assert!(matches!(refused, Error::RateLimited(_)));
//! assert_eq!(svc.oneshot(("bob", 3)).await.unwrap(), 3);
//! # });
//! ```

use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

#[cfg(doc)]
use async_patterns::NotUntil;
use async_patterns::{KeyedRateLimiter, Quota, RateLimiter, Timer};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error};
use crate::future::ResponseFuture;

/// Builds [`RateLimit`] services sharing one [`RateLimiter`].
#[derive(Debug)]
pub struct RateLimitLayer<T> {
    limiter: Arc<RateLimiter<T>>,
    timer: T,
}

impl<T: Clone> Clone for RateLimitLayer<T> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: self.limiter.clone(),
            timer: self.timer.clone(),
        }
    }
}

impl<T: Timer + Clone> RateLimitLayer<T> {
    /// A limiter of `quota` on `timer` (its clock and its sleeps).
    pub fn new(quota: Quota, timer: T) -> Self {
        RateLimitLayer {
            limiter: Arc::new(RateLimiter::new(quota, timer.clone())),
            timer,
        }
    }

    /// Limits with a limiter you already have; `timer` must be the
    /// limiter's own clock (the instants it names are on that clock).
    pub fn with_limiter(limiter: Arc<RateLimiter<T>>, timer: T) -> Self {
        RateLimitLayer { limiter, timer }
    }
}

impl<S, T: Timer + Clone> Layer<S> for RateLimitLayer<T> {
    type Service = RateLimit<S, T>;

    fn layer(&self, inner: S) -> RateLimit<S, T> {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
            timer: self.timer.clone(),
            state: State::Idle,
        }
    }
}

/// The rate-limited service. See the [module docs](self).
pub struct RateLimit<S, T: Timer> {
    inner: S,
    limiter: Arc<RateLimiter<T>>,
    timer: T,
    state: State<T::Sleep>,
}

enum State<Sl> {
    Idle,
    /// Refused; sleeping until the instant it named.
    Sleeping(Pin<Box<Sl>>),
    /// A cell is held for the next call.
    Admitted,
}

impl<S: Clone, T: Timer + Clone> Clone for RateLimit<S, T> {
    /// A clone shares the limiter, not a cell already taken.
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            timer: self.timer.clone(),
            state: State::Idle,
        }
    }
}

impl<S: std::fmt::Debug, T: Timer> std::fmt::Debug for RateLimit<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, T, Req> Service<Req> for RateLimit<S, T>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: Timer,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match &mut self.state {
                State::Admitted => break,
                State::Idle => match self.limiter.check() {
                    Ok(()) => {
                        self.state = State::Admitted;
                        break;
                    }
                    Err(refused) => {
                        self.state =
                            State::Sleeping(Box::pin(self.timer.sleep_until(refused.earliest())))
                    }
                },
                State::Sleeping(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::Idle;
                }
            }
        }
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        assert!(
            matches!(self.state, State::Admitted),
            "RateLimit called before poll_ready returned Ready(Ok)"
        );
        self.state = State::Idle;
        ResponseFuture::called(self.inner.call(req), ())
    }
}

/// Builds [`KeyedRateLimit`] services sharing one [`KeyedRateLimiter`].
pub struct KeyedRateLimitLayer<K, C, F> {
    limiter: Arc<KeyedRateLimiter<K, C>>,
    key: F,
}

impl<K, C, F: Clone> Clone for KeyedRateLimitLayer<K, C, F> {
    fn clone(&self) -> Self {
        KeyedRateLimitLayer {
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

impl<K, C, F> std::fmt::Debug for KeyedRateLimitLayer<K, C, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone, C: async_patterns::Clock, F> KeyedRateLimitLayer<K, C, F> {
    /// `quota` per key, holding at most `max_keys` keys (see
    /// [`KeyedRateLimiter::new`]), the key of a request being `key(&req)`.
    pub fn new(quota: Quota, clock: C, max_keys: NonZeroUsize, key: F) -> Self {
        Self::with_limiter(Arc::new(KeyedRateLimiter::new(quota, clock, max_keys)), key)
    }

    /// Limits with a keyed limiter you already have.
    pub fn with_limiter(limiter: Arc<KeyedRateLimiter<K, C>>, key: F) -> Self {
        KeyedRateLimitLayer { limiter, key }
    }
}

impl<S, K, C, F: Clone> Layer<S> for KeyedRateLimitLayer<K, C, F> {
    type Service = KeyedRateLimit<S, K, C, F>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit {
            inner,
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

/// The per-key rate-limited service. See the [module docs](self).
pub struct KeyedRateLimit<S, K, C, F> {
    inner: S,
    limiter: Arc<KeyedRateLimiter<K, C>>,
    key: F,
}

impl<S: Clone, K, C, F: Clone> Clone for KeyedRateLimit<S, K, C, F> {
    fn clone(&self) -> Self {
        KeyedRateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: std::fmt::Debug, K, C, F> std::fmt::Debug for KeyedRateLimit<S, K, C, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, K, C, F, Req> Service<Req> for KeyedRateLimit<S, K, C, F>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: Hash + Eq + Clone,
    C: async_patterns::Clock,
    F: Fn(&Req) -> K,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        match self.limiter.check_key(&key) {
            Ok(()) => ResponseFuture::called(self.inner.call(req), ()),
            Err(refused) => ResponseFuture::refused(Error::RateLimited(refused)),
        }
    }
}
