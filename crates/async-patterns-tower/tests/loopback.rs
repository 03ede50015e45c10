//! End to end on loopback: an axum server behind load shedding, a
//! rejecting concurrency limit and a timeout, driven by a hyper-util client
//! behind a deadline, retry (honouring Retry-After) and a circuit breaker.
//! Statuses and counters are checked, never timings; every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use async_patterns::{
    AdaptiveConfig, AdaptiveLimit, BreakerConfig, BreakerState, CircuitBreaker, Jitter, RetryPolicy,
};
use async_patterns_tokio::TokioTimer;
use async_patterns_tower::respond::handle_error;
use async_patterns_tower::{
    BreakerLayer, ConcurrencyLimitLayer, DeadlineLayer, LoadShedLayer, RetryLayer,
    ServerErrorsFail, TimeoutLayer,
};
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;
use tower::{ServiceBuilder, ServiceExt};

#[test]
fn axum_server_and_hyper_client_through_the_layers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), scenario())
            .await
            .expect("the loopback scenario finished in time")
    });
}

async fn scenario() {
    let timer = TokioTimer::new();
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let limit = Arc::new(AdaptiveLimit::new(
        AdaptiveConfig::builder().limits(1, 8, 64).build().unwrap(),
        timer,
    ));

    let hits = flaky_hits.clone();
    let (e, r) = (entered.clone(), release.clone());
    let app = axum::Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route(
            "/flaky",
            get(move || {
                let n = hits.fetch_add(1, Relaxed);
                async move {
                    if n < 2 {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, HeaderValue::from_static("0"))],
                        )
                            .into_response()
                    } else {
                        "recovered".into_response()
                    }
                }
            }),
        )
        .route(
            "/block",
            get(move || async move {
                e.notify_one();
                r.notified().await;
                "released"
            }),
        )
        .layer(
            ServiceBuilder::new()
                // Our errors as a server answers them (`respond`): a shed
                // call is 503 with Retry-After, a timeout 504.
                .layer(HandleErrorLayer::new(handle_error(timer)))
                .layer(LoadShedLayer::new(limit.clone()).classify(ServerErrorsFail))
                .layer(ConcurrencyLimitLayer::new(1).unwrap().reject_when_full())
                .layer(TimeoutLayer::new(Duration::from_secs(10), timer)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let breaker = Arc::new(CircuitBreaker::new(
        BreakerConfig::builder()
            .consecutive_failures(5)
            .build()
            .unwrap(),
        timer,
    ));
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .exponential(Duration::from_millis(1), 2.0, Duration::from_millis(10))
        .jitter(Jitter::Full)
        .seed(async_patterns_tokio::entropy_seed())
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(20), timer))
        .layer(RetryLayer::http(policy, timer))
        .layer(BreakerLayer::new(breaker.clone()).classify(ServerErrorsFail))
        .layer(DeadlineLayer::new(Duration::from_secs(10), timer))
        .service(hyper.clone());
    let get = |path: &str| {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    // Plain success.
    let resp = client.clone().oneshot(get("/ok")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );

    // Two 503s with Retry-After, then a success: three attempts, one result.
    // (Spawned: the whole client stack's future is Send + 'static.)
    let resp = tokio::spawn(client.clone().oneshot(get("/flaky")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(flaky_hits.load(Relaxed), 3);
    assert_eq!(breaker.state(), BreakerState::Closed, "2 < 5 failures");

    // Server-side shedding: one call holds the only slot; a second is
    // refused at once with 503 (the raw client, no retry, sees it).
    let blocked = tokio::spawn(hyper.clone().oneshot(get("/block")));
    entered.notified().await;
    let shed = hyper.clone().oneshot(get("/ok")).await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
    release.notify_one();
    let resp = blocked.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "released"
    );

    // The slot is back, and the adaptive limit is not holding any.
    let resp = client.clone().oneshot(get("/ok")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(limit.in_flight(), 0);
    server.abort();
}
