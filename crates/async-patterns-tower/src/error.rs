//! The one error type every layer of this crate returns.

use std::fmt;

use async_patterns::{AcquireError, Decision, Elapsed, NotUntil, Overloaded, Refused};

/// A boxed error, as tower's own layers use (`tower::BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a call through one of this crate's layers failed.
///
/// Every layer returns this one type, and it is **flat**: an error that
/// comes up from an inner layer of this crate keeps its variant (it is not
/// wrapped again), so a caller matches the variant it cares about whatever
/// the stack looks like. An inner service's own error (or one from another
/// crate's layer) is [`Error::Inner`], to downcast. Converting through
/// [`BoxError`] and back (tower's own layers box errors) also keeps the
/// variant: [`Error::from_inner`] downcasts.
///
/// The first three variants are *refusals*: one of our layers did not run
/// the call at all. A refusal is never counted as a failure by another of
/// our layers (a breaker or an adaptive limit around a rate limiter does
/// not trip or shrink because the limiter said "not now"; tested by
/// `refusals_from_inner_layers_are_not_breaker_failures`).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Shed at the limit, without running: the adaptive limit
    /// ([`LoadShed`](crate::LoadShed)) or a concurrency limit in reject
    /// mode ([`ConcurrencyLimitLayer::reject_when_full`](crate::ConcurrencyLimitLayer::reject_when_full)).
    Overloaded(Overloaded),
    /// The circuit breaker refused without running the call; an open
    /// breaker says until when.
    Refused(Refused),
    /// The keyed rate limiter refused; conforming from
    /// [`NotUntil::earliest`] on.
    RateLimited(NotUntil),
    /// The timeout or deadline passed before the inner call finished (the
    /// inner future has been dropped).
    Elapsed(Elapsed),
    /// The concurrency limit's semaphore can never serve this service
    /// again (closed, or shrunk below one permit): "never", not "not now".
    Acquire(AcquireError),
    /// The inner service's own error.
    Inner(BoxError),
}

impl Error {
    /// `e` as an [`Error`]: ours keep their variant (also when they were
    /// boxed on the way), anything else becomes [`Error::Inner`].
    pub fn from_inner(e: impl Into<BoxError>) -> Error {
        match e.into().downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::Inner(other),
        }
    }

    /// Whether one of our layers refused to run the call ("not now"):
    /// [`Overloaded`](Error::Overloaded), [`Refused`](Error::Refused) or
    /// [`RateLimited`](Error::RateLimited).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Overloaded(_) | Error::Refused(_) | Error::RateLimited(_)
        )
    }

    /// What a retry should do about this error: an open breaker or a rate
    /// limit puts the retry off until the instant it names; a semaphore
    /// that can never serve stops; anything else retries after the
    /// policy's delay.
    pub fn retry_decision(&self) -> Decision {
        match self {
            Error::Refused(r) => r.into(),
            Error::RateLimited(n) => n.into(),
            Error::Acquire(_) => Decision::Stop,
            _ => Decision::Retry,
        }
    }

    /// The inner service's error, if that is what this is.
    pub fn into_inner(self) -> Option<BoxError> {
        match self {
            Error::Inner(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Overloaded(e) => e.fmt(f),
            Error::Refused(e) => e.fmt(f),
            Error::RateLimited(e) => e.fmt(f),
            Error::Elapsed(e) => e.fmt(f),
            Error::Acquire(e) => e.fmt(f),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

/// Transparent: [`Display`](fmt::Display) is the wrapped error's, and
/// [`source`](std::error::Error::source) is *its* source, so walking the
/// chain (`anyhow`'s `{:#}`, a log's cause list) names each cause once:
/// `client error (Connect): connecting to server:8080: connection refused`,
/// not the first twice.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Overloaded(e) => e.source(),
            Error::Refused(e) => e.source(),
            Error::RateLimited(e) => e.source(),
            Error::Elapsed(e) => e.source(),
            Error::Acquire(e) => e.source(),
            Error::Inner(e) => e.source(),
        }
    }
}
