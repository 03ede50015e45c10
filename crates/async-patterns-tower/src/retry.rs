//! Retry with the core's [`RetryPolicy`] (attempts, exponential backoff,
//! seeded jitter) and an optional shared [`RetryBudget`], sleeping on the
//! injected [`Timer`].
//!
//! # Which requests are retried (HTTP: the idempotency rule)
//!
//! A retry after an outcome that **may already have taken effect** repeats
//! the request's effect: a `POST` that timed out may have charged the card.
//! So [`RetryLayer::http`] retries such an outcome only for a request that
//! is safe to repeat ([`RetryRequest::replayable`], decided by
//! [`CloneHttpRequest`]):
//!
//! | the request | after "may have taken effect": a timeout ([`Error::Elapsed`]), an inner error (a connection lost after sending), a `502`/`504`, a `429`/`503` without `Retry-After` | after "did not happen": our breaker open ([`Error::Refused`]), our limiter ([`Error::RateLimited`]), our shed ([`Error::Overloaded`]), a `429`/`503` with `Retry-After` |
//! |---|---|---|
//! | `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE` (idempotent, RFC 9110 §9.2.2) | retried | retried |
//! | `POST`, `PATCH`, ... with an `Idempotency-Key` header | retried (the server answers a repeat with the first answer) | retried |
//! | `POST`, `PATCH`, ... with [`Idempotent`] in its extensions (your say-so, per request) | retried | retried |
//! | any other `POST`, `PATCH`, ... | **not retried**: the outcome is returned | retried |
//!
//! The classifier says which outcomes may have taken effect
//! ([`RetryClassify::may_have_applied`]); the request hook says which
//! requests may be repeated. [`RetryLayer::new`] (any request type, copied
//! with `Clone`) treats every request as safe to repeat: it has no way to
//! know; give it a [`RetryRequest`] of your own to say otherwise.
//!
//! It makes the decisions the core's [`Retrier`](async_patterns::Retrier)
//! makes, in the same order, per logical call (proptest
//! `layer_decides_as_the_core_retrier`, `tests/retry.rs`):
//!
//! 1. the classifier ([`RetryClassify`]) says [`Decision::Stop`] (every
//!    `Ok` by default) → return the result;
//! 2. `max_attempts` made → return the last result;
//! 3. the next delay from the policy's schedule; a [`Decision::RetryAfter`]
//!    (an open breaker's [`Refused::Open`](async_patterns::Refused::Open),
//!    a rate limit's instant, an HTTP `Retry-After` with [`RetryHttp`]) is
//!    the earliest the retry may start;
//! 4. a retry that would start at or after the overall deadline is not
//!    made: the deadline is the earlier of [`RetryLayer::max_elapsed`]
//!    (from the call's start, attempts included) and, for HTTP requests
//!    with [`CloneHttpRequest`], the [`Deadline`] the request carries;
//! 5. a budget with nothing left stops it (every call deposits once);
//! 6. otherwise sleep on the timer, wait for the inner service to be
//!    ready, and call again.
//!
//! **The request is cloned only when a retry may follow**: before each
//! attempt that is not the last allowed. A request type that cannot be
//! cloned cannot be retried, and the type bounds say so: the service needs
//! a [`RetryRequest`] for the request type — [`CloneRequest`] for
//! `Req: Clone`, [`CloneHttpRequest`] for `http::Request<B>` with
//! `B: Clone` (`http::Request` itself is not `Clone`).
//!
//! The inner service is taken with `std::mem::replace(&mut self.inner,
//! self.inner.clone())` in `call`: the readied service makes the first
//! attempt, and its own readiness is polled again before every retry.
//!
//! **Jitter streams**: call `n` of a service on lane `l` draws its delays
//! from `policy.schedule(SplitMix64::derive(id, n + l·φ).next_u64())`
//! (φ = 0x9E37_79B9_7F4A_7C15). Every service the layer makes and every
//! clone gets a lane of its own, so no two calls share a stream (tower's
//! `ExponentialBackoffMaker` clones one RNG into every backoff). Lane 0,
//! call 0 is the core `Retrier`'s first stream.
//!
//! The overall limit is the policy's own `max_elapsed` (if set), unless
//! [`RetryLayer::max_elapsed`] replaces it; a carried [`Deadline`] can only
//! shorten it.
//!
//! # Checked by
//!
//! `tests/retry.rs`: proptest `layer_decides_as_the_core_retrier` (above);
//! `request_is_cloned_only_when_a_retry_may_follow` (1 attempt: no clone;
//! 3 attempts: one clone per attempt that may be followed by a retry),
//! `retry_after_header_is_the_minimum_delay`,
//! `carried_deadline_stops_retries_and_nested_calls_get_the_remaining_budget`.
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
//! use std::time::Duration;
//! use async_patterns::{Jitter, RetryPolicy};
//! use async_patterns_tokio::TokioTimer;
//! use async_patterns_tower::RetryLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let policy = RetryPolicy::builder()
//!     .max_attempts(3)
//!     .jitter(Jitter::Full)
//!     .seed(7) // fixed for the example; async_patterns_tokio::entropy_seed() in production
//!     .build()
//!     .unwrap();
//! let calls = Arc::new(AtomicU32::new(0));
//! let counted = calls.clone();
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy, TokioTimer::new()).max_elapsed(Duration::from_secs(10)))
//!     .service(service_fn(move |x: u32| {
//!         let n = counted.fetch_add(1, Ordering::Relaxed);
//!         async move { if n < 2 { Err(std::io::Error::other("flaky")) } else { Ok(x) } }
//!     }));
//! assert_eq!(svc.oneshot(5).await.unwrap(), 5);
//! assert_eq!(calls.load(Ordering::Relaxed), 3);
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_patterns::{
    Clock, Deadline, Decision, Instant, RetryBudget, RetryPolicy, Schedule, SplitMix64, Timer,
};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error};

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

/// Decides whether, and not before when, a finished attempt is retried.
/// Any `Fn(&Result<Res, Error>, &dyn Clock) -> Decision + Clone` is one
/// (the clock is the layer's timer, to turn a relative delay such as
/// `Retry-After` into an instant; a decision that needs no instant need
/// not read it, so a success costs no clock read).
pub trait RetryClassify<Res> {
    /// The decision for this attempt's result.
    fn decide(&self, result: &Result<Res, Error>, clock: &dyn Clock) -> Decision;

    /// Whether the attempt may have taken effect (so repeating it would
    /// repeat its effect, unless the request is
    /// [`replayable`](RetryRequest::replayable)). By default: yes, except
    /// for a refusal by one of our own layers ([`Error::is_refusal`]: the
    /// call was never made).
    fn may_have_applied(&self, result: &Result<Res, Error>) -> bool {
        !matches!(result, Err(e) if e.is_refusal())
    }
}

impl<Res, F: Fn(&Result<Res, Error>, &dyn Clock) -> Decision> RetryClassify<Res> for F {
    fn decide(&self, result: &Result<Res, Error>, clock: &dyn Clock) -> Decision {
        self(result, clock)
    }
}

/// The default: an `Ok` is final; an `Err` is retried as
/// [`Error::retry_decision`] says (an open breaker or a rate limit: not
/// before the instant it names).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryErrors;

impl<Res> RetryClassify<Res> for RetryErrors {
    #[inline]
    fn decide(&self, result: &Result<Res, Error>, _clock: &dyn Clock) -> Decision {
        match result {
            Ok(_) => Decision::Stop,
            Err(e) => e.retry_decision(),
        }
    }
}

/// For HTTP: [`RetryErrors`] for errors, and a 429, 502, 503 or 504
/// response is retried, not before its `Retry-After` when it has one in
/// the delta-seconds form (an HTTP-date is ignored: the policy's delay).
/// A 429 or 503 *with* `Retry-After` is the server saying it did not take
/// the request: safe to retry for any method; every other retried outcome
/// may have taken effect (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryHttp;

impl<B> RetryClassify<http::Response<B>> for RetryHttp {
    fn may_have_applied(&self, result: &Result<http::Response<B>, Error>) -> bool {
        match result {
            Err(e) => !e.is_refusal(),
            Ok(response) => !http_not_taken(response.status(), response.headers()),
        }
    }

    fn decide(&self, result: &Result<http::Response<B>, Error>, clock: &dyn Clock) -> Decision {
        match result {
            Err(e) => e.retry_decision(),
            Ok(response) => http_decision(response.status(), response.headers(), clock),
        }
    }
}

/// The retry decision for an HTTP response, the rule [`RetryHttp`] (and
/// `async-patterns-reqwest`) apply: a 429, 502, 503 or 504 is retried, not
/// before its `Retry-After` (delta seconds, read on `clock`); anything
/// else is final.
pub fn http_decision(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    clock: &dyn Clock,
) -> Decision {
    match status.as_u16() {
        429 | 502 | 503 | 504 => retry_after(headers).map_or(Decision::Retry, |d| {
            Decision::RetryAfter(clock.now().saturating_add(d))
        }),
        _ => Decision::Stop,
    }
}

/// Whether an HTTP response says the server did not take the request: a
/// 429 or 503 with `Retry-After`. Safe to retry whatever the method.
pub fn http_not_taken(status: http::StatusCode, headers: &http::HeaderMap) -> bool {
    matches!(status.as_u16(), 429 | 503) && retry_after(headers).is_some()
}

/// Whether an HTTP request may be repeated after an outcome that may have
/// taken effect: an idempotent method (RFC 9110 §9.2.2: `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`, `PUT`, `DELETE`), an `Idempotency-Key` header, or
/// the caller's say-so (`marked`: [`Idempotent`] in the request's
/// extensions).
pub fn http_replayable(method: &http::Method, headers: &http::HeaderMap, marked: bool) -> bool {
    use http::Method;
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key(IDEMPOTENCY_KEY)
        || marked
}

/// A `Retry-After` header in seconds.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// How the retry layer copies a request for a retry, and reads the
/// deadline it carries. The retry service requires one for its request
/// type: a request that cannot be copied cannot be retried.
pub trait RetryRequest<Req> {
    /// A copy for the next attempt; `None` makes the current attempt the
    /// last.
    fn clone_request(&self, req: &Req) -> Option<Req>;

    /// The deadline the request carries, if any.
    fn deadline(&self, _req: &Req) -> Option<Deadline> {
        None
    }

    /// Whether the request may be repeated after an outcome that may have
    /// taken effect ([`RetryClassify::may_have_applied`]). By default: yes
    /// (nothing is known of the request); [`CloneHttpRequest`] answers by
    /// the idempotency rule of the [module docs](self).
    fn replayable(&self, _req: &Req) -> bool {
        true
    }
}

/// Put in an `http::Request`'s extensions, it says that repeating the
/// request is safe even though its method is not idempotent (your say-so,
/// per request): [`RetryLayer::http`] then retries it after a timeout too.
///
/// ```
/// let mut req = http::Request::post("/charges").body(()).unwrap();
/// req.extensions_mut().insert(async_patterns_tower::Idempotent);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Idempotent;

/// The header that makes a non-idempotent request safe to repeat: the
/// server answers a repeat of a key with the first answer.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Copies requests with `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneRequest;

impl<Req: Clone> RetryRequest<Req> for CloneRequest {
    #[inline]
    fn clone_request(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// Copies `http::Request<B>` for `B: Clone` (method, URI, version,
/// headers, extensions, body), and reads the [`Deadline`] in its
/// extensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneHttpRequest;

impl<B: Clone> RetryRequest<http::Request<B>> for CloneHttpRequest {
    fn clone_request(&self, req: &http::Request<B>) -> Option<http::Request<B>> {
        let mut copy = http::Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }

    fn deadline(&self, req: &http::Request<B>) -> Option<Deadline> {
        req.extensions().get::<Deadline>().copied()
    }

    /// [`http_replayable`]: an idempotent method, an `Idempotency-Key`
    /// header, or [`Idempotent`] in the extensions.
    fn replayable(&self, req: &http::Request<B>) -> bool {
        http_replayable(
            req.method(),
            req.headers(),
            req.extensions().get::<Idempotent>().is_some(),
        )
    }
}

/// What every call of a retry service needs, cloned into its future.
#[derive(Clone)]
struct Config<T, K, R> {
    policy: RetryPolicy,
    timer: T,
    budget: Option<Arc<RetryBudget>>,
    max_elapsed: Option<Duration>,
    id: u64,
    classify: K,
    request: R,
}

/// Builds [`Retry`] services. See the [module docs](self).
#[derive(Clone)]
pub struct RetryLayer<T, K = RetryErrors, R = CloneRequest> {
    config: Config<T, K, R>,
    lanes: Arc<AtomicU64>,
}

impl<T, K, R> std::fmt::Debug for RetryLayer<T, K, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.config.policy)
            .field("max_elapsed", &self.config.max_elapsed)
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

impl<T: Timer + Clone> RetryLayer<T> {
    /// Retries errors under `policy` on `timer`; requests are copied with
    /// `Clone`.
    pub fn new(policy: RetryPolicy, timer: T) -> Self {
        let max_elapsed = policy.max_elapsed();
        RetryLayer {
            config: Config {
                policy,
                timer,
                budget: None,
                max_elapsed,
                id: 0,
                classify: RetryErrors,
                request: CloneRequest,
            },
            lanes: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl<T: Timer + Clone> RetryLayer<T, RetryHttp, CloneHttpRequest> {
    /// For HTTP clients: retries errors and 429/502/503/504 responses
    /// (honouring `Retry-After`), copies `http::Request<B: Clone>`, and
    /// stops at the request's carried [`Deadline`].
    pub fn http(policy: RetryPolicy, timer: T) -> Self {
        RetryLayer::new(policy, timer)
            .classify(RetryHttp)
            .requests(CloneHttpRequest)
    }
}

impl<T, K, R> RetryLayer<T, K, R> {
    /// Draws every retry from `budget` and deposits every call in it.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.config.budget = Some(budget);
        self
    }

    /// No retry starts `d` or later after a call began (attempts
    /// included); replaces the policy's own `max_elapsed`.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.config.max_elapsed = Some(d);
        self
    }

    /// The id that, with the policy's seed, picks the jitter streams.
    #[must_use = "a builder method returns the changed value; use it"]
    pub fn id(mut self, id: u64) -> Self {
        self.config.id = id;
        self
    }

    /// Decides retries with `classify`.
    pub fn classify<K2>(self, classify: K2) -> RetryLayer<T, K2, R> {
        let c = self.config;
        RetryLayer {
            config: Config {
                policy: c.policy,
                timer: c.timer,
                budget: c.budget,
                max_elapsed: c.max_elapsed,
                id: c.id,
                classify,
                request: c.request,
            },
            lanes: self.lanes,
        }
    }

    /// Copies requests (and reads their deadline) with `request`.
    pub fn requests<R2>(self, request: R2) -> RetryLayer<T, K, R2> {
        let c = self.config;
        RetryLayer {
            config: Config {
                policy: c.policy,
                timer: c.timer,
                budget: c.budget,
                max_elapsed: c.max_elapsed,
                id: c.id,
                classify: c.classify,
                request,
            },
            lanes: self.lanes,
        }
    }
}

impl<S, T: Clone, K: Clone, R: Clone> Layer<S> for RetryLayer<T, K, R> {
    type Service = Retry<S, T, K, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            config: Arc::new(self.config.clone()),
            lane: self.lanes.fetch_add(1, Ordering::Relaxed),
            calls: 0,
            lanes: self.lanes.clone(),
        }
    }
}

/// The retrying service. See the [module docs](self).
pub struct Retry<S, T, K = RetryErrors, R = CloneRequest> {
    inner: S,
    /// Shared by the service's clones and its response futures: a future
    /// takes a reference count, not a copy of the policy.
    config: Arc<Config<T, K, R>>,
    lane: u64,
    calls: u64,
    lanes: Arc<AtomicU64>,
}

impl<S: Clone, T, K, R> Clone for Retry<S, T, K, R> {
    /// A clone gets a jitter lane of its own.
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            config: self.config.clone(),
            lane: self.lanes.fetch_add(1, Ordering::Relaxed),
            calls: 0,
            lanes: self.lanes.clone(),
        }
    }
}

impl<S: std::fmt::Debug, T, K, R> std::fmt::Debug for Retry<S, T, K, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

impl<S, T, K, R, Req> Service<Req> for Retry<S, T, K, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    T: Timer + Clone,
    K: RetryClassify<S::Response> + Clone,
    R: RetryRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = RetryFuture<S, Req, T, K, R>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let c = &self.config;
        let key = self.calls.wrapping_add(self.lane.wrapping_mul(PHI));
        self.calls = self.calls.wrapping_add(1);
        let start = (c.max_elapsed.is_some() || c.budget.is_some()).then(|| c.timer.now());
        let own = start.zip(c.max_elapsed).map(|(s, d)| s.saturating_add(d));
        let carried = c.request.deadline(&req).map(Deadline::instant);
        let deadline = match (own, carried) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(budget), Some(start)) = (&c.budget, start) {
            budget.deposit(start);
        }
        let copy = if c.policy.max_attempts() > 1 {
            c.request.clone_request(&req)
        } else {
            None
        };
        let (fut, service) = match copy {
            // A retry may follow: the readied service makes this attempt
            // and is kept for the retries; this one gets a fresh clone.
            Some(_) => {
                let fresh = self.inner.clone();
                let mut readied = std::mem::replace(&mut self.inner, fresh);
                (readied.call(req), Some(readied))
            }
            None => (self.inner.call(req), None),
        };
        RetryFuture {
            state: State::Calling { fut },
            service,
            request: copy,
            config: self.config.clone(),
            number: 1,
            deadline,
            key,
            schedule: None,
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Sl> {
        Calling { #[pin] fut: F },
        Sleeping { #[pin] sleep: Sl },
        Readying,
    }
}

pin_project! {
    /// The response future of [`Retry`]: the attempts of one logical call.
    #[project = RetryFutureProj]
    pub struct RetryFuture<S, Req, T, K, R>
    where
        S: Service<Req>,
        T: Timer,
    {
        #[pin]
        state: State<S::Future, T::Sleep>,
        service: Option<S>,
        request: Option<Req>,
        config: Arc<Config<T, K, R>>,
        number: u32,
        deadline: Option<Instant>,
        key: u64,
        schedule: Option<Schedule>,
    }
}

impl<S, Req, T, K, R> Future for RetryFuture<S, Req, T, K, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: Timer,
    K: RetryClassify<S::Response>,
    R: RetryRequest<Req>,
{
    type Output = Result<S::Response, Error>;

    /// The first attempt's success (the common case) is decided here,
    /// inline; a retry goes through the out-of-line `retry_loop`.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StateProj::Calling { fut } = this.state.as_mut().project() {
            let out = ready!(fut.poll(cx)).map_err(Error::from_inner);
            if let Some(done) = after_attempt(&mut this, out) {
                return Poll::Ready(done);
            }
        }
        retry_loop(&mut this, cx)
    }
}

/// An attempt's result: final (returned), or the retry is scheduled
/// (`None`).
#[inline(always)]
fn after_attempt<S, Req, T, K, R>(
    this: &mut RetryFutureProj<'_, S, Req, T, K, R>,
    out: Result<S::Response, Error>,
) -> Option<Result<S::Response, Error>>
where
    S: Service<Req>,
    T: Timer,
    K: RetryClassify<S::Response>,
    R: RetryRequest<Req>,
{
    if this.request.is_none() {
        // No copy: this was the last attempt allowed.
        return Some(out);
    }
    let c = &**this.config;
    let decision = c.classify.decide(&out, &c.timer);
    if decision == Decision::Stop || *this.number >= c.policy.max_attempts() {
        return Some(out);
    }
    // Repeating it could repeat what it did (a POST after a timeout). Asked
    // of the copy (the same method, headers and extensions), and only on
    // this path: a success pays nothing for the rule.
    if c.classify.may_have_applied(&out)
        && !this
            .request
            .as_ref()
            .is_some_and(|copy| c.request.replayable(copy))
    {
        return Some(out);
    }
    schedule_retry(this, out, decision)
}

/// After an attempt that is to be retried: its delay (the schedule, a
/// `RetryAfter`), then the deadline and the budget may still say no (the
/// result is returned); otherwise the state becomes the wait.
#[inline(never)]
fn schedule_retry<S, Req, T, K, R>(
    this: &mut RetryFutureProj<'_, S, Req, T, K, R>,
    out: Result<S::Response, Error>,
    decision: Decision,
) -> Option<Result<S::Response, Error>>
where
    S: Service<Req>,
    T: Timer,
{
    let c = &**this.config;
    // Read after the decision: nothing has run in between, so it is the
    // instant the attempt was seen to end.
    let now = c.timer.now();
    let key = *this.key;
    let schedule = this
        .schedule
        .get_or_insert_with(|| c.policy.schedule(SplitMix64::derive(c.id, key).next_u64()));
    let delay = schedule.next().unwrap_or(Duration::ZERO);
    let mut wake = now.saturating_add(delay);
    if let Decision::RetryAfter(at) = decision {
        wake = wake.max(at);
    }
    if this.deadline.is_some_and(|d| wake >= d) {
        return Some(out);
    }
    if c.budget.as_ref().is_some_and(|b| !b.try_withdraw(now)) {
        return Some(out);
    }
    // The failed response is dropped before the wait (an HTTP body frees
    // its connection).
    drop(out);
    if wake > now {
        let sleep = c.timer.sleep_until(wake);
        this.state.set(State::Sleeping { sleep });
    } else {
        this.state.set(State::Readying);
    }
    None
}

/// Sleeps, readies the service and makes the next attempts, until one is
/// final.
#[inline(never)]
fn retry_loop<S, Req, T, K, R>(
    this: &mut RetryFutureProj<'_, S, Req, T, K, R>,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Response, Error>>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: Timer,
    K: RetryClassify<S::Response>,
    R: RetryRequest<Req>,
{
    loop {
        match this.state.as_mut().project() {
            StateProj::Calling { fut } => {
                let out = ready!(fut.poll(cx)).map_err(Error::from_inner);
                if let Some(done) = after_attempt(this, out) {
                    return Poll::Ready(done);
                }
            }
            StateProj::Sleeping { sleep } => {
                ready!(sleep.poll(cx));
                this.state.set(State::Readying);
            }
            StateProj::Readying => {
                let service = this
                    .service
                    .as_mut()
                    .expect("a retry always keeps its service");
                if let Err(e) = ready!(service.poll_ready(cx)) {
                    return Poll::Ready(Err(Error::from_inner(e)));
                }
                let req = this
                    .request
                    .take()
                    .expect("a retry always keeps its request");
                *this.number += 1;
                if *this.number < this.config.policy.max_attempts() {
                    *this.request = this.config.request.clone_request(&req);
                }
                let fut = service.call(req);
                this.state.set(State::Calling { fut });
            }
        }
    }
}

impl<S, Req, T, K, R> std::fmt::Debug for RetryFuture<S, Req, T, K, R>
where
    S: Service<Req>,
    T: Timer,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}
