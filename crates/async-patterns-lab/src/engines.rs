//! The engines: five ways to make the same `requests` GETs against one URL
//! or several (request `i` goes to URL `i mod n`, round-robin).
//!
//! * `sequential`: one blocking client, one request at a time;
//! * `threaded`: a fixed pool of `concurrency` OS threads, each with a
//!   blocking client, sharing one connection pool (the seed's
//!   ThreadPoolExecutor);
//! * `async`: one tokio runtime, the core's fan-out
//!   ([`gather_stream`]) with limit `concurrency` over a pooled async
//!   client (hyper);
//! * `async-resilient`: the async engine with retry (3 attempts, jittered
//!   backoff), a circuit breaker and a rate limiter around every request;
//! * `reqwest`: the async client most Rust services use, kept
//!   `concurrency` requests busy the way its users write it
//!   (`buffer_unordered`): what our engines are measured against.
//!
//! Every engine records each logical request's latency (the core's
//! recorder) and whether it ended in success or an error, and why
//! ([`ErrorCause`]); it never loses one: `successes + errors == requests`.
//!
//! Every request has a timeout ([`Workload::timeout`]). The async engines
//! abort a request at it. The blocking engines cannot (ureq's own timeouts
//! tripled their CPU time at C = 500): a request they wait for longer
//! still ends, but counts as a timeout error, as does a resilient request
//! whose attempts, backoff and waits add up to more than the timeout. So no
//! success ever takes longer than the timeout, on any engine.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_patterns::circuit_breaker::{BreakerConfig, CircuitBreaker};
use async_patterns::fan_out::gather_stream;
use async_patterns::rate_limiter::{Quota, RateLimiter};
use async_patterns::retry::{Jitter, Retrier, RetryPolicy};
use async_patterns_stats::LatencyRecorder;
use async_patterns_tokio::TokioTimer;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use serde::{Deserialize, Serialize};

/// Which engine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// One blocking client, one request at a time.
    Sequential,
    /// `concurrency` OS threads with blocking clients.
    Threaded,
    /// The core's fan-out over a pooled async client.
    Async,
    /// `async` with retry, circuit breaker and rate limiter.
    AsyncResilient,
    /// reqwest's async client, `concurrency` requests at once through
    /// `buffer_unordered`.
    Reqwest,
}

impl Engine {
    /// Every engine, in the order the lab runs them.
    pub const ALL: [Engine; 5] = [
        Engine::Sequential,
        Engine::Threaded,
        Engine::Reqwest,
        Engine::Async,
        Engine::AsyncResilient,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sequential => "sequential",
            Engine::Threaded => "threaded",
            Engine::Async => "async",
            Engine::AsyncResilient => "async-resilient",
            Engine::Reqwest => "reqwest",
        }
    }
}

/// Client connection pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SavedPool")]
pub struct Pool {
    /// Reuse connections (HTTP keep-alive). Off: a new connection per
    /// request.
    pub keep_alive: bool,
    /// Most idle connections kept per host (0: none); `None`: the
    /// concurrency.
    #[serde(rename = "max_idle_per_host")]
    pub max_idle: Option<usize>,
}

/// A [`Pool`] as a report saves it, now or as before 0 could mean "none"
/// (then `max_idle`, with 0 for the concurrency).
#[derive(Deserialize)]
struct SavedPool {
    keep_alive: bool,
    #[serde(default)]
    max_idle_per_host: Option<usize>,
    #[serde(default)]
    max_idle: Option<usize>,
}

impl From<SavedPool> for Pool {
    fn from(saved: SavedPool) -> Pool {
        let legacy = saved.max_idle.filter(|&n| n > 0);
        Pool {
            keep_alive: saved.keep_alive,
            max_idle: saved.max_idle_per_host.or(legacy),
        }
    }
}

/// What an engine is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The upstream's URLs (at least one): request `i` goes to
    /// `urls[i % urls.len()]`.
    pub urls: Vec<String>,
    /// Logical requests to make.
    pub requests: u64,
    /// Requests in flight at once (threads for `threaded`; ignored by
    /// `sequential`, which is always 1).
    pub concurrency: usize,
    /// Connection pooling.
    pub pool: Pool,
    /// The upstream's mean latency: sizes the resilient engine's rate
    /// limit and circuit breaker.
    pub mean_latency: Duration,
    /// Seeds the retry jitter.
    pub seed: u64,
    /// Open the connections first (async engines): one uncounted request
    /// per unit of concurrency, on the clock, before the counted ones, so
    /// their latency, like wrk's, does not include connecting.
    #[serde(default)]
    pub warm_up: bool,
    /// The longest a request may take and still count as a success
    /// ([`request_timeout`] in `lab run`); also each of the resilient
    /// engine's attempts' timeout.
    pub timeout: Duration,
}

/// Why a request ended in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCause {
    /// The upstream answered with a 5xx (the injected errors are 500s).
    #[serde(rename = "5xx")]
    Status5xx,
    /// The upstream answered with a 4xx.
    #[serde(rename = "4xx")]
    Status4xx,
    /// No whole answer within the timeout.
    Timeout,
    /// No connection: refused, unreachable, no local port left, or a
    /// connect the OS gave up on.
    Connect,
    /// The connection was reset or closed before the whole answer came.
    Reset,
    /// The resilient engine's circuit breaker refused its last attempt.
    CircuitOpen,
    /// Anything else (another status than 200, a protocol error, ...).
    Other,
}

impl ErrorCause {
    /// Every cause, in the order the table lists them.
    pub const ALL: [ErrorCause; 7] = [
        ErrorCause::Status5xx,
        ErrorCause::Status4xx,
        ErrorCause::Timeout,
        ErrorCause::Connect,
        ErrorCause::Reset,
        ErrorCause::CircuitOpen,
        ErrorCause::Other,
    ];

    /// Its name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCause::Status5xx => "5xx",
            ErrorCause::Status4xx => "4xx",
            ErrorCause::Timeout => "timeout",
            ErrorCause::Connect => "connect",
            ErrorCause::Reset => "reset",
            ErrorCause::CircuitOpen => "circuit-open",
            ErrorCause::Other => "other",
        }
    }

    /// The error a status is, if it is not the 200 the upstream answers.
    pub fn of_status(status: u16) -> Option<ErrorCause> {
        match status {
            200 => None,
            500..=599 => Some(ErrorCause::Status5xx),
            400..=499 => Some(ErrorCause::Status4xx),
            _ => Some(ErrorCause::Other),
        }
    }

    /// The cause an I/O error's kind names, if it names one.
    pub fn of_io(kind: std::io::ErrorKind) -> Option<ErrorCause> {
        use std::io::ErrorKind as K;
        match kind {
            K::ConnectionRefused
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable => Some(ErrorCause::Connect),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                Some(ErrorCause::Reset)
            }
            // A socket read timeout is WouldBlock on Unix.
            K::TimedOut | K::WouldBlock => Some(ErrorCause::Timeout),
            _ => None,
        }
    }

    /// The cause of an error from the blocking engines' client (ureq).
    pub fn of_ureq(error: &ureq::Error) -> ErrorCause {
        use ureq::Error as E;
        match error {
            E::StatusCode(status) => Self::of_status(*status).unwrap_or(ErrorCause::Other),
            // A connect the OS timed out is a failure to connect.
            E::Timeout(ureq::Timeout::Connect) | E::ConnectionFailed | E::HostNotFound => {
                ErrorCause::Connect
            }
            E::Timeout(_) => ErrorCause::Timeout,
            // ureq's error names no source: look at the I/O error itself.
            E::Io(io) => Self::of_chain(io),
            other => Self::of_chain(other),
        }
    }

    /// The cause of an error from the async engines' client (hyper's).
    pub fn of_hyper(error: &hyper_util::client::legacy::Error) -> ErrorCause {
        if error.is_connect() {
            ErrorCause::Connect
        } else {
            Self::of_chain(error)
        }
    }

    /// The cause of an error from reqwest.
    pub fn of_reqwest(error: &reqwest::Error) -> ErrorCause {
        if error.is_timeout() {
            ErrorCause::Timeout
        } else if error.is_connect() {
            ErrorCause::Connect
        } else {
            Self::of_chain(error)
        }
    }

    /// The first cause an error or one of its sources names: an I/O
    /// error's kind, or hyper's own word for a connection that went away.
    fn of_chain(error: &(dyn std::error::Error + 'static)) -> ErrorCause {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(cause) =
                (e.downcast_ref::<std::io::Error>()).and_then(|io| Self::of_io(io.kind()))
            {
                return cause;
            }
            if let Some(h) = e.downcast_ref::<hyper::Error>() {
                if h.is_timeout() {
                    return ErrorCause::Timeout;
                }
                if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                    return ErrorCause::Reset;
                }
            }
            next = e.source();
        }
        ErrorCause::Other
    }

    /// How an answer ended: its status's error if it has one (what the
    /// upstream said comes first), else its body's, else a success.
    fn of_answer<E>(
        status: u16,
        body: Result<(), E>,
        cause: impl FnOnce(&E) -> ErrorCause,
    ) -> Result<(), ErrorCause> {
        match (Self::of_status(status), body) {
            (Some(c), _) => Err(c),
            (None, Err(e)) => Err(cause(&e)),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// Latency percentiles of the requests that succeeded, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// What an engine did, measured inside the process that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    /// The engine.
    pub engine: Engine,
    /// Its concurrency (1 for `sequential`).
    pub concurrency: usize,
    /// Logical requests made.
    pub requests: u64,
    /// Requests that ended in a 200.
    pub successes: u64,
    /// Requests that ended in an error (a 500, a refusal, a network error,
    /// a timeout).
    pub errors: u64,
    /// The errors by cause (causes with none left out; empty in reports
    /// written before causes were counted).
    #[serde(default)]
    pub errors_by_cause: BTreeMap<ErrorCause, u64>,
    /// Extra attempts the resilient engine made (0 for the others).
    pub retries: u64,
    /// Warm-up requests answered (any status) before the counted ones,
    /// within `elapsed_s` (see [`Workload::warm_up`]; 0 without).
    #[serde(default)]
    pub warm_up_answers: u64,
    /// Wall time from the first request to the last answer, in seconds.
    pub elapsed_s: f64,
    /// Successful requests per second of `elapsed_s`.
    pub requests_per_s: f64,
    /// Latency of the successful requests; `None` (null in the JSON) when
    /// none succeeded, so no latency is made up.
    pub latency: Option<Percentiles>,
    /// The process's resident-set high-water mark, in KiB (filled in by
    /// the child process that ran the engine).
    pub peak_rss_kib: u64,
    /// User + system CPU time of that process, in seconds.
    pub cpu_s: f64,
}

/// An error that stops an engine from running at all.
#[derive(Debug)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

/// Tallies of one run, shared by an engine's workers.
struct Tally {
    warm_up_answers: u64,
    latencies: LatencyRecorder,
    successes: u64,
    errors: BTreeMap<ErrorCause, u64>,
    timeout: Duration,
}

impl Tally {
    fn new(w: &Workload) -> Self {
        Tally {
            warm_up_answers: 0,
            latencies: LatencyRecorder::new(3, Duration::from_secs(3600))
                .expect("3 significant digits up to an hour is valid"),
            successes: 0,
            errors: BTreeMap::new(),
            timeout: w.timeout,
        }
    }

    /// Records a request that ended with `outcome` after `took`. One that
    /// took longer than the timeout is a timeout, whatever it ended with:
    /// the blocking engines cannot abort a request, and the resilient
    /// engine's timeout is per attempt.
    fn record(&mut self, outcome: Result<(), ErrorCause>, took: Duration) {
        match outcome {
            Ok(()) if took <= self.timeout => {
                self.successes += 1;
                self.latencies.record(took);
            }
            Ok(()) => *self.errors.entry(ErrorCause::Timeout).or_default() += 1,
            Err(cause) => *self.errors.entry(cause).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies
            .merge(&other.latencies)
            .expect("recorders with one configuration merge");
        self.successes += other.successes;
        self.warm_up_answers += other.warm_up_answers;
        for (cause, n) in other.errors {
            *self.errors.entry(cause).or_default() += n;
        }
    }

    fn report(self, engine: Engine, w: &Workload, elapsed: Duration, retries: u64) -> EngineReport {
        let s = self.latencies.summary();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let elapsed_s = elapsed.as_secs_f64();
        EngineReport {
            engine,
            concurrency: concurrency(engine, w),
            requests: w.requests,
            successes: self.successes,
            errors: self.errors.values().sum(),
            errors_by_cause: self.errors,
            retries,
            warm_up_answers: self.warm_up_answers,
            elapsed_s,
            requests_per_s: if elapsed_s > 0.0 {
                self.successes as f64 / elapsed_s
            } else {
                0.0
            },
            latency: (self.successes > 0).then(|| Percentiles {
                p50_ms: ms(s.p50),
                p95_ms: ms(s.p95),
                p99_ms: ms(s.p99),
                max_ms: ms(s.max),
            }),
            peak_rss_kib: 0,
            cpu_s: 0.0,
        }
    }
}

fn concurrency(engine: Engine, w: &Workload) -> usize {
    match engine {
        Engine::Sequential => 1,
        _ => w.concurrency.max(1),
    }
}

fn idle(w: &Workload) -> usize {
    match (w.pool.keep_alive, w.pool.max_idle) {
        (false, _) => 0,
        (true, None) => w.concurrency.max(1),
        (true, Some(n)) => n,
    }
}

/// Runs `engine` on `w` in this process.
pub fn run(engine: Engine, w: &Workload) -> Result<EngineReport, EngineError> {
    if w.requests == 0 || w.concurrency == 0 {
        return Err(EngineError(
            "requests and concurrency must be at least 1".into(),
        ));
    }
    if w.urls.is_empty() {
        return Err(EngineError("no URL to send the requests to".into()));
    }
    match engine {
        Engine::Sequential | Engine::Threaded => Ok(blocking(engine, w)),
        Engine::Async | Engine::AsyncResilient => asynchronous(engine, w),
        Engine::Reqwest => with_reqwest(w),
    }
}

/// The blocking engines: `concurrency(engine)` threads pull request numbers
/// from one counter until every request is made.
fn blocking(engine: Engine, w: &Workload) -> EngineReport {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_idle_connections(idle(w))
        .max_idle_connections_per_host(idle(w))
        .http_status_as_error(false)
        .build()
        .into();
    let next = AtomicU64::new(0);
    let total = Mutex::new(Tally::new(w));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency(engine, w) {
            scope.spawn(|| {
                let mut tally = Tally::new(w);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= w.requests {
                        break;
                    }
                    let url = &w.urls[(i % w.urls.len() as u64) as usize];
                    let t0 = Instant::now();
                    let outcome = match agent.get(url).call() {
                        Ok(mut response) => {
                            // Read the body so the connection can be reused.
                            let body = response.body_mut().read_to_vec().map(drop);
                            ErrorCause::of_answer(
                                response.status().as_u16(),
                                body,
                                ErrorCause::of_ureq,
                            )
                        }
                        Err(e) => Err(ErrorCause::of_ureq(&e)),
                    };
                    tally.record(outcome, t0.elapsed());
                }
                total.lock().expect("tally lock").merge(tally);
            });
        }
    });
    let elapsed = started.elapsed();
    total
        .into_inner()
        .expect("tally lock")
        .report(engine, w, elapsed, 0)
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

/// One GET within `limit` (the connection, waiting for one from the pool,
/// the answer and its body): `Ok` if it ended in a 200.
async fn get(
    timer: &TokioTimer,
    client: &Client,
    uri: &hyper::Uri,
    limit: Duration,
) -> Result<(), ErrorCause> {
    let call = async {
        let response = (client.get(uri.clone()).await).map_err(|e| ErrorCause::of_hyper(&e))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(drop);
        ErrorCause::of_answer(status, body, |e| ErrorCause::of_chain(e))
    };
    match async_patterns::deadline::timeout(timer, limit, call).await {
        Ok(result) => result,
        Err(_) => Err(ErrorCause::Timeout),
    }
}

/// Whether a request got an HTTP answer (of any status).
fn answered(outcome: Result<(), ErrorCause>) -> bool {
    matches!(
        outcome,
        Ok(()) | Err(ErrorCause::Status4xx | ErrorCause::Status5xx | ErrorCause::Other)
    )
}

/// The timeout `lab run` gives every request: far beyond any latency the
/// upstream draws (at most 5.75 times the mean), so only an upstream that
/// stops answering, or a client that cannot keep up, meets it.
pub fn request_timeout(mean_latency: Duration) -> Duration {
    (mean_latency * 50).max(Duration::from_secs(10))
}

/// The async engines: one single-threaded tokio runtime per core (as wrk
/// runs an event loop per thread), each with its own hyper client and a
/// share of the concurrency (the shares add up to `concurrency`) kept busy
/// by the core's fan-out, which takes the next request number from one
/// shared counter whenever a slot frees (a fixed split of the requests
/// left the shard with the smaller share running alone at the end: 77% of
/// C / L at C = 5 split 3 + 2). The resilient engine's breaker, limiter and retry
/// budget are shared by all shards.
///
/// Why not one multi-threaded runtime: there, the fan-out ran on the
/// thread that called `block_on` and hyper's connection tasks on the
/// workers, so every request crossed threads twice. Profiled at C = 500
/// (50 ms, 2 cores): 23.7 µs of CPU and 0.41 context switches per request
/// (wrk: 12 µs, 0.12), half of it in the kernel waking threads; sharded,
/// 18 µs and 0.15, and 86-87% of C / L became 90-91%.
fn asynchronous(engine: Engine, w: &Workload) -> Result<EngineReport, EngineError> {
    let uris = (w.urls.iter())
        .map(|url| url.parse().map_err(|e| EngineError(format!("{url}: {e}"))))
        .collect::<Result<Vec<hyper::Uri>, _>>()?;
    let timer = TokioTimer::new();
    let resilience = (engine == Engine::AsyncResilient).then(|| Resilience::new(w, timer));
    let retries = AtomicU64::new(0);
    let shards = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, w.concurrency.max(1));
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let results: Vec<Result<Tally, EngineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..shards)
            .map(|k| {
                let shard = Shard {
                    w,
                    uris: &uris,
                    resilience: resilience.as_ref(),
                    retries: &retries,
                    timer,
                    index: k,
                    next: &next,
                    limit: w.concurrency / shards + usize::from(k < w.concurrency % shards),
                };
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| EngineError(format!("a tokio runtime: {e}")))?;
                    Ok(runtime.block_on(shard.drive()))
                })
            })
            .collect();
        (handles.into_iter())
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(EngineError("an async shard panicked".into())))
            })
            .collect()
    });
    let mut tally = Tally::new(w);
    for shard in results {
        tally.merge(shard?);
    }
    let elapsed = started.elapsed();
    Ok(tally.report(engine, w, elapsed, retries.load(Ordering::Relaxed)))
}

/// A share of an async run: the next request number from `next` while
/// fewer than `limit` are in flight, over a client of its own.
struct Shard<'a> {
    w: &'a Workload,
    uris: &'a [hyper::Uri],
    resilience: Option<&'a Resilience>,
    retries: &'a AtomicU64,
    timer: TokioTimer,
    index: usize,
    next: &'a AtomicU64,
    limit: usize,
}

impl Shard<'_> {
    async fn drive(self) -> Tally {
        let w = self.w;
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(idle(w).min(self.limit))
                .build(connector);
        let limit = NonZeroUsize::new(self.limit.max(1)).expect("at least 1");
        let mut tally = Tally::new(w);
        if w.warm_up {
            // One request per connection this shard may open, on the
            // clock but not counted, so the counted ones run on open
            // connections.
            let warm = (0..self.limit).map(|i| {
                let uri = &self.uris[(self.index + i) % self.uris.len()];
                get(&self.timer, &client, uri, w.timeout)
            });
            let mut warm = gather_stream(warm, limit);
            while let Some((_, outcome)) = warm.next().await {
                tally.warm_up_answers += u64::from(answered(outcome));
            }
        }
        let next = self.next;
        let ids = std::iter::from_fn(|| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            (id < w.requests).then_some(id)
        });
        let calls = ids.map(|id| {
            let uri = &self.uris[(id % self.uris.len() as u64) as usize];
            let (client, resilience, retries, timer) =
                (&client, self.resilience, self.retries, &self.timer);
            async move {
                let t0 = Instant::now();
                let outcome = match resilience {
                    None => get(timer, client, uri, w.timeout).await,
                    Some(r) => r.call(id, client, uri, retries).await,
                };
                (outcome, t0.elapsed())
            }
        });
        let mut done = gather_stream(calls, limit);
        while let Some((_, (outcome, took))) = done.next().await {
            tally.record(outcome, took);
        }
        tally
    }
}

/// The reqwest engine: one multi-threaded tokio runtime (as the async
/// engines), reqwest's pooled client with the same pool settings and
/// timeout, and `buffer_unordered(concurrency)` keeping that many requests
/// in flight: the plain code a reqwest user writes.
fn with_reqwest(w: &Workload) -> Result<EngineReport, EngineError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError(format!("a tokio runtime: {e}")))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(idle(w))
        .tcp_nodelay(true)
        .timeout(w.timeout)
        .no_proxy()
        .build()
        .map_err(|e| EngineError(format!("a reqwest client: {e}")))?;
    let urls = (w.urls.iter())
        .map(|url| reqwest::Url::parse(url).map_err(|e| EngineError(format!("{url}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    runtime.block_on(async {
        let mut tally = Tally::new(w);
        let started = Instant::now();
        if w.warm_up {
            let warm =
                (0..w.concurrency).map(|id| client.get(urls[id % urls.len()].clone()).send());
            let mut warm = futures_util::stream::iter(warm).buffer_unordered(w.concurrency);
            while let Some(answer) = warm.next().await {
                if let Ok(response) = answer {
                    let _ = response.bytes().await;
                    tally.warm_up_answers += 1;
                }
            }
        }
        let calls = (0..w.requests).map(|id| {
            let url = urls[(id % urls.len() as u64) as usize].clone();
            let client = &client;
            async move {
                let t0 = Instant::now();
                let outcome = match client.get(url).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await.map(drop);
                        ErrorCause::of_answer(status, body, ErrorCause::of_reqwest)
                    }
                    Err(e) => Err(ErrorCause::of_reqwest(&e)),
                };
                (outcome, t0.elapsed())
            }
        });
        let mut done = futures_util::stream::iter(calls).buffer_unordered(w.concurrency);
        while let Some((outcome, took)) = done.next().await {
            tally.record(outcome, took);
        }
        let elapsed = started.elapsed();
        Ok(tally.report(Engine::Reqwest, w, elapsed, 0))
    })
}

/// The resilient engine's patterns, shared by all its requests.
struct Resilience {
    limiter: RateLimiter<TokioTimer>,
    breaker: CircuitBreaker<TokioTimer>,
    policy: RetryPolicy,
    timer: TokioTimer,
    attempt_timeout: Duration,
}

impl Resilience {
    fn new(w: &Workload, timer: TokioTimer) -> Self {
        // The limit sits 20% above the physical limit C / L, with a burst
        // of C: it shapes bursts without capping what the upstream can do.
        let per_second = (1.2 * w.concurrency as f64 / w.mean_latency.as_secs_f64().max(1e-3))
            .ceil()
            .clamp(1.0, f64::from(u32::MAX)) as u32;
        let burst = u32::try_from(w.concurrency).unwrap_or(u32::MAX).max(1);
        let quota = Quota::per_second(per_second)
            .and_then(|q| q.with_burst(burst))
            .expect("a positive rate and burst");
        let breaker = BreakerConfig::builder()
            .consecutive_failures(5)
            .open_for(w.mean_latency.max(Duration::from_millis(1)) * 2)
            .build()
            .expect("a valid breaker");
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .exponential(Duration::from_millis(1), 2.0, Duration::from_millis(20))
            .jitter(Jitter::Full)
            .seed(w.seed)
            .build()
            .expect("a valid retry policy");
        Resilience {
            limiter: RateLimiter::new(quota, timer),
            breaker: CircuitBreaker::new(breaker, timer),
            policy,
            timer,
            attempt_timeout: w.timeout,
        }
    }

    /// One logical request: its last attempt's cause if every attempt
    /// failed.
    async fn call(
        &self,
        id: u64,
        client: &Client,
        uri: &hyper::Uri,
        retries: &AtomicU64,
    ) -> Result<(), ErrorCause> {
        let retrier = Retrier::new(self.policy.clone(), self.timer).with_id(id);
        retrier
            .run(|attempt| async move {
                self.limiter.until_ready().await;
                // The breaker runs the request only if it admits it, and
                // records its outcome; a retry counts once it is sent.
                let sent = async {
                    if attempt.number > 1 {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    get(&self.timer, client, uri, self.attempt_timeout).await
                };
                self.breaker
                    .call(sent)
                    .await
                    .map_err(|e| e.into_inner().unwrap_or(ErrorCause::CircuitOpen))
            })
            .await
            .map_err(|gave_up| gave_up.error)
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorCause, Pool};

    /// A pool reads back as written, and as reports wrote it before 0
    /// could mean none (when 0 meant the concurrency).
    #[test]
    fn pools_read_back_now_and_as_saved_before() {
        for max_idle in [None, Some(0), Some(7)] {
            let pool = Pool {
                keep_alive: true,
                max_idle,
            };
            let json = serde_json::to_string(&pool).unwrap();
            assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), pool, "{json}");
        }
        let before = |json| serde_json::from_str::<Pool>(json).unwrap().max_idle;
        assert_eq!(before(r#"{"keep_alive":true,"max_idle":0}"#), None);
        assert_eq!(before(r#"{"keep_alive":true,"max_idle":7}"#), Some(7));
    }

    /// The table's names and the JSON's keys are one and the same.
    #[test]
    fn causes_are_named_alike_in_the_table_and_the_json() {
        for cause in ErrorCause::ALL {
            let json = serde_json::to_value(cause).unwrap();
            assert_eq!(json, cause.name(), "{cause:?}");
            assert_eq!(serde_json::from_value::<ErrorCause>(json).unwrap(), cause);
        }
    }

    /// Statuses and I/O error kinds map to the causes they name.
    #[test]
    fn statuses_and_io_kinds_are_classified() {
        use std::io::ErrorKind as K;
        assert_eq!(ErrorCause::of_status(200), None);
        assert_eq!(ErrorCause::of_status(503), Some(ErrorCause::Status5xx));
        assert_eq!(ErrorCause::of_status(404), Some(ErrorCause::Status4xx));
        assert_eq!(ErrorCause::of_status(302), Some(ErrorCause::Other));
        let io = |kind: K| ErrorCause::of_ureq(&ureq::Error::Io(kind.into()));
        assert_eq!(io(K::ConnectionRefused), ErrorCause::Connect);
        assert_eq!(io(K::AddrNotAvailable), ErrorCause::Connect);
        assert_eq!(io(K::ConnectionReset), ErrorCause::Reset);
        assert_eq!(io(K::UnexpectedEof), ErrorCause::Reset);
        assert_eq!(io(K::TimedOut), ErrorCause::Timeout);
        assert_eq!(io(K::PermissionDenied), ErrorCause::Other);
        let timeout = |t| ErrorCause::of_ureq(&ureq::Error::Timeout(t));
        assert_eq!(timeout(ureq::Timeout::Connect), ErrorCause::Connect);
        assert_eq!(timeout(ureq::Timeout::RecvBody), ErrorCause::Timeout);
        assert_eq!(
            ErrorCause::of_ureq(&ureq::Error::StatusCode(500)),
            ErrorCause::Status5xx
        );
    }
}
