//! A concurrency limit on the core's [`Semaphore`]: at most `n` calls in
//! flight, across every service the layer makes and all their clones.
//!
//! * `poll_ready` reserves a permit (polling a stored, cancel-safe acquire
//!   future: no task is spawned, and readiness is never reported without a
//!   permit in hand), then polls the inner service;
//! * `call` moves the permit into the response future;
//! * the permit is released **when the response future completes** (the
//!   inner future returned), or when it is dropped before that, whichever
//!   comes first. A caller that keeps a finished response future around
//!   does not keep a slot (linkerd2-proxy #751). For HTTP this means the
//!   limit counts calls until their response head arrives, not while a
//!   body streams.
//! * A permit reserved by `poll_ready` but never spent stays with that
//!   service value until it calls or is dropped; a clone starts with none
//!   (readiness does not transfer to clones).
//!
//! At the limit it waits by default ([`ConcurrencyLimitLayer::new`]) or,
//! with [`reject_when_full`](ConcurrencyLimitLayer::reject_when_full),
//! refuses at once with [`Error::Overloaded`] (tower #793 asks for both).
//!
//! # Checked by
//!
//! * unit tests in `tests/concurrency.rs` (tower-test's mock):
//!   `readiness_waits_for_a_permit_and_wakes_when_one_returns`,
//!   `permit_is_released_when_the_response_completes`,
//!   `dropped_response_future_returns_its_permit`,
//!   `dropped_service_returns_its_reserved_permit`,
//!   `readiness_does_not_transfer_to_clones`,
//!   `reject_mode_sheds_with_overloaded_at_once`,
//!   `reject_mode_polls_again_once_a_permit_returns`;
//! * proptest `clones_never_exceed_the_limit_nor_leak_permits`: random
//!   poll_ready / call / complete / drop / clone sequences over several
//!   clones, against a plain counting model.
//!
//! # Example
//!
//! ```
//! use async_patterns_tower::ConcurrencyLimitLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ConcurrencyLimitLayer::new(2).unwrap())
//!     .service(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x + 1) }));
//! assert_eq!(svc.oneshot(1).await.unwrap(), 2);
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_patterns::{
    AcquireOwned, CapacityError, Overloaded, OwnedSemaphorePermit, Semaphore, TryAcquireError,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error};
use crate::future::ResponseFuture;

/// Builds [`ConcurrencyLimit`] services that share one semaphore.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    semaphore: Arc<Semaphore>,
    reject: bool,
}

impl ConcurrencyLimitLayer {
    /// At most `max` calls in flight; callers beyond wait in `poll_ready`.
    /// More than the semaphore's maximum is a [`CapacityError`].
    pub fn new(max: usize) -> Result<Self, CapacityError> {
        Ok(Self::with_semaphore(Arc::new(Semaphore::new(max)?)))
    }

    /// Limits on a semaphore you already have (to share it, resize it with
    /// `add_permits` / `forget_permits`, or close it).
    pub fn with_semaphore(semaphore: Arc<Semaphore>) -> Self {
        ConcurrencyLimitLayer {
            semaphore,
            reject: false,
        }
    }

    /// At the limit, refuse at once with [`Error::Overloaded`] instead of
    /// waiting: `poll_ready` is ready, and `call` fails without calling the
    /// inner service.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn reject_when_full(mut self) -> Self {
        self.reject = true;
        self
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit {
            inner,
            semaphore: self.semaphore.clone(),
            reject: self.reject,
            permit: None,
            wait: Wait::Idle,
        }
    }
}

/// The concurrency-limited service. See the [module docs](self).
#[derive(Debug)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
    reject: bool,
    /// A permit reserved for the next call. Kept apart from [`Wait`], so
    /// `call` takes these two words without moving the larger wait state
    /// (a 40-byte enum copied on every call cost a store-forwarding stall:
    /// the `tower/concurrency_limit` bench).
    permit: Option<OwnedSemaphorePermit>,
    /// What `poll_ready` did without a permit; `Idle` whenever one is held.
    wait: Wait,
}

#[derive(Debug)]
enum Wait {
    /// Not waiting.
    Idle,
    /// Waiting for a permit (dropping it gives back whatever it got).
    Waiting(AcquireOwned),
    /// Reject mode found no permit: the next call is shed.
    Shed,
}

impl<S> ConcurrencyLimit<S> {
    /// The semaphore this service draws from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    /// A clone shares the semaphore but not a reserved permit.
    fn clone(&self) -> Self {
        ConcurrencyLimit {
            inner: self.inner.clone(),
            semaphore: self.semaphore.clone(),
            reject: self.reject,
            permit: None,
            wait: Wait::Idle,
        }
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, OwnedSemaphorePermit>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.permit.is_none() {
            match &mut self.wait {
                // Shed at the last poll; a permit may have come back since.
                Wait::Shed => match self.semaphore.clone().try_acquire_owned() {
                    Ok(permit) => {
                        self.wait = Wait::Idle;
                        self.permit = Some(permit);
                    }
                    Err(_) => return Poll::Ready(Ok(())),
                },
                Wait::Waiting(acquire) => {
                    let got = ready!(Pin::new(acquire).poll(cx));
                    self.wait = Wait::Idle;
                    self.permit = Some(got.map_err(Error::Acquire)?);
                }
                Wait::Idle => match self.semaphore.clone().try_acquire_owned() {
                    Ok(permit) => self.permit = Some(permit),
                    Err(TryAcquireError::NoPermits) if self.reject => {
                        self.wait = Wait::Shed;
                        return Poll::Ready(Ok(()));
                    }
                    Err(TryAcquireError::NoPermits) => {
                        self.wait = Wait::Waiting(self.semaphore.clone().acquire_owned())
                    }
                    Err(TryAcquireError::Failed(e)) => return Poll::Ready(Err(Error::Acquire(e))),
                },
            }
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                self.permit = None;
                Poll::Ready(Err(Error::from_inner(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if let Some(permit) = self.permit.take() {
            return ResponseFuture::called(self.inner.call(req), permit);
        }
        match std::mem::replace(&mut self.wait, Wait::Idle) {
            Wait::Shed => ResponseFuture::refused(Error::Overloaded(Overloaded {
                limit: u32::try_from(self.semaphore.total_permits()).unwrap_or(u32::MAX),
            })),
            _ => panic!("ConcurrencyLimit called before poll_ready returned Ready(Ok)"),
        }
    }
}
