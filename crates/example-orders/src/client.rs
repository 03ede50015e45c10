//! The orders client: one logical order per [`OrdersClient::place`], made
//! of attempts under the core's patterns.
//!
//! A call gets one [`Deadline`] (`ClientConfig::deadline` from its start).
//! Each attempt, in order:
//!
//! 1. waits for the [`RateLimiter`] (no later than the deadline);
//! 2. asks the [`CircuitBreaker`] for a permit: a refusal is not sent, and
//!    is classified with `Decision::from(&refused)` (an open breaker: retry
//!    no sooner than it half-opens);
//! 3. sends `POST /orders` through hyper-util's pooled `Client` (any
//!    connector: `HttpConnector` in production, the simulation's over
//!    turmoil) with the call's `Idempotency-Key` (the same on every
//!    attempt, so a retry after a lost answer cannot store the order
//!    twice), under what is left of the deadline, at most
//!    `attempt_timeout`;
//! 4. tells the breaker how it went: `5xx`, a broken connection or a
//!    timeout are failures; a `4xx` is the caller's mistake, not the
//!    server's, and counts as a success.
//!
//! The [`Retrier`] retries `5xx`, `429`, broken connections and timeouts
//! with exponential backoff and full jitter, drawn from `ClientConfig::seed`
//! (in production `async_patterns_tokio::entropy_seed()`, in a simulation
//! the run's seed: a parameter, never a constant in here), within
//! `max_attempts`, the deadline, and a [`RetryBudget`] shared by every call
//! of the client (at most `budget_ratio` retries per call, plus a floor), so
//! a struggling server is not buried under retries.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_patterns::circuit_breaker::{self, CircuitBreaker, Refused, Transition};
use async_patterns::deadline::{Deadline, timeout_at};
use async_patterns::rate_limiter::{Quota, QuotaError, RateLimiter};
use async_patterns::retry::{
    self, BudgetError, Decision, Jitter, Retrier, RetryBudget, RetryPolicy,
};
use async_patterns_tokio::TokioTimer;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;

use crate::server::{IDEMPOTENCY_KEY, NewOrder};

pub use async_patterns::retry::{GaveUp, RetryError};

/// How the client behaves. There is no `Default`: the jitter seed must be
/// chosen ([`ClientConfig::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Seeds the retry jitter. Production: `entropy_seed()`, so a fleet of
    /// clients does not retry in lockstep; a simulation: the run's seed.
    pub seed: u64,
    /// This client's id among clients sharing a seed (its jitter stream).
    pub id: u64,
    /// The most one logical call may take, every attempt and wait included.
    pub deadline: Duration,
    /// The most one attempt may take (less when less of the deadline is
    /// left).
    pub attempt_timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first retry's backoff ceiling, doubling up to the second (full
    /// jitter: each delay is drawn from zero to its ceiling).
    pub backoff: (Duration, Duration),
    /// Sends per second, and how many may go at once after a quiet spell.
    pub rate: (u32, u32),
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open at first, doubling on each reopening
    /// up to the second.
    pub breaker_open: (Duration, Duration),
    /// Retries allowed per call over the budget's 10 s window, and retries
    /// per second allowed regardless.
    pub budget: (f64, u32),
    /// Deliberately broken behaviour, for the simulation's meta-tests
    /// only: all off unless a test turns one on.
    pub sabotage: Sabotage,
}

/// Bugs the simulation can plant in the client, to show that its
/// invariants catch them (`orders-sim list` names them). Never set in
/// production; all are off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sabotage {
    /// Each retry sends a fresh idempotency key (`KEY~2`, `KEY~3`, ...),
    /// as a client that mints the key per HTTP request does.
    pub fresh_key_per_attempt: bool,
    /// Attempts get a fresh `attempt_timeout` each, the limiter waits
    /// without bound, and retries are not bounded by the deadline.
    pub no_deadline: bool,
    /// When the breaker refuses, the attempt is sent anyway ("one more
    /// try cannot hurt").
    pub bypass_open_breaker: bool,
}

impl ClientConfig {
    /// The defaults, with jitter from `seed`: a 2 s deadline, attempts of
    /// at most 400 ms, 4 attempts, backoff 25 ms doubling to 400 ms, 20
    /// sends a second in bursts of 5, a breaker that opens for 250 ms (up
    /// to 2 s) after 4 failures in a row, a budget of 0.5 retries per call
    /// plus 2 a second.
    pub fn new(seed: u64) -> Self {
        ClientConfig {
            seed,
            id: 0,
            deadline: Duration::from_secs(2),
            attempt_timeout: Duration::from_millis(400),
            max_attempts: 4,
            backoff: (Duration::from_millis(25), Duration::from_millis(400)),
            rate: (20, 5),
            breaker_failures: 4,
            breaker_open: (Duration::from_millis(250), Duration::from_secs(2)),
            budget: (0.5, 2),
            sabotage: Sabotage::default(),
        }
    }
}

/// A [`ClientConfig`] the core's patterns refuse.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The rate.
    Rate(QuotaError),
    /// The breaker.
    Breaker(circuit_breaker::BreakerConfigError),
    /// The retry policy.
    Retry(retry::RetryConfigError),
    /// The retry budget.
    Budget(BudgetError),
    /// The service's base URL.
    Base(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Rate(e) => write!(f, "rate: {e}"),
            ConfigError::Breaker(e) => write!(f, "breaker: {e}"),
            ConfigError::Retry(e) => write!(f, "retry: {e}"),
            ConfigError::Budget(e) => write!(f, "retry budget: {e}"),
            ConfigError::Base(e) => write!(f, "the service's base URL: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// The breaker refused it: it was not sent.
    Refused(Refused),
    /// The call's deadline passed before it could be sent.
    Deadline,
    /// It was sent and ran out of time (its own, or the call's).
    TimedOut,
    /// The connection could not be made, or broke before the answer.
    Connection(String),
    /// The server answered with an error status.
    Status(u16, String),
}

impl AttemptError {
    /// Whether it is worth another attempt, and when.
    pub fn decision(&self) -> Decision {
        match self {
            AttemptError::Refused(refused) => Decision::from(refused),
            AttemptError::Deadline => Decision::Stop,
            AttemptError::TimedOut | AttemptError::Connection(_) => Decision::Retry,
            AttemptError::Status(status, _) => Decision::from(*status >= 500 || *status == 429),
        }
    }

    /// Whether it counts against the server in the breaker (a `4xx` does
    /// not; a refusal was never sent).
    fn server_failed(&self) -> bool {
        match self {
            AttemptError::Refused(_) | AttemptError::Deadline => false,
            AttemptError::TimedOut | AttemptError::Connection(_) => true,
            AttemptError::Status(status, _) => *status >= 500,
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Refused(r) => write!(f, "not sent: {r}"),
            AttemptError::Deadline => f.write_str("the deadline passed before sending"),
            AttemptError::TimedOut => f.write_str("timed out"),
            AttemptError::Connection(e) => write!(f, "connection: {e}"),
            AttemptError::Status(status, body) => write!(f, "{status}: {body}"),
        }
    }
}

impl std::error::Error for AttemptError {}

/// A placed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Its id.
    pub id: u64,
    /// `true` for a `201` (this call stored it), `false` for a `200` (an
    /// earlier attempt did, and its answer was lost).
    pub created: bool,
    /// The attempt that got the answer (1 = the first).
    pub attempt: u32,
}

/// What the client is doing, for its observer (logs, metrics, a
/// simulation's trace and checks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientEvent<'a> {
    /// An attempt is going on the wire, with this idempotency key.
    Sending {
        /// The call's key.
        call: &'a str,
        /// The key the attempt sends.
        key: &'a str,
        /// The attempt (1 = the first).
        attempt: u32,
    },
    /// An attempt ended without an answer to keep.
    Failed {
        /// The call's key.
        call: &'a str,
        /// The attempt.
        attempt: u32,
        /// Why.
        error: &'a AttemptError,
    },
    /// The breaker changed state.
    Breaker(Transition),
}

impl fmt::Display for ClientEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEvent::Sending { call, key, attempt } => {
                write!(f, "{call} attempt {attempt} sends key {key}")
            }
            ClientEvent::Failed {
                call,
                attempt,
                error,
            } => write!(f, "{call} attempt {attempt} failed: {error}"),
            ClientEvent::Breaker(t) => write!(f, "breaker {:?} -> {:?}", t.from, t.to),
        }
    }
}

type ClientObserver = Box<dyn Fn(&ClientEvent<'_>) + Send + Sync>;

/// The orders client over hyper-util's `Client` with connector `C` (see the
/// [module docs](self)).
pub struct OrdersClient<C> {
    http: Client<C, Full<Bytes>>,
    orders: Uri,
    config: ClientConfig,
    timer: TokioTimer,
    limiter: RateLimiter<TokioTimer>,
    breaker: CircuitBreaker<TokioTimer>,
    retrier: Retrier<TokioTimer>,
    observer: Arc<OnceLock<ClientObserver>>,
}

impl<C: Connect + Clone + Send + Sync + 'static> OrdersClient<C> {
    /// A client of the service at `base` (`http://orders.internal:8080`)
    /// that sends through `http`: hyper-util's `Client`, whatever its
    /// connector. Call it inside a tokio runtime with time enabled (its
    /// clock is tokio's).
    pub fn new(
        http: Client<C, Full<Bytes>>,
        base: &str,
        config: ClientConfig,
    ) -> Result<Self, ConfigError> {
        let orders: Uri = format!("{}/orders", base.trim_end_matches('/'))
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ConfigError::Base(e.to_string()))?;
        let timer = TokioTimer::new();
        let (rate, burst) = config.rate;
        let quota = Quota::per_second(rate)
            .and_then(|q| q.with_burst(burst))
            .map_err(ConfigError::Rate)?;
        let (open_for, max_open) = config.breaker_open;
        let breaker_config = circuit_breaker::BreakerConfig::builder()
            .consecutive_failures(config.breaker_failures)
            .open_for(open_for)
            .backoff(2.0)
            .max_open_for(max_open)
            .build()
            .map_err(ConfigError::Breaker)?;
        let observer: Arc<OnceLock<ClientObserver>> = Arc::default();
        let watching = observer.clone();
        let breaker = CircuitBreaker::new(breaker_config, timer).with_observer(move |t| {
            if let Some(observer) = watching.get() {
                observer(&ClientEvent::Breaker(*t));
            }
        });
        let (base, cap) = config.backoff;
        let mut policy = RetryPolicy::builder()
            .max_attempts(config.max_attempts)
            .exponential(base, 2.0, cap)
            .jitter(Jitter::Full)
            .seed(config.seed);
        if !config.sabotage.no_deadline {
            // No retry starts once the call's deadline has come.
            policy = policy.max_elapsed(config.deadline);
        }
        let policy = policy.build().map_err(ConfigError::Retry)?;
        let (ratio, floor) = config.budget;
        let budget =
            RetryBudget::new(ratio, floor, Duration::from_secs(10)).map_err(ConfigError::Budget)?;
        let retrier = Retrier::new(policy, timer)
            .with_id(config.id)
            .with_budget(Arc::new(budget));
        Ok(OrdersClient {
            http,
            orders,
            config,
            timer,
            limiter: RateLimiter::new(quota, timer),
            breaker,
            retrier,
            observer,
        })
    }

    /// Calls `observer` with what the client does (it may be set once).
    #[must_use]
    pub fn with_observer(
        self,
        observer: impl Fn(&ClientEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        let _ = self.observer.set(Box::new(observer));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Places `order` under the idempotency `key` (one key per logical
    /// order, chosen by the caller: the same key on every attempt, and on a
    /// later call that retries this one, places the order once).
    pub async fn place(
        &self,
        key: &str,
        order: &NewOrder,
    ) -> Result<Placed, RetryError<AttemptError>> {
        let deadline = Deadline::after(&self.timer, self.config.deadline);
        let body = Bytes::from(serde_json::to_vec(order).unwrap_or_default());
        self.retrier
            .run_classified(
                |attempt| self.attempt(key, body.clone(), attempt.number, deadline),
                AttemptError::decision,
            )
            .await
    }

    /// One attempt of the call `call`.
    async fn attempt(
        &self,
        call: &str,
        body: Bytes,
        number: u32,
        deadline: Deadline,
    ) -> Result<Placed, AttemptError> {
        let sabotage = self.config.sabotage;
        let key: Cow<'_, str> = if sabotage.fresh_key_per_attempt && number > 1 {
            Cow::Owned(format!("{call}~{number}"))
        } else {
            Cow::Borrowed(call)
        };
        let result = self.send(call, &key, body, number, deadline).await;
        if let Err(error) = &result {
            self.notify(&ClientEvent::Failed {
                call,
                attempt: number,
                error,
            });
        }
        result
    }

    async fn send(
        &self,
        call: &str,
        key: &str,
        body: Bytes,
        number: u32,
        deadline: Deadline,
    ) -> Result<Placed, AttemptError> {
        let sabotage = self.config.sabotage;
        if sabotage.no_deadline {
            self.limiter.until_ready().await;
        } else {
            timeout_at(&self.timer, deadline, self.limiter.until_ready())
                .await
                .map_err(|_| AttemptError::Deadline)?;
        }
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) if sabotage.bypass_open_breaker => None,
            Err(refused) => return Err(AttemptError::Refused(refused)),
        };
        let until = if sabotage.no_deadline {
            Deadline::after(&self.timer, self.config.attempt_timeout)
        } else {
            deadline.within(&self.timer, self.config.attempt_timeout)
        };
        self.notify(&ClientEvent::Sending {
            call,
            key,
            attempt: number,
        });
        let result = match timeout_at(&self.timer, until, self.exchange(key, body)).await {
            Ok(result) => result.map(|(id, created)| Placed {
                id,
                created,
                attempt: number,
            }),
            Err(_) => Err(AttemptError::TimedOut),
        };
        if let Some(permit) = permit {
            match &result {
                Err(e) if e.server_failed() => permit.failure(),
                _ => permit.success(),
            }
        }
        result
    }

    /// One HTTP exchange (on a pooled connection, or a new one): the
    /// order's id and whether this request created it.
    async fn exchange(&self, key: &str, body: Bytes) -> Result<(u64, bool), AttemptError> {
        let request = Request::post(self.orders.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, key)
            .body(Full::new(body))
            .map_err(|e| AttemptError::Connection(chain(&e)))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| AttemptError::Connection(chain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| AttemptError::Connection(chain(&e)))?
            .to_bytes();
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                let placed: crate::server::Placed = serde_json::from_slice(&body)
                    .map_err(|e| AttemptError::Status(status.as_u16(), e.to_string()))?;
                Ok((placed.id, status == StatusCode::CREATED))
            }
            _ => Err(AttemptError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body).trim().to_string(),
            )),
        }
    }

    fn notify(&self, event: &ClientEvent<'_>) {
        if let Some(observer) = self.observer.get() {
            observer(event);
        }
    }
}

impl<C> fmt::Debug for OrdersClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrdersClient")
            .field("config", &self.config)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// An error and its causes, in one line (hyper-util's own `Display` says
/// only "client error (Connect)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}
