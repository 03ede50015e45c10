//! Each rule of the middleware on loopback, counted by a middleware under
//! it (`Count`: one per attempt that reached the network layer) and by the
//! server. Counters and statuses are checked, never timings; every test is
//! under a hang guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use async_patterns::{
    BreakerConfig, BreakerState, CircuitBreaker, Deadline, Elapsed, Jitter, RetryBudget,
    RetryPolicy,
};
use async_patterns_reqwest::{BreakerMiddleware, DeadlineMiddleware, RetryMiddleware};
use async_patterns_tokio::TokioTimer;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, Middleware, Next};

/// Counts the attempts that pass it.
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for Count {
    async fn handle(
        &self,
        req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.0.fetch_add(1, Relaxed);
        next.run(req, ext).await
    }
}

impl Count {
    fn take(&self) -> usize {
        self.0.swap(0, Relaxed)
    }
}

/// Fails every call with an error of its own (not ours, not reqwest's).
struct Fails;

#[async_trait::async_trait]
impl Middleware for Fails {
    async fn handle(
        &self,
        _: Request,
        _: &mut Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        Err(reqwest_middleware::Error::middleware(
            std::io::Error::other("not yours"),
        ))
    }
}

/// `/ok` 200; `/broken` 500; `/busy` 503 with `Retry-After: 0`; `/charge`
/// never answers; `/loop` redirects to itself. The port of a listener that
/// hangs up on every connection without a word comes second.
async fn server() -> (String, String) {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/broken",
            any(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/busy",
            any(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, HeaderValue::from_static("0"))],
                )
                    .into_response()
            }),
        )
        .route(
            "/charge",
            any(|| async { std::future::pending::<StatusCode>().await }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rude_url = format!("http://{}", rude.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = rude.accept().await else {
                break;
            };
            // Read the request, then hang up: it may have been taken.
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            drop(s);
        }
    });
    (url, rude_url)
}

fn policy(attempts: u32, backoff: Duration) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .constant(backoff)
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn breaker(timer: TokioTimer, failures: u32, open: Duration) -> Arc<CircuitBreaker<TokioTimer>> {
    Arc::new(CircuitBreaker::new(
        BreakerConfig::builder()
            .consecutive_failures(failures)
            .open_for(open)
            .build()
            .unwrap(),
        timer,
    ))
}

fn guarded<F: std::future::Future<Output = ()>>(test: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), test)
            .await
            .expect("finished within the hang guard")
    });
}

/// Successes keep the breaker closed; transport errors open it; a refusal
/// by a breaker below it counts as neither.
#[test]
fn the_breaker_counts_failures_and_ignores_refusals_below() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, rude) = server().await;
        let outer = breaker(timer, 2, Duration::from_secs(60));
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(BreakerMiddleware::new(outer.clone()))
            .build();
        for _ in 0..3 {
            client.get(format!("{url}/ok")).send().await.unwrap();
        }
        assert_eq!(
            outer.state(),
            BreakerState::Closed,
            "successes are not failures"
        );
        for _ in 0..2 {
            assert!(client.get(&rude).send().await.is_err());
        }
        assert!(matches!(outer.state(), BreakerState::Open { .. }));
        // An open breaker below: its refusals are not the outer's failures.
        let outer = breaker(timer, 2, Duration::from_secs(60));
        let inner = breaker(timer, 1, Duration::from_secs(60));
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(BreakerMiddleware::new(outer.clone()))
            .with(BreakerMiddleware::new(inner.clone()))
            .build();
        client.get(format!("{url}/broken")).send().await.unwrap();
        assert!(matches!(inner.state(), BreakerState::Open { .. }));
        for _ in 0..3 {
            assert!(client.get(format!("{url}/ok")).send().await.is_err());
        }
        assert_eq!(outer.state(), BreakerState::Closed);
    });
}

/// What a retry makes of each outcome, for a POST (not safe to repeat):
/// a refusal below and a connect error did not happen (retried); a 503
/// with Retry-After neither (retried); a hang-up after sending and a
/// middleware's own error are not retried; too many redirects stops a GET.
#[test]
fn each_outcome_is_retried_or_not_as_the_rule_says() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, rude) = server().await;
        let count = Count::default();
        let retrying = |extra: Option<Arc<dyn Middleware>>| {
            let mut b = ClientBuilder::new(reqwest::Client::new())
                .with(RetryMiddleware::new(
                    policy(3, Duration::from_millis(20)),
                    timer,
                ))
                .with(count.clone());
            if let Some(m) = extra {
                b = b.with_arc(m);
            }
            b.build()
        };
        // A breaker below that is open for 50 ms: the POST waits for it to
        // half-open and goes through.
        let brief = breaker(timer, 1, Duration::from_millis(50));
        let client = retrying(Some(Arc::new(BreakerMiddleware::new(brief.clone()))));
        client.get(format!("{url}/broken")).send().await.unwrap();
        count.take();
        let ok = client.post(format!("{url}/ok")).send().await;
        assert_eq!(
            ok.map(|r| r.status().as_u16()).ok(),
            Some(405),
            "reached the server"
        );
        assert_eq!(count.take(), 2, "refused once, then sent");
        let client = retrying(None);
        // Nothing listens on a closed port: never connected, retried.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = l.local_addr().unwrap();
            drop(l);
            format!("http://{a}/")
        };
        assert!(client.post(&closed).send().await.is_err());
        assert_eq!(count.take(), 3, "a connect error is retried");
        let busy = client.post(format!("{url}/busy")).send().await.unwrap();
        assert_eq!(busy.status(), 503);
        assert_eq!(count.take(), 3, "503 with Retry-After is retried");
        assert!(client.post(&rude).send().await.is_err());
        assert_eq!(count.take(), 1, "a hang-up after sending: not repeated");
        assert!(client.get(&rude).send().await.is_err());
        assert_eq!(count.take(), 3, "a GET is");
        assert!(client.get(format!("{url}/loop")).send().await.is_err());
        assert_eq!(count.take(), 1, "too many redirects stops");
        let failing = retrying(Some(Arc::new(Fails)));
        assert!(failing.get(format!("{url}/ok")).send().await.is_err());
        assert_eq!(
            count.take(),
            1,
            "another middleware's error is not ours to retry"
        );
    });
}

/// A deadline in the request's extensions stops retries, and a retry
/// budget with nothing in it allows none.
#[test]
fn a_carried_deadline_and_an_empty_budget_stop_retries() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, _) = server().await;
        let count = Count::default();
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(RetryMiddleware::new(
                policy(5, Duration::from_millis(100)),
                timer,
            ))
            .with(count.clone())
            .build();
        // Attempts at 0, 100 and 200 ms; the next would start at 300, past
        // the deadline at 250.
        let deadline = Deadline::after(&timer, Duration::from_millis(250));
        let busy = client
            .get(format!("{url}/busy"))
            .with_extension(deadline)
            .send()
            .await
            .unwrap();
        assert_eq!(busy.status(), 503);
        assert!((2..=3).contains(&count.take()), "stopped at the deadline");
        // Half a retry per call, rounded down: none for one call.
        let none = Arc::new(RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap());
        let some = Arc::new(RetryBudget::new(10.0, 10, Duration::from_secs(10)).unwrap());
        for (budget, attempts) in [(none, 1), (some, 3)] {
            let client = ClientBuilder::new(reqwest::Client::new())
                .with(RetryMiddleware::new(policy(3, Duration::ZERO), timer).budget(budget))
                .with(count.clone())
                .build();
            client.get(format!("{url}/busy")).send().await.unwrap();
            assert_eq!(count.take(), attempts);
        }
    });
}

/// A deadline middleware under an earlier deadline keeps the earlier one:
/// the call ends at it, and says which deadline passed.
#[test]
fn an_inner_deadline_never_outlives_the_outer_one() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, _) = server().await;
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(DeadlineMiddleware::new(Duration::from_secs(20), timer))
            .build();
        let outer = Deadline::after(&timer, Duration::from_millis(200));
        let err = client
            .get(format!("{url}/charge"))
            .with_extension(outer)
            .send()
            .await
            .unwrap_err();
        let reqwest_middleware::Error::Middleware(e) = err else {
            panic!("{err:?}");
        };
        assert_eq!(
            e.downcast_ref::<Elapsed>().map(|e| e.deadline),
            Some(outer),
            "{e:?}"
        );
    });
}
