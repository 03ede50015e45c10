//! Timeouts, deadlines and rate limits, under tokio's paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use async_patterns::{Clock, Deadline, Quota};
use async_patterns_tokio::TokioTimer;
use async_patterns_tower::{
    DeadlineLayer, Error, KeyedRateLimitLayer, RateLimitLayer, TimeoutLayer,
};
use tokio_test::{assert_pending, assert_ready_ok};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

/// Every async test runs under this: with paused time, a lost wake-up
/// leaves only this timer, which tokio then fires at once, so the test
/// fails in milliseconds with a message instead of hanging.
async fn hang_guard<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(600), test)
        .await
        .expect("hang guard: the test stopped making progress (a lost wake-up?)");
}

struct Alive(Arc<AtomicBool>);
impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_elapses_exactly_and_drops_the_inner_future() {
    hang_guard(timeout_elapses_exactly_and_drops_the_inner_future_body()).await
}

async fn timeout_elapses_exactly_and_drops_the_inner_future_body() {
    let timer = TokioTimer::new();
    let alive = Arc::new(AtomicBool::new(true));
    let a = alive.clone();
    let mut svc = TimeoutLayer::new(Duration::from_millis(300), timer).layer_fn(move |()| {
        let guard = Alive(a.clone());
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), std::io::Error>(())
        }
    });
    let mut fut = tokio_test::task::spawn(svc.call(()));
    assert_pending!(fut.poll());
    tokio::time::advance(Duration::from_millis(299)).await;
    assert_pending!(fut.poll());
    tokio::time::advance(Duration::from_millis(1)).await;
    let err = match fut.poll() {
        std::task::Poll::Ready(r) => r.unwrap_err(),
        std::task::Poll::Pending => panic!("still pending at the deadline"),
    };
    assert!(matches!(err, Error::Elapsed(_)), "{err:?}");
    drop(fut);
    assert!(
        !alive.load(Relaxed),
        "the inner future is dropped with the response future"
    );
}

trait LayerFn {
    fn layer_fn<F>(self, f: F) -> <Self as tower::Layer<tower::util::ServiceFn<F>>>::Service
    where
        Self: tower::Layer<tower::util::ServiceFn<F>> + Sized,
    {
        self.layer(tower::service_fn(f))
    }
}
impl<T> LayerFn for T {}

#[tokio::test(start_paused = true)]
async fn a_shorter_own_timeout_tightens_the_carried_deadline() {
    hang_guard(a_shorter_own_timeout_tightens_the_carried_deadline_body()).await
}

async fn a_shorter_own_timeout_tightens_the_carried_deadline_body() {
    let timer = TokioTimer::new();
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(2), timer))
        .layer(DeadlineLayer::new(Duration::from_millis(500), timer))
        .service(tower::service_fn(|req: http::Request<()>| async move {
            Ok::<_, std::io::Error>(*req.extensions().get::<Deadline>().unwrap())
        }));
    let d = svc.oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(d.remaining(&timer), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn nested_deadline_gets_the_remaining_budget_not_a_fresh_timeout() {
    hang_guard(nested_deadline_gets_the_remaining_budget_not_a_fresh_timeout_body()).await
}

async fn nested_deadline_gets_the_remaining_budget_not_a_fresh_timeout_body() {
    let timer = TokioTimer::new();
    let mut req = http::Request::new(());
    req.extensions_mut()
        .insert(Deadline::after(&timer, Duration::from_millis(200)));
    tokio::time::advance(Duration::from_millis(150)).await;
    let svc = DeadlineLayer::new(Duration::from_secs(10), timer).layer_fn(
        |req: http::Request<()>| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>(req)
        },
    );
    let start = timer.now();
    let err = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(req))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, Error::Elapsed(_)));
    assert_eq!(
        timer.now().saturating_duration_since(start),
        Duration::from_millis(50),
        "50 ms were left"
    );
}

#[tokio::test(start_paused = true)]
async fn direct_waits_until_the_refusal_instant_exactly() {
    hang_guard(direct_waits_until_the_refusal_instant_exactly_body()).await
}

async fn direct_waits_until_the_refusal_instant_exactly_body() {
    let timer = TokioTimer::new();
    let layer = RateLimitLayer::new(Quota::per_second(2).unwrap(), timer);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(layer);
    for i in 0..2 {
        assert_ready_ok!(svc.poll_ready());
        drop(svc.call(i));
        let _ = handle.next_request().await.unwrap();
    }
    assert_pending!(svc.poll_ready());
    tokio::time::advance(Duration::from_millis(499)).await;
    assert!(!svc.is_woken());
    assert_pending!(svc.poll_ready());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(svc.is_woken(), "woken by the timer at the instant");
    assert_ready_ok!(svc.poll_ready());
}

#[tokio::test(start_paused = true)]
async fn keyed_refuses_in_call_with_the_instant_and_keys_are_independent() {
    hang_guard(keyed_refuses_in_call_with_the_instant_and_keys_are_independent_body()).await
}

async fn keyed_refuses_in_call_with_the_instant_and_keys_are_independent_body() {
    let timer = TokioTimer::new();
    let layer = KeyedRateLimitLayer::new(
        Quota::per_second(1).unwrap(),
        timer,
        // Room for both keys even if they share one of its 16 shards.
        1_024.try_into().unwrap(),
        |req: &(u8, u32)| req.0,
    );
    let (mut svc, mut handle) = mock::spawn_layer::<(u8, u32), u32, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let _a = svc.call((1, 1));
    assert_ready_ok!(svc.poll_ready());
    let err = tokio::time::timeout(Duration::from_secs(5), svc.call((1, 2)))
        .await
        .expect("immediate")
        .unwrap_err();
    match err {
        Error::RateLimited(n) => assert_eq!(n.wait_time_from(timer.now()), Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert_ready_ok!(svc.poll_ready());
    let _b = svc.call((2, 3));
    assert_eq!(handle.next_request().await.unwrap().0, (1, 1));
    assert_eq!(
        handle.next_request().await.unwrap().0,
        (2, 3),
        "key 2 unaffected; the refused call never reached the inner service"
    );
}
