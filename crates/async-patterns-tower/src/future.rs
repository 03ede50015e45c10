//! The response futures the layers share.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_patterns::{Clock, OwnedAdaptivePermit, OwnedBreakerPermit};
use pin_project_lite::pin_project;

use crate::classify::Classify;
use crate::error::{BoxError, Error};

pin_project! {
    /// The response future of the concurrency limit, the rate limits and
    /// the timeouts: the inner future's output with its error made an
    /// [`Error`], or a refusal decided in `call`. `G` is what the call
    /// holds while it runs (a semaphore permit); it is released as soon as
    /// the inner future completes, or when this future is dropped.
    pub struct ResponseFuture<F, G = ()> {
        #[pin]
        kind: Kind<F, G>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, G> {
        Called { #[pin] fut: F, guard: Option<G> },
        Refused { error: Option<Error> },
    }
}

impl<F, G> ResponseFuture<F, G> {
    pub(crate) fn called(fut: F, guard: G) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                fut,
                guard: Some(guard),
            },
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        ResponseFuture {
            kind: Kind::Refused { error: Some(error) },
        }
    }
}

impl<F, G, R, E> Future for ResponseFuture<F, G>
where
    F: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
{
    type Output = Result<R, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut, guard } => {
                let out = ready!(fut.poll(cx));
                // Released at completion, not when the caller gets round
                // to dropping the future (linkerd2-proxy #751).
                drop(guard.take());
                Poll::Ready(out.map_err(Error::from_inner))
            }
            KindProj::Refused { error } => Poll::Ready(Err(error
                .take()
                .expect("response future polled after completion"))),
        }
    }
}

impl<F, G> std::fmt::Debug for ResponseFuture<F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// A permit of the core that an admitted call reports its outcome to:
/// the circuit breaker's and the adaptive limit's owned permits. Dropping
/// it unreported abandons the call (frees its slot, counts as nothing).
pub trait Report {
    /// The call succeeded.
    fn success(self);
    /// The call failed.
    fn failure(self);
}

impl<C: Clock> Report for OwnedBreakerPermit<C> {
    #[inline]
    fn success(self) {
        OwnedBreakerPermit::success(self)
    }
    fn failure(self) {
        OwnedBreakerPermit::failure(self)
    }
}

impl<C: Clock> Report for OwnedAdaptivePermit<C> {
    #[inline]
    fn success(self) {
        OwnedAdaptivePermit::success(self)
    }
    fn failure(self) {
        OwnedAdaptivePermit::failure(self)
    }
}

pin_project! {
    /// The response future of the circuit breaker and the load shed: the
    /// inner future, and the permit it reports to when it completes (by
    /// the classifier), or abandons if dropped first.
    pub struct ClassifiedFuture<F, P, K> {
        #[pin]
        kind: CKind<F, P, K>,
    }
}

pin_project! {
    #[project = CKindProj]
    enum CKind<F, P, K> {
        Called { #[pin] fut: F, permit: Option<P>, classify: K },
        Refused { error: Option<Error> },
    }
}

impl<F, P, K> ClassifiedFuture<F, P, K> {
    pub(crate) fn called(fut: F, permit: P, classify: K) -> Self {
        ClassifiedFuture {
            kind: CKind::Called {
                fut,
                permit: Some(permit),
                classify,
            },
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        ClassifiedFuture {
            kind: CKind::Refused { error: Some(error) },
        }
    }
}

impl<F, P, K, R, E> Future for ClassifiedFuture<F, P, K>
where
    F: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
    P: Report,
    K: Classify<R>,
{
    type Output = Result<R, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            CKindProj::Called {
                fut,
                permit,
                classify,
            } => {
                let out = ready!(fut.poll(cx)).map_err(Error::from_inner);
                if let Some(permit) = permit.take() {
                    match &out {
                        // Another of our layers refused: the call never
                        // reached the dependency, so it says nothing about
                        // it. Abandoned: the slot is freed, nothing counts.
                        Err(e) if e.is_refusal() => drop(permit),
                        out if classify.is_failure(out) => permit.failure(),
                        _ => permit.success(),
                    }
                }
                Poll::Ready(out)
            }
            CKindProj::Refused { error } => Poll::Ready(Err(error
                .take()
                .expect("response future polled after completion"))),
        }
    }
}

impl<F, P, K> std::fmt::Debug for ClassifiedFuture<F, P, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifiedFuture").finish_non_exhaustive()
    }
}
