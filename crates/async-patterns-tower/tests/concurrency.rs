//! The concurrency limit: readiness, backpressure, release on completion
//! and on drop, reject mode, and a model-checked property over clones.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use async_patterns::Semaphore;
use async_patterns_tower::{BoxError, ConcurrencyLimitLayer, Error};
use futures::channel::oneshot;
use proptest::prelude::*;
use tokio_test::{assert_pending, assert_ready, assert_ready_ok};
use tower::Service;
use tower_test::mock;

/// Every async test runs under this: with paused time, a lost wake-up
/// leaves only this timer, which tokio then fires at once, so the test
/// fails in milliseconds with a message instead of hanging.
async fn hang_guard<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(600), test)
        .await
        .expect("hang guard: the test stopped making progress (a lost wake-up?)");
}

fn layer(n: usize) -> (ConcurrencyLimitLayer, Arc<Semaphore>) {
    let sem = Arc::new(Semaphore::new(n).unwrap());
    (ConcurrencyLimitLayer::with_semaphore(sem.clone()), sem)
}

#[tokio::test(start_paused = true)]
async fn readiness_waits_for_a_permit_and_wakes_when_one_returns() {
    hang_guard(readiness_waits_for_a_permit_and_wakes_when_one_returns_body()).await
}

async fn readiness_waits_for_a_permit_and_wakes_when_one_returns_body() {
    let (layer, sem) = layer(1);
    let (mut a, mut handle) = mock::spawn_layer::<u32, u32, _>(layer);
    let mut b = a.clone();
    assert_ready_ok!(a.poll_ready());
    assert_eq!(sem.available_permits(), 0, "ready means a permit is held");
    assert_pending!(b.poll_ready());
    let fut = a.call(1);
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 1);
    assert!(!b.is_woken());
    send.send_response(10);
    assert_eq!(fut.await.unwrap(), 10);
    assert!(
        b.is_woken(),
        "the waiting clone is woken when the permit returns"
    );
    assert_ready_ok!(b.poll_ready());
}

#[tokio::test(start_paused = true)]
async fn permit_is_released_when_the_response_completes() {
    hang_guard(permit_is_released_when_the_response_completes_body()).await
}

async fn permit_is_released_when_the_response_completes_body() {
    let (layer, sem) = layer(1);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let mut fut = tokio_test::task::spawn(svc.call(1));
    let (_, send) = handle.next_request().await.unwrap();
    assert_pending!(fut.poll());
    assert_eq!(sem.available_permits(), 0);
    send.send_response(1);
    assert_ready!(fut.poll()).unwrap();
    // The finished future is still alive, but its slot is free.
    assert_eq!(sem.available_permits(), 1);
    drop(fut);
}

#[tokio::test(start_paused = true)]
async fn dropped_response_future_returns_its_permit() {
    hang_guard(dropped_response_future_returns_its_permit_body()).await
}

async fn dropped_response_future_returns_its_permit_body() {
    let (layer, sem) = layer(1);
    let (mut svc, _handle) = mock::spawn_layer::<u32, u32, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let fut = svc.call(1);
    assert_eq!(sem.available_permits(), 0);
    drop(fut);
    assert_eq!(sem.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropped_service_returns_its_reserved_permit() {
    hang_guard(dropped_service_returns_its_reserved_permit_body()).await
}

async fn dropped_service_returns_its_reserved_permit_body() {
    let (layer, sem) = layer(1);
    let (mut a, _handle) = mock::spawn_layer::<u32, u32, _>(layer);
    let mut b = a.clone();
    assert_ready_ok!(a.poll_ready());
    assert_pending!(b.poll_ready());
    drop(a);
    assert_ready_ok!(b.poll_ready());
    drop(b);
    assert_eq!(sem.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn readiness_does_not_transfer_to_clones() {
    hang_guard(readiness_does_not_transfer_to_clones_body()).await
}

async fn readiness_does_not_transfer_to_clones_body() {
    let (layer, sem) = layer(2);
    let (mut a, _handle) = mock::spawn_layer::<u32, u32, _>(layer);
    assert_ready_ok!(a.poll_ready());
    let b = a.clone();
    assert_eq!(sem.available_permits(), 1, "the clone holds nothing");
    drop(b);
    assert_eq!(sem.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn reject_mode_sheds_with_overloaded_at_once() {
    hang_guard(reject_mode_sheds_with_overloaded_at_once_body()).await
}

async fn reject_mode_sheds_with_overloaded_at_once_body() {
    let (layer, _sem) = layer(1);
    let (mut a, mut handle) = mock::spawn_layer::<u32, u32, _>(layer.reject_when_full());
    let mut b = a.clone();
    assert_ready_ok!(a.poll_ready());
    let _held = a.call(1);
    assert_ready_ok!(b.poll_ready());
    let err = tokio::time::timeout(Duration::from_secs(5), b.call(2))
        .await
        .expect("a rejection is immediate")
        .unwrap_err();
    assert!(
        matches!(err, Error::Overloaded(o) if o.limit == 1),
        "{err:?}"
    );
    let (req, _) = handle.next_request().await.unwrap();
    assert_eq!(req, 1, "the shed call never reached the inner service");
}

#[tokio::test(start_paused = true)]
async fn closed_semaphore_is_a_never_error() {
    hang_guard(closed_semaphore_is_a_never_error_body()).await
}

async fn closed_semaphore_is_a_never_error_body() {
    let (layer, sem) = layer(1);
    let (mut svc, _handle) = mock::spawn_layer::<u32, u32, _>(layer);
    sem.close();
    let err = assert_ready!(svc.poll_ready()).unwrap_err();
    assert!(matches!(err, Error::Acquire(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn inner_errors_keep_their_type() {
    hang_guard(inner_errors_keep_their_type_body()).await
}

async fn inner_errors_keep_their_type_body() {
    let (layer, _sem) = layer(1);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(layer);
    assert_ready_ok!(svc.poll_ready());
    let fut = svc.call(1);
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error(std::io::Error::other("boom"));
    match fut.await.unwrap_err() {
        Error::Inner(e) => assert!(e.downcast_ref::<std::io::Error>().is_some()),
        other => panic!("{other:?}"),
    }
}

// ---- property: clones never exceed the limit nor leak permits ----

#[derive(Debug, Clone)]
enum Op {
    PollReady(usize),
    Call(usize),
    Complete(usize),
    DropResponse(usize),
    Clone(usize),
    DropService(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..8usize).prop_map(Op::PollReady),
        3 => (0..8usize).prop_map(Op::Call),
        2 => (0..8usize).prop_map(Op::Complete),
        1 => (0..8usize).prop_map(Op::DropResponse),
        1 => (0..8usize).prop_map(Op::Clone),
        1 => (0..8usize).prop_map(Op::DropService),
    ]
}

/// Where a service stands, in the model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    Empty,
    Queued,
    /// Handed a permit while queued; it learns on its next poll.
    Granted,
    Held,
}

type Inner = tower::util::BoxCloneService<(), (), BoxError>;
type Svc = async_patterns_tower::ConcurrencyLimit<Inner>;
type Fut = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

fn inner() -> (Inner, Arc<std::sync::Mutex<Vec<oneshot::Sender<()>>>>) {
    let senders = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = senders.clone();
    let svc = tower::service_fn(move |()| {
        let (tx, rx) = oneshot::channel::<()>();
        s.lock().unwrap().push(tx);
        async move {
            let _ = rx.await;
            Ok::<(), BoxError>(())
        }
    });
    (tower::util::BoxCloneService::new(svc), senders)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random poll_ready / call / complete / drop / clone sequences over
    /// several clones of one limited service: every readiness and every
    /// free-permit count equals a plain FIFO counting model's, in-flight
    /// calls never exceed the limit, and dropping everything returns
    /// every permit.
    #[test]
    fn clones_never_exceed_the_limit_nor_leak_permits(
        limit in 1usize..4,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let sem = Arc::new(Semaphore::new(limit).unwrap());
        let (inner, senders) = inner();
        let layer = ConcurrencyLimitLayer::with_semaphore(sem.clone());
        let mut services: Vec<Option<(Svc, Model)>> =
            vec![Some((tower::Layer::layer(&layer, inner), Model::Empty))];
        let mut calls: Vec<(Fut, oneshot::Sender<()>)> = Vec::new();
        let (mut free, mut queue) = (limit, std::collections::VecDeque::<usize>::new());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // A permit comes back: to the head of the queue, or to the pool.
        fn release(
            free: &mut usize,
            queue: &mut std::collections::VecDeque<usize>,
            services: &mut [Option<(Svc, Model)>],
        ) {
            match queue.pop_front() {
                Some(i) => services[i].as_mut().unwrap().1 = Model::Granted,
                None => *free += 1,
            }
        }
        for op in ops {
            let n = services.len();
            match op {
                Op::PollReady(i) => {
                    let Some((svc, state)) = services[i % n].as_mut() else { continue };
                    let poll = svc.poll_ready(&mut cx);
                    let expect_ready = match *state {
                        Model::Held | Model::Granted => true,
                        Model::Empty if free > 0 && queue.is_empty() => { free -= 1; true }
                        Model::Empty => { queue.push_back(i % n); *state = Model::Queued; false }
                        Model::Queued => false,
                    };
                    if expect_ready { *state = Model::Held; }
                    prop_assert_eq!(poll.is_ready(), expect_ready, "poll_ready of service {}", i % n);
                }
                Op::Call(i) => {
                    let Some((svc, state)) = services[i % n].as_mut() else { continue };
                    if *state != Model::Held { continue }
                    let mut fut: Fut = Box::pin(svc.call(()));
                    *state = Model::Empty;
                    prop_assert!(fut.as_mut().poll(&mut cx).is_pending());
                    let tx = senders.lock().unwrap().pop().unwrap();
                    calls.push((fut, tx));
                }
                Op::Complete(k) | Op::DropResponse(k) if !calls.is_empty() => {
                    let (mut fut, tx) = calls.swap_remove(k % calls.len());
                    if matches!(op, Op::Complete(_)) {
                        tx.send(()).unwrap();
                        prop_assert!(fut.as_mut().poll(&mut cx).is_ready());
                        // Released at completion: the future is still alive here.
                        release(&mut free, &mut queue, &mut services);
                        prop_assert_eq!(sem.available_permits(), free);
                    } else {
                        release(&mut free, &mut queue, &mut services);
                    }
                    drop(fut);
                }
                Op::Complete(_) | Op::DropResponse(_) => {}
                Op::Clone(i) => {
                    let Some((svc, _)) = services[i % n].as_ref() else { continue };
                    let clone = svc.clone();
                    services.push(Some((clone, Model::Empty)));
                }
                Op::DropService(i) => {
                    let Some((svc, state)) = services[i % n].take() else { continue };
                    drop(svc);
                    match state {
                        Model::Held | Model::Granted => release(&mut free, &mut queue, &mut services),
                        Model::Queued => queue.retain(|&q| q != i % n),
                        Model::Empty => {}
                    }
                }
            }
            let held = services.iter().flatten()
                .filter(|(_, s)| matches!(s, Model::Held | Model::Granted)).count();
            prop_assert!(calls.len() + held <= limit, "{} calls + {} held > {}", calls.len(), held, limit);
            prop_assert_eq!(sem.available_permits(), free);
        }
        drop(calls);
        drop(services);
        prop_assert_eq!(sem.available_permits(), limit, "every permit came back");
    }
}

#[tokio::test(start_paused = true)]
async fn reject_mode_polls_again_once_a_permit_returns() {
    hang_guard(async {
        let (layer, sem) = layer(1);
        let (mut a, _handle) = mock::spawn_layer::<u32, u32, _>(layer.reject_when_full());
        let mut b = a.clone();
        assert_ready_ok!(a.poll_ready());
        assert_ready_ok!(b.poll_ready()); // shed decided
        drop(a); // its reserved permit comes back
        assert_ready_ok!(b.poll_ready()); // decided again: admitted
        assert_eq!(sem.available_permits(), 0, "b holds the permit now");
        let fut = b.call(1);
        drop(fut);
        assert_eq!(sem.available_permits(), 1);
    })
    .await
}
