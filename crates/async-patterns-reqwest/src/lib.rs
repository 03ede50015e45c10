//! async-patterns for reqwest users, as [`reqwest_middleware`] middleware:
//! the circuit breaker, retry and a deadline shared by nested calls, with
//! the same rules as the tower layers of `async-patterns-tower`.
//!
//! | middleware | does | refuses with (inside `reqwest_middleware::Error::Middleware`) |
//! |---|---|---|
//! | [`DeadlineMiddleware`] | the whole call (every middleware and attempt below it) ends by its deadline; a deadline already in the request's extensions is kept if it is earlier, so nested calls get what is left | [`Elapsed`] |
//! | [`RetryMiddleware`] | retries under a [`RetryPolicy`] (attempts, backoff, seeded jitter), an optional shared [`RetryBudget`], never past the deadline in the extensions; a `429`/`503` with `Retry-After`, an open breaker or a limiter's instant is the earliest a retry starts | — |
//! | [`BreakerMiddleware`] | a [`CircuitBreaker`]: refused calls are not sent; a `5xx` or a transport error is a failure | [`Refused`] |
//!
//! # Which requests are retried: the idempotency rule
//!
//! A retry after an outcome that **may already have taken effect** (a
//! timeout, a connection lost after sending, a `502`/`504`, a `429`/`503`
//! without `Retry-After`) repeats the request: a `POST` that timed out may
//! have charged the card. So [`RetryMiddleware`] retries those only for a
//! request safe to repeat: an idempotent method (`GET`, `HEAD`, `OPTIONS`,
//! `TRACE`, `PUT`, `DELETE`), an `Idempotency-Key` header, or your say-so
//! per request (`.with_extension(Idempotent)`). Outcomes that did not
//! happen (a connect error: nothing was sent; an open breaker; a limiter's
//! `NotUntil`; a `429`/`503` with `Retry-After`) are retried for any method.
//! The rules are `async_patterns_tower`'s ([`http_replayable`],
//! [`http_not_taken`], [`http_decision`]), so a reqwest client and a tower
//! stack retry the same requests.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use async_patterns::{BreakerConfig, CircuitBreaker, Jitter, RetryPolicy};
//! use async_patterns_reqwest::{BreakerMiddleware, DeadlineMiddleware, RetryMiddleware};
//! use async_patterns_tokio::TokioTimer;
//!
//! let timer = TokioTimer::new();
//! let policy = RetryPolicy::builder()
//!     .max_attempts(3)
//!     .jitter(Jitter::Full)
//!     .seed(async_patterns_tokio::entropy_seed()) // distinct in every process
//!     .build()
//!     .unwrap();
//! let breaker = Arc::new(CircuitBreaker::new(
//!     BreakerConfig::builder().consecutive_failures(5).build().unwrap(),
//!     timer,
//! ));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(DeadlineMiddleware::new(Duration::from_secs(2), timer)) // the whole call
//!     .with(RetryMiddleware::new(policy, timer))                    // stops at that deadline
//!     .with(BreakerMiddleware::new(breaker))
//!     .with(DeadlineMiddleware::new(Duration::from_millis(500), timer)) // each attempt
//!     .build();
//! # let _ = client;
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_patterns::{
    CircuitBreaker, Clock, Deadline, Decision, Elapsed, NotUntil, Refused, RetryBudget,
    RetryPolicy, SplitMix64, Timer, deadline::timeout_at,
};
pub use async_patterns_tower::Idempotent;
use async_patterns_tower::{http_decision, http_not_taken, http_replayable};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Error, Middleware, Next, Result};

/// A circuit breaker around the rest of the chain: a call it refuses is
/// not sent (the error is [`Refused`], inside
/// `reqwest_middleware::Error::Middleware`); a `5xx` answer or a transport
/// error counts as a failure, anything else as a success. A refusal by a
/// middleware below it is neither.
#[derive(Debug)]
pub struct BreakerMiddleware<C> {
    breaker: Arc<CircuitBreaker<C>>,
}

impl<C> BreakerMiddleware<C> {
    /// Around `breaker` (shared with whoever else reads its state).
    pub fn new(breaker: Arc<CircuitBreaker<C>>) -> Self {
        BreakerMiddleware { breaker }
    }
}

#[async_trait::async_trait]
impl<C: Clock + Send + Sync + 'static> Middleware for BreakerMiddleware<C> {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let permit = self.breaker.try_acquire().map_err(Error::middleware)?;
        let out = next.run(req, extensions).await;
        match &out {
            Ok(response) if response.status().is_server_error() => permit.failure(),
            Ok(_) => permit.success(),
            // Not sent by a refusal below: neither a success nor a failure
            // (the permit is dropped, freeing a probe slot).
            Err(e) if refusal(e).is_some() => drop(permit),
            Err(_) => permit.failure(),
        }
        out
    }
}

/// A refusal by one of our middlewares (or a limiter's), if `e` is one:
/// the call was not made.
fn refusal(e: &Error) -> Option<Decision> {
    let Error::Middleware(e) = e else {
        return None;
    };
    e.downcast_ref::<Refused>()
        .map(Decision::from)
        .or_else(|| e.downcast_ref::<NotUntil>().map(Decision::from))
}

/// What to do after an attempt, and whether it may have taken effect (see
/// the crate docs).
fn classify(out: &Result<Response>, clock: &dyn Clock) -> (Decision, bool) {
    match out {
        Ok(r) => (
            http_decision(r.status(), r.headers(), clock),
            !http_not_taken(r.status(), r.headers()),
        ),
        Err(e) => match (refusal(e), e) {
            (Some(decision), _) => (decision, false),
            (None, Error::Middleware(e)) if e.downcast_ref::<Elapsed>().is_some() => {
                (Decision::Retry, true)
            }
            // Another middleware's error: not ours to retry.
            (None, Error::Middleware(_)) => (Decision::Stop, true),
            // Never connected: nothing was sent.
            (None, Error::Reqwest(e)) if e.is_connect() => (Decision::Retry, false),
            // Too many redirects fails the same way again. (A request that
            // cannot be built never reaches middleware; a body is decoded
            // after it.)
            (None, Error::Reqwest(e)) if e.is_redirect() => (Decision::Stop, true),
            (None, Error::Reqwest(_)) => (Decision::Retry, true),
        },
    }
}

/// Retries the rest of the chain under a [`RetryPolicy`], by the
/// idempotency rule of the crate docs. Each call draws its jitter from a
/// stream of its own (the policy's seed, this middleware's id and a call
/// counter); a request whose body cannot be cloned (a stream) is sent once.
#[derive(Debug)]
pub struct RetryMiddleware<T> {
    policy: RetryPolicy,
    timer: T,
    budget: Option<Arc<RetryBudget>>,
    max_elapsed: Option<Duration>,
    id: u64,
    calls: AtomicU64,
}

impl<T> RetryMiddleware<T> {
    /// Retries under `policy`, sleeping on `timer`; no retry starts after
    /// the policy's `max_elapsed` (if set) from the call's start.
    pub fn new(policy: RetryPolicy, timer: T) -> Self {
        let max_elapsed = policy.max_elapsed();
        RetryMiddleware {
            policy,
            timer,
            budget: None,
            max_elapsed,
            id: 0,
            calls: AtomicU64::new(0),
        }
    }

    /// Draws every retry from `budget` and deposits every call in it.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The id that, with the policy's seed, picks the jitter streams (give
    /// each middleware sharing a seed its own).
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }
}

#[async_trait::async_trait]
impl<T> Middleware for RetryMiddleware<T>
where
    T: Timer + Send + Sync + 'static,
    T::Sleep: Send,
{
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let replayable = http_replayable(
            req.method(),
            req.headers(),
            extensions.get::<Idempotent>().is_some(),
        );
        let start = self.timer.now();
        let own = self.max_elapsed.map(|d| start.saturating_add(d));
        let carried = extensions.get::<Deadline>().map(|d| d.instant());
        let deadline = match (own, carried) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(budget) = &self.budget {
            budget.deposit(start);
        }
        let key = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut schedule = self
            .policy
            .schedule(SplitMix64::derive(self.id, key).next_u64());
        let mut number = 1;
        let mut req = req;
        loop {
            let copy = (number < self.policy.max_attempts())
                .then(|| req.try_clone())
                .flatten();
            let out = next.clone().run(req, extensions).await;
            let Some(copy) = copy else {
                return out;
            };
            let (decision, applied) = classify(&out, &self.timer);
            if decision == Decision::Stop || (applied && !replayable) {
                return out;
            }
            let now = self.timer.now();
            let mut wake = now.saturating_add(schedule.next().unwrap_or(Duration::ZERO));
            if let Decision::RetryAfter(at) = decision {
                wake = wake.max(at);
            }
            if deadline.is_some_and(|d| wake >= d)
                || self.budget.as_ref().is_some_and(|b| !b.try_withdraw(now))
            {
                return out;
            }
            // The failed response goes before the wait (its connection is
            // freed).
            drop(out);
            self.timer.sleep_until(wake).await;
            number += 1;
            req = copy;
        }
    }
}

/// A deadline for the rest of the chain: it ends by `now + budget`, or by
/// the deadline already in the request's extensions if that is earlier
/// (set there for the middlewares below: a [`RetryMiddleware`] stops
/// retrying at it). On expiry the error is [`Elapsed`].
#[derive(Debug, Clone)]
pub struct DeadlineMiddleware<T> {
    budget: Duration,
    timer: T,
}

impl<T> DeadlineMiddleware<T> {
    /// `budget` from each call's start, on `timer`.
    pub fn new(budget: Duration, timer: T) -> Self {
        DeadlineMiddleware { budget, timer }
    }
}

#[async_trait::async_trait]
impl<T> Middleware for DeadlineMiddleware<T>
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let mine = Deadline::after(&self.timer, self.budget);
        let outer = extensions.get::<Deadline>().copied();
        let deadline = match outer {
            Some(d) if d.instant() <= mine.instant() => d,
            _ => mine,
        };
        extensions.insert(deadline);
        let out = timeout_at(&self.timer, deadline, next.run(req, extensions)).await;
        // The caller's deadline again, for whatever runs after us above.
        match outer {
            Some(d) => extensions.insert(d),
            None => extensions.remove::<Deadline>(),
        };
        out.unwrap_or_else(|elapsed| Err(Error::middleware(elapsed)))
    }
}
