//! The engines: four ways to make the same `requests` GETs against one URL.
//!
//! * `sequential`: one blocking client, one request at a time;
//! * `threaded`: a fixed pool of `concurrency` OS threads, each with a
//!   blocking client, sharing one connection pool (the seed's
//!   ThreadPoolExecutor);
//! * `async`: one tokio runtime, the core's fan-out
//!   ([`gather_stream`]) with limit `concurrency` over a pooled async
//!   client (hyper);
//! * `async-resilient`: the async engine with retry (3 attempts, jittered
//!   backoff), a circuit breaker and a rate limiter around every request.
//!
//! Every engine records each logical request's latency (the core's
//! recorder) and whether it ended in success or an error; it never loses
//! one: `successes + errors == requests`.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_patterns::circuit_breaker::{CircuitBreaker, Config};
use async_patterns::fan_out::gather_stream;
use async_patterns::rate_limiter::{Quota, RateLimiter};
use async_patterns::retry::{Jitter, Policy, Retrier};
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
}

impl Engine {
    /// Every engine, in the order the lab runs them.
    pub const ALL: [Engine; 4] = [
        Engine::Sequential,
        Engine::Threaded,
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
        }
    }
}

/// Client connection pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Reuse connections (HTTP keep-alive). Off: a new connection per
    /// request.
    pub keep_alive: bool,
    /// Most idle connections kept per host (0 = the concurrency).
    pub max_idle: usize,
}

/// What an engine is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The upstream's URL.
    pub url: String,
    /// Logical requests to make.
    pub requests: u64,
    /// Requests in flight at once (threads for `threaded`; ignored by
    /// `sequential`, which is always 1).
    pub concurrency: usize,
    /// Connection pooling.
    pub pool: Pool,
    /// The upstream's mean latency: sizes the resilient engine's rate
    /// limit and attempt timeout.
    pub mean_latency: Duration,
    /// Seeds the retry jitter.
    pub seed: u64,
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
    /// Requests that ended in an error (a 500, a refusal, a network error).
    pub errors: u64,
    /// Extra attempts the resilient engine made (0 for the others).
    pub retries: u64,
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
    latencies: LatencyRecorder,
    successes: u64,
    errors: u64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            latencies: LatencyRecorder::new(3, Duration::from_secs(3600))
                .expect("3 significant digits up to an hour is valid"),
            successes: 0,
            errors: 0,
        }
    }

    fn record(&mut self, ok: bool, took: Duration) {
        if ok {
            self.successes += 1;
            self.latencies.record(took);
        } else {
            self.errors += 1;
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies
            .merge(&other.latencies)
            .expect("recorders with one configuration merge");
        self.successes += other.successes;
        self.errors += other.errors;
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
            errors: self.errors,
            retries,
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
        (true, 0) => w.concurrency.max(1),
        (true, n) => n,
    }
}

/// Runs `engine` on `w` in this process.
pub fn run(engine: Engine, w: &Workload) -> Result<EngineReport, EngineError> {
    if w.requests == 0 || w.concurrency == 0 {
        return Err(EngineError(
            "requests and concurrency must be at least 1".into(),
        ));
    }
    match engine {
        Engine::Sequential | Engine::Threaded => Ok(blocking(engine, w)),
        Engine::Async | Engine::AsyncResilient => asynchronous(engine, w),
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
    let total = Mutex::new(Tally::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency(engine, w) {
            scope.spawn(|| {
                let mut tally = Tally::new();
                while next.fetch_add(1, Ordering::Relaxed) < w.requests {
                    let t0 = Instant::now();
                    let ok = match agent.get(&w.url).call() {
                        Ok(mut response) => {
                            // Read the body so the connection can be reused.
                            let _ = response.body_mut().read_to_vec();
                            response.status() == 200
                        }
                        Err(_) => false,
                    };
                    tally.record(ok, t0.elapsed());
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

/// One GET within `limit`: `Ok` if it ended in a 200.
async fn get(
    timer: &TokioTimer,
    client: &Client,
    uri: &hyper::Uri,
    limit: Duration,
) -> Result<(), String> {
    let call = async {
        let response = client.get(uri.clone()).await.map_err(|e| e.to_string())?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    };
    match async_patterns::deadline::timeout(timer, limit, call).await {
        Ok(result) => result,
        Err(_) => Err("timed out".into()),
    }
}

/// The longest any one async request may take before it counts as an
/// error, so the async engines cannot hang on an upstream that stops
/// answering: far beyond any latency the upstream draws (at most 5.75 times
/// the mean). (The blocking engines have none: ureq's timeouts triple
/// their CPU time at C = 500; `lab run` puts a deadline on each run
/// instead.)
pub fn request_timeout(w: &Workload) -> Duration {
    (w.mean_latency * 50).max(Duration::from_secs(10))
}

/// The async engines: one multi-threaded tokio runtime; the core's fan-out
/// keeps `concurrency` requests in flight.
fn asynchronous(engine: Engine, w: &Workload) -> Result<EngineReport, EngineError> {
    let uri: hyper::Uri = w
        .url
        .parse()
        .map_err(|e| EngineError(format!("{}: {e}", w.url)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError(format!("a tokio runtime: {e}")))?;
    runtime.block_on(async {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(idle(w))
                .build(connector);
        let limit = NonZeroUsize::new(w.concurrency).expect("checked by run");
        let timer = TokioTimer::new();
        let resilience = (engine == Engine::AsyncResilient).then(|| Resilience::new(w, timer));
        let retries = AtomicU64::new(0);
        let mut tally = Tally::new();
        let started = Instant::now();
        let calls = (0..w.requests).map(|id| {
            let (client, uri, resilience, retries, timer) =
                (&client, &uri, resilience.as_ref(), &retries, &timer);
            async move {
                let t0 = Instant::now();
                let ok = match resilience {
                    None => get(timer, client, uri, request_timeout(w)).await.is_ok(),
                    Some(r) => r.call(id, client, uri, retries).await,
                };
                (ok, t0.elapsed())
            }
        });
        let mut done = gather_stream(calls, limit);
        while let Some((_, (ok, took))) = done.next().await {
            tally.record(ok, took);
        }
        let elapsed = started.elapsed();
        Ok(tally.report(engine, w, elapsed, retries.load(Ordering::Relaxed)))
    })
}

/// The resilient engine's patterns, shared by all its requests.
struct Resilience {
    limiter: RateLimiter<TokioTimer>,
    breaker: CircuitBreaker<TokioTimer>,
    policy: Policy,
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
        let breaker = Config::builder()
            .consecutive_failures(5)
            .open_for(w.mean_latency.max(Duration::from_millis(1)) * 2)
            .build()
            .expect("a valid breaker");
        let policy = Policy::builder()
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
            attempt_timeout: request_timeout(w),
        }
    }

    async fn call(&self, id: u64, client: &Client, uri: &hyper::Uri, retries: &AtomicU64) -> bool {
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
                self.breaker.call(sent).await.map_err(|e| e.to_string())?
            })
            .await
            .is_ok()
    }
}
