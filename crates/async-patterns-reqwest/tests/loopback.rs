//! The middleware on loopback: an axum server that counts what reaches it,
//! and a reqwest client through the middleware. Counters and statuses are
//! checked, never timings; the server's slow answers never come (a
//! `Notify` nobody fires), so each timeout is certain; every test is under
//! a hang guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use async_patterns::{
    BreakerConfig, BreakerState, CircuitBreaker, Elapsed, Jitter, Refused, RetryPolicy,
};
use async_patterns_reqwest::{BreakerMiddleware, DeadlineMiddleware, Idempotent, RetryMiddleware};
use async_patterns_tokio::TokioTimer;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// What reached the server, by route.
#[derive(Default)]
struct Hits {
    charge: AtomicUsize,
    busy: AtomicUsize,
    broken: AtomicUsize,
}

/// `/charge` (any method) never answers; `/busy` answers 503 with
/// `Retry-After: 0` twice, then 200; `/broken` answers 500.
async fn server() -> (String, Arc<Hits>) {
    let hits = Arc::new(Hits::default());
    let (h1, h2, h3) = (hits.clone(), hits.clone(), hits.clone());
    let app = Router::new()
        .route(
            "/charge",
            any(move || {
                h1.charge.fetch_add(1, Relaxed);
                async { std::future::pending::<StatusCode>().await }
            }),
        )
        .route(
            "/busy",
            get(move || {
                let n = h2.busy.fetch_add(1, Relaxed);
                async move {
                    if n < 2 {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, HeaderValue::from_static("0"))],
                        )
                            .into_response()
                    } else {
                        StatusCode::OK.into_response()
                    }
                }
            }),
        )
        .route(
            "/broken",
            get(move || {
                h3.broken.fetch_add(1, Relaxed);
                async { StatusCode::INTERNAL_SERVER_ERROR }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// Retry (3 attempts, no backoff) around a 100 ms deadline per attempt.
fn client(timer: TokioTimer) -> ClientWithMiddleware {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .constant(Duration::ZERO)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy, timer))
        .with(DeadlineMiddleware::new(Duration::from_millis(100), timer))
        .build()
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

/// The card is charged once: a POST that timed out is not retried (it may
/// have been taken); with an Idempotency-Key, or the caller's say-so, or an
/// idempotent method, it is.
#[test]
fn a_post_that_timed_out_is_not_retried_without_a_key() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, hits) = server().await;
        let client = client(timer);
        let charge = format!("{url}/charge");
        let err = client.post(&charge).send().await.unwrap_err();
        assert!(is::<Elapsed>(&err), "{err:?}");
        assert_eq!(
            hits.charge.swap(0, Relaxed),
            1,
            "POST without a key: sent once"
        );
        client
            .post(&charge)
            .header("Idempotency-Key", "order-7")
            .send()
            .await
            .unwrap_err();
        assert_eq!(hits.charge.swap(0, Relaxed), 3, "with a key: every attempt");
        client
            .post(&charge)
            .with_extension(Idempotent)
            .send()
            .await
            .unwrap_err();
        assert_eq!(hits.charge.swap(0, Relaxed), 3, "with the caller's say-so");
        client.put(&charge).send().await.unwrap_err();
        assert_eq!(hits.charge.swap(0, Relaxed), 3, "PUT is idempotent");
    });
}

/// A 503 with Retry-After says the server did not take the request: retried
/// for a POST too.
#[test]
fn a_503_with_retry_after_is_retried_for_any_method() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, hits) = server().await;
        let response = client(timer)
            .get(format!("{url}/busy"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(hits.busy.load(Relaxed), 3);
    });
}

/// The breaker opens after two 500s; the next call is refused without
/// being sent, and the error is the core's `Refused`.
#[test]
fn an_open_breaker_refuses_without_sending() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, hits) = server().await;
        let breaker = Arc::new(CircuitBreaker::new(
            BreakerConfig::builder()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(60))
                .build()
                .unwrap(),
            timer,
        ));
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(BreakerMiddleware::new(breaker.clone()))
            .build();
        let broken = format!("{url}/broken");
        for _ in 0..2 {
            assert_eq!(client.get(&broken).send().await.unwrap().status(), 500);
        }
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        let err = client.get(&broken).send().await.unwrap_err();
        assert!(is::<Refused>(&err), "{err:?}");
        assert_eq!(
            hits.broken.load(Relaxed),
            2,
            "the refused call was not sent"
        );
    });
}

/// An outer deadline bounds the retries below it: with 1 s for the whole
/// call and 400 ms an attempt, a GET gets three attempts (at 0, 400 and
/// 800 ms, the last cut to 200 ms), not five.
#[test]
fn the_outer_deadline_bounds_every_attempt_and_retry() {
    guarded(async {
        let timer = TokioTimer::new();
        let (url, hits) = server().await;
        let policy = RetryPolicy::builder()
            .max_attempts(5)
            .constant(Duration::ZERO)
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(DeadlineMiddleware::new(Duration::from_secs(1), timer))
            .with(RetryMiddleware::new(policy, timer))
            .with(DeadlineMiddleware::new(Duration::from_millis(400), timer))
            .build();
        let err = client
            .get(format!("{url}/charge"))
            .send()
            .await
            .unwrap_err();
        assert!(is::<Elapsed>(&err), "{err:?}");
        assert_eq!(hits.charge.load(Relaxed), 3);
    });
}

fn is<E: std::error::Error + Send + Sync + 'static>(e: &reqwest_middleware::Error) -> bool {
    matches!(e, reqwest_middleware::Error::Middleware(e) if e.downcast_ref::<E>().is_some())
}
