//! The circuit breaker and the adaptive load shed: refusals are typed and
//! immediate, outcomes are classified, drops abandon, our own refusals
//! are never failures, and no clone over-admits or spins.

use std::sync::Arc;
use std::time::Duration;

use async_patterns::{
    AdaptiveConfig, AdaptiveLimit, BreakerConfig, BreakerState, CircuitBreaker, Clock, ManualClock,
    Refused,
};
use async_patterns_tower::{
    BoxError, BreakerLayer, ConcurrencyLimitLayer, Error, LoadShedLayer, ServerErrorsFail,
};
use proptest::prelude::*;
use tokio_test::{assert_pending, assert_ready, assert_ready_ok};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

/// Every async test runs under this: with paused time, a lost wake-up
/// leaves only this timer, which tokio then fires at once, so the test
/// fails in milliseconds with a message instead of hanging.
async fn hang_guard<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(600), test)
        .await
        .expect("hang guard: the test stopped making progress (a lost wake-up?)");
}

fn breaker(k: u32, probes: u32) -> (Arc<CircuitBreaker<ManualClock>>, ManualClock) {
    let clock = ManualClock::new();
    let config = BreakerConfig::builder()
        .consecutive_failures(k)
        .open_for(Duration::from_secs(10))
        .half_open_probes(probes)
        .build()
        .unwrap();
    (Arc::new(CircuitBreaker::new(config, clock.clone())), clock)
}

#[tokio::test(start_paused = true)]
async fn open_breaker_refuses_without_calling_inner() {
    hang_guard(open_breaker_refuses_without_calling_inner_body()).await
}

async fn open_breaker_refuses_without_calling_inner_body() {
    let (b, clock) = breaker(1, 1);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(BreakerLayer::new(b.clone()));
    assert_ready_ok!(svc.poll_ready());
    let fut = svc.call(1);
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error(std::io::Error::other("down"));
    assert!(matches!(fut.await, Err(Error::Inner(_))));
    assert_ready_ok!(svc.poll_ready());
    let refused = svc.call(2).await.unwrap_err();
    let until = clock.now() + Duration::from_secs(10);
    assert!(
        matches!(refused, Error::Refused(Refused::Open(t)) if t == until),
        "{refused:?}"
    );
    handle.allow(0);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), handle.next_request())
            .await
            .is_err(),
        "the refused call never reached the inner service"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_probe_frees_its_slot() {
    hang_guard(dropped_probe_frees_its_slot_body()).await
}

async fn dropped_probe_frees_its_slot_body() {
    let (b, clock) = breaker(1, 1);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(BreakerLayer::new(b.clone()));
    assert_ready_ok!(svc.poll_ready());
    let fut = svc.call(1);
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_error(std::io::Error::other("x"));
    let _ = fut.await;
    clock.advance(Duration::from_secs(10));
    assert_ready_ok!(svc.poll_ready());
    let probe = svc.call(2); // the one probe slot
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen { in_flight: 1, .. }
    ));
    assert_ready_ok!(svc.poll_ready());
    assert!(matches!(
        svc.call(3).await,
        Err(Error::Refused(Refused::ProbesBusy))
    ));
    drop(probe); // cancelled: abandons, frees the slot
    assert!(matches!(
        b.state(),
        BreakerState::HalfOpen { in_flight: 0, .. }
    ));
    assert_ready_ok!(svc.poll_ready());
    let probe = svc.call(4);
    let (req, _) = handle.next_request().await.unwrap();
    assert_eq!(req, 2, "the cancelled probe had reached the mock");
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 4);
    send.send_response(4);
    assert_eq!(probe.await.unwrap(), 4);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn classifier_decides_what_fails() {
    hang_guard(classifier_decides_what_fails_body()).await
}

async fn classifier_decides_what_fails_body() {
    let (b, _clock) = breaker(2, 1);
    let layer = BreakerLayer::new(b.clone()).classify(ServerErrorsFail);
    let (mut svc, mut handle) = mock::spawn_layer::<(), http::Response<()>, _>(layer);
    for status in [500, 503] {
        assert_ready_ok!(svc.poll_ready());
        let fut = svc.call(());
        let mut resp = http::Response::new(());
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
        handle.next_request().await.unwrap().1.send_response(resp);
        assert!(fut.await.is_ok(), "a 5xx is still a response to the caller");
    }
    assert!(
        matches!(b.state(), BreakerState::Open { .. }),
        "two 5xx opened it"
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_from_inner_layers_are_not_breaker_failures() {
    hang_guard(refusals_from_inner_layers_are_not_breaker_failures_body()).await
}

async fn refusals_from_inner_layers_are_not_breaker_failures_body() {
    // breaker around a rejecting concurrency limit of 1: the shed calls
    // must not trip a breaker that opens on one failure.
    let (b, _clock) = breaker(1, 1);
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let mut svc = ServiceBuilder::new()
        .layer(BreakerLayer::new(b.clone()))
        .layer(ConcurrencyLimitLayer::new(1).unwrap().reject_when_full())
        .service(inner);
    let mut other = svc.clone();
    svc.ready().await.unwrap();
    let held = svc.call(1);
    for _ in 0..3 {
        other.ready().await.unwrap();
        assert!(matches!(other.call(2).await, Err(Error::Overloaded(_))));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    handle.next_request().await.unwrap().1.send_response(1);
    assert_eq!(held.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn refusal_survives_boxing_and_downcasts() {
    hang_guard(refusal_survives_boxing_and_downcasts_body()).await
}

async fn refusal_survives_boxing_and_downcasts_body() {
    let (b, _clock) = breaker(1, 1);
    let failing = tower::service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("x")) });
    // Our breaker under tower's own BoxError mapping, under our breaker
    // again: the refusal comes out as the same variant.
    let svc = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker(5, 1).0))
        .map_err(|e: Error| -> BoxError { e.into() })
        .layer(BreakerLayer::new(b))
        .service(failing);
    let _ = svc.clone().oneshot(()).await;
    let err = svc.oneshot(()).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refused::Open(_))), "{err:?}");
    let boxed: BoxError = err.into();
    assert!(matches!(
        boxed.downcast_ref::<Error>(),
        Some(Error::Refused(_))
    ));
}

fn limit(initial: u32) -> Arc<AdaptiveLimit<ManualClock>> {
    let config = AdaptiveConfig::builder()
        .limits(1, initial, 100)
        .build()
        .unwrap();
    Arc::new(AdaptiveLimit::new(config, ManualClock::new()))
}

#[tokio::test(start_paused = true)]
async fn sheds_at_the_limit_without_calling_inner_or_pending() {
    hang_guard(sheds_at_the_limit_without_calling_inner_or_pending_body()).await
}

async fn sheds_at_the_limit_without_calling_inner_or_pending_body() {
    let l = limit(1);
    let (mut a, mut handle) = mock::spawn_layer::<u32, u32, _>(LoadShedLayer::new(l.clone()));
    let mut b = a.clone();
    assert_ready_ok!(a.poll_ready());
    assert_eq!(l.in_flight(), 1, "readiness counts the call in flight");
    // The clone is refused at readiness (counted, not compared), ready
    // at once (no Pending, no self-wake) and shed in call.
    assert_ready_ok!(b.poll_ready());
    assert!(!b.is_woken());
    assert!(matches!(b.call(2).await, Err(Error::Overloaded(o)) if o.limit == 1));
    let fut = a.call(1);
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 1, "only the admitted call reached the inner service");
    send.send_response(1);
    assert_eq!(fut.await.unwrap(), 1);
    assert_eq!(l.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn outcomes_move_the_limit_and_drops_do_not() {
    hang_guard(outcomes_move_the_limit_and_drops_do_not_body()).await
}

async fn outcomes_move_the_limit_and_drops_do_not_body() {
    let l = limit(2);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(LoadShedLayer::new(l.clone()));
    assert_ready_ok!(svc.poll_ready());
    let a = svc.call(1);
    assert_ready_ok!(svc.poll_ready());
    let b = svc.call(2);
    let (_, sa) = handle.next_request().await.unwrap();
    let (_, _sb) = handle.next_request().await.unwrap();
    sa.send_response(1);
    a.await.unwrap();
    assert_eq!(l.limit(), 3, "a success at full use grows the limit");
    drop(b);
    assert_eq!((l.limit(), l.in_flight()), (3, 0), "a drop moves nothing");
    assert_ready_ok!(svc.poll_ready());
    let c = svc.call(3);
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_error(std::io::Error::other("x"));
    assert!(c.await.is_err());
    assert_eq!(l.limit(), 1, "a failure backs off");
}

#[tokio::test(start_paused = true)]
async fn shed_waits_for_inner_readiness_holding_its_slot() {
    hang_guard(shed_waits_for_inner_readiness_holding_its_slot_body()).await
}

async fn shed_waits_for_inner_readiness_holding_its_slot_body() {
    let l = limit(1);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(LoadShedLayer::new(l.clone()));
    handle.allow(0);
    assert_pending!(svc.poll_ready());
    assert_eq!(l.in_flight(), 1);
    handle.allow(1);
    assert_ready!(svc.poll_ready()).unwrap();
    drop(svc);
    assert_eq!(l.in_flight(), 0, "a dropped service frees its slot");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random ready / call / finish / drop / clone sequences over shed
    /// clones, against a counting model: the limit's in-flight count always
    /// equals the admitted services plus admitted unfinished calls (no
    /// over-admission across clones, nothing lost), every admission is
    /// within the limit in force, a shed call never reaches the inner
    /// service, `poll_ready` is never Pending, and dropping everything
    /// leaves nothing in flight.
    #[test]
    fn shed_clones_never_exceed_the_limit_nor_leak(
        ops in proptest::collection::vec((0u8..5, 0usize..8), 1..80),
    ) {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        use std::task::Poll;
        let l = limit(3);
        let reached = Arc::new(AtomicUsize::new(0));
        let r = reached.clone();
        let inner = tower::service_fn(move |ok: bool| {
            r.fetch_add(1, Relaxed);
            std::future::ready(if ok { Ok::<(), BoxError>(()) } else { Err("x".into()) })
        });
        let layer = LoadShedLayer::new(l.clone());
        // (service, ready, admitted)
        let mut services = vec![(layer.layer(inner), false, false)];
        let mut pending: Vec<(std::pin::Pin<Box<_>>, bool)> = Vec::new();
        let mut admitted_calls = 0usize;
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        for (kind, i) in ops {
            let n = services.len();
            let (svc, ready, admitted) = &mut services[i % n];
            match kind {
                0 if !*ready => {
                    let (before, limit) = (l.in_flight(), l.limit());
                    prop_assert!(svc.poll_ready(&mut cx).is_ready(), "never Pending");
                    *ready = true;
                    *admitted = l.in_flight() == before + 1;
                    prop_assert_eq!(*admitted, before < limit, "admitted iff under the limit");
                }
                1 if *ready => {
                    *ready = false;
                    let fut = Box::pin(svc.call(i % 2 == 0));
                    admitted_calls += usize::from(*admitted);
                    pending.push((fut, std::mem::take(admitted)));
                }
                2 if !pending.is_empty() => {
                    let (mut fut, was_admitted) = pending.swap_remove(i % pending.len());
                    match fut.as_mut().poll(&mut cx) {
                        Poll::Ready(Err(Error::Overloaded(_))) => prop_assert!(!was_admitted),
                        Poll::Ready(_) => prop_assert!(was_admitted),
                        Poll::Pending => prop_assert!(false, "the inner service is ready"),
                    }
                }
                3 if !pending.is_empty() => { pending.swap_remove(i % pending.len()); }
                4 => { let c = svc.clone(); services.push((c, false, false)); }
                _ => {}
            }
            let model = services.iter().filter(|s| s.2).count()
                + pending.iter().filter(|p| p.1).count();
            prop_assert_eq!(l.in_flight() as usize, model);
            prop_assert_eq!(reached.load(Relaxed), admitted_calls, "only admitted calls reach the inner service");
        }
        drop(pending);
        drop(services);
        prop_assert_eq!(l.in_flight(), 0, "nothing leaked");
    }
}
