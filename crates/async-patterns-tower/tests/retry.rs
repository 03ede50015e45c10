//! The retry layer: the core Retrier's decisions, Retry-After, clones only
//! when a retry may follow, deadlines.

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_patterns::{
    AcquireError, Clock, Deadline, Instant, Jitter, ManualClock, Refused, Retrier, RetryBudget,
    RetryPolicy, Timer,
};
use async_patterns_tokio::TokioTimer;
use async_patterns_tower::{BoxError, DeadlineLayer, Error, RetryLayer};
use proptest::prelude::*;
use tower::{Layer, ServiceBuilder, ServiceExt};

/// Every async test runs under this: with paused time, a lost wake-up
/// leaves only this timer, which tokio then fires at once, so the test
/// fails in milliseconds with a message instead of hanging.
async fn hang_guard<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(600), test)
        .await
        .expect("hang guard: the test stopped making progress (a lost wake-up?)");
}

/// One scripted attempt: its latency and how it ends.
#[derive(Debug, Clone, Copy)]
enum End {
    Ok,
    /// An inner error: retry after the policy's delay.
    Fail,
    /// A "never" error: stop.
    Stop,
    /// An open breaker: not before `ms` from now.
    OpenFor(u64),
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        2 => Just(End::Ok),
        5 => Just(End::Fail),
        1 => Just(End::Stop),
        2 => (0u64..3_000).prop_map(End::OpenFor),
    ]
}

/// The scripted attempt `i` on `clock`, recording when it started.
fn attempt(
    clock: &ManualClock,
    script: &[(u64, End)],
    starts: &Mutex<Vec<Instant>>,
) -> impl Future<Output = Result<usize, Error>> + Send + use<> {
    let i = {
        let mut s = starts.lock().unwrap();
        s.push(clock.now());
        s.len() - 1
    };
    let (latency, end) = script[i.min(script.len() - 1)];
    let clock = clock.clone();
    async move {
        clock.sleep(Duration::from_millis(latency)).await;
        match end {
            End::Ok => Ok(i),
            End::Fail => Err(Error::Inner(format!("attempt {i}").into())),
            End::Stop => Err(Error::Acquire(AcquireError::Closed)),
            End::OpenFor(ms) => Err(Error::Refused(Refused::Open(
                clock.now() + Duration::from_millis(ms),
            ))),
        }
    }
}

/// Runs `fut` to completion, advancing `clock` to each next sleep: a
/// future that is pending with no sleep registered would hang, so that
/// fails at once.
fn drive<F: Future>(clock: &ManualClock, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..10_000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        let next = clock
            .next_deadline()
            .expect("pending with no sleep: a lost wake-up");
        clock.advance_to(next);
    }
    panic!("did not finish in 10,000 steps");
}

fn tag(r: &Result<usize, Error>) -> String {
    match r {
        Ok(i) => format!("ok {i}"),
        Err(e) => format!("err {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For random scripts of attempt outcomes and latencies, policies,
    /// elapsed limits and budgets, the layer starts its attempts at exactly
    /// the instants the core `Retrier` does and ends with the same result.
    #[test]
    fn layer_decides_as_the_core_retrier(
        script in proptest::collection::vec((0u64..500, end()), 1..7),
        max_attempts in 1u32..6,
        jitter in prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated)],
        seed in any::<u64>(),
        max_elapsed in proptest::option::of(1u64..5_000),
        budget in proptest::option::of((0u32..3, 1u32..3)),
    ) {
        let mut builder = RetryPolicy::builder()
            .max_attempts(max_attempts)
            .exponential(Duration::from_millis(100), 2.0, Duration::from_secs(2))
            .jitter(jitter)
            .seed(seed);
        if let Some(ms) = max_elapsed {
            builder = builder.max_elapsed(Duration::from_millis(ms));
        }
        let policy = builder.build().unwrap();
        let new_budget = || budget.map(|(tenths, floor)| {
            Arc::new(RetryBudget::new(f64::from(tenths) / 10.0, floor, Duration::from_secs(1)).unwrap())
        });

        // The core's Retrier.
        let clock = ManualClock::new();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut retrier = Retrier::new(policy.clone(), clock.clone());
        if let Some(b) = new_budget() { retrier = retrier.with_budget(b); }
        let expected = drive(&clock, retrier.run_classified(
            |_| attempt(&clock, &script, &starts),
            |e: &Error| e.retry_decision(),
        )).map_err(|e| e.error);
        let expected_starts = starts.lock().unwrap().clone();

        // The layer, on a fresh clock.
        let clock = ManualClock::new();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut layer = RetryLayer::new(policy, clock.clone());
        if let Some(ms) = max_elapsed { layer = layer.max_elapsed(Duration::from_millis(ms)); }
        if let Some(b) = new_budget() { layer = layer.budget(b); }
        let (c, s, sc) = (clock.clone(), starts.clone(), script.clone());
        let svc = layer.layer(tower::service_fn(move |()| attempt(&c, &sc, &s)));
        let got = drive(&clock, svc.oneshot(()));
        let got_starts = starts.lock().unwrap().clone();

        prop_assert_eq!(&got_starts, &expected_starts, "attempt start instants");
        prop_assert_eq!(tag(&got), tag(&expected));
    }
}

#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Relaxed);
        Counted(self.0.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn request_is_cloned_only_when_a_retry_may_follow() {
    hang_guard(request_is_cloned_only_when_a_retry_may_follow_body()).await
}

async fn request_is_cloned_only_when_a_retry_may_follow_body() {
    for (attempts, failures, clones) in [(1, 5, 0), (3, 0, 1), (3, 1, 2), (3, 5, 2)] {
        let policy = RetryPolicy::builder()
            .max_attempts(attempts)
            .constant(Duration::ZERO)
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let svc = RetryLayer::new(policy, TokioTimer::new()).layer(tower::service_fn(
            move |_: Counted| {
                let n = c.fetch_add(1, Relaxed);
                std::future::ready(if n < failures {
                    Err::<(), BoxError>("x".into())
                } else {
                    Ok(())
                })
            },
        ));
        let count = Arc::new(AtomicUsize::new(0));
        let _ = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(Counted(count.clone())))
            .await
            .unwrap();
        assert_eq!(
            count.load(Relaxed),
            clones,
            "{attempts} attempts, {failures} failures"
        );
    }
}

fn http_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .exponential(Duration::from_millis(10), 2.0, Duration::from_millis(100))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_after_header_is_the_minimum_delay() {
    hang_guard(retry_after_header_is_the_minimum_delay_body()).await
}

async fn retry_after_header_is_the_minimum_delay_body() {
    let timer = TokioTimer::new();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let svc = RetryLayer::http(http_policy(), timer).layer(tower::service_fn(
        move |_: http::Request<String>| {
            let mut s = s.lock().unwrap();
            s.push(timer.now());
            let mut resp = http::Response::new(());
            if s.len() == 1 {
                *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, "5".parse().unwrap());
            }
            std::future::ready(Ok::<_, BoxError>(resp))
        },
    ));
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        svc.oneshot(http::Request::new("body".to_owned())),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(resp.status(), 200);
    let s = starts.lock().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[1].saturating_duration_since(s[0]),
        Duration::from_secs(5),
        "Retry-After 5 beats the policy's 10 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn carried_deadline_stops_retries_and_nested_calls_get_the_remaining_budget() {
    hang_guard(carried_deadline_stops_retries_and_nested_calls_get_the_remaining_budget_body())
        .await
}

async fn carried_deadline_stops_retries_and_nested_calls_get_the_remaining_budget_body() {
    let timer = TokioTimer::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_millis(250), timer))
        .layer(RetryLayer::http(http_policy(), timer))
        .layer(DeadlineLayer::new(Duration::from_secs(10), timer))
        .service(tower::service_fn(move |req: http::Request<()>| {
            let d = *req.extensions().get::<Deadline>().unwrap();
            s.lock().unwrap().push(d.remaining(&timer));
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err::<http::Response<()>, BoxError>("down".into())
            }
        }));
    let err = tokio::time::timeout(Duration::from_secs(60), svc.oneshot(http::Request::new(())))
        .await
        .expect("no hang")
        .unwrap_err();
    // Attempts at 0 ms, 110 ms (100 ms each + backoff 10, 20 ms) and
    // 230 ms: each inner call is handed what is left of the 250 ms, not
    // a fresh 10 s. The third is cut at 250 ms, and no retry follows.
    assert!(
        matches!(err, Error::Elapsed(e) if e.deadline.instant().as_duration() == Duration::from_millis(250)),
        "{err:?}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [250, 140, 20].map(Duration::from_millis)
    );
}

/// The policy's own `max_elapsed` bounds the layer: with 100 ms between
/// attempts and 250 ms in all, attempts start at 0, 100 and 200 ms, and the
/// one due at 300 ms is not made.
#[tokio::test(start_paused = true)]
async fn the_policys_max_elapsed_bounds_the_layer() {
    hang_guard(async {
        let timer = TokioTimer::new();
        let policy = RetryPolicy::builder()
            .max_attempts(10)
            .constant(Duration::from_millis(100))
            .jitter(Jitter::None)
            .max_elapsed(Duration::from_millis(250))
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let svc = RetryLayer::new(policy, timer).layer(tower::service_fn(move |_: ()| {
            counted.fetch_add(1, Relaxed);
            async { Err::<(), BoxError>("down".into()) }
        }));
        let started = tokio::time::Instant::now();
        assert!(svc.oneshot(()).await.is_err());
        assert_eq!(calls.load(Relaxed), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    })
    .await
}

/// A card charged three times: `RetryLayer::http` retried a POST after a
/// timeout. A timeout may come after the server took the request, so a
/// POST is retried only with an Idempotency-Key or the caller's say-so; an
/// idempotent method is retried as before. (Seen failing before the rule:
/// 3 charges.)
#[tokio::test(start_paused = true)]
async fn a_post_is_retried_after_a_timeout_only_when_it_is_safe_to_repeat() {
    hang_guard(a_post_is_retried_after_a_timeout_only_when_it_is_safe_to_repeat_body()).await
}

async fn a_post_is_retried_after_a_timeout_only_when_it_is_safe_to_repeat_body() {
    use async_patterns_tower::{IDEMPOTENCY_KEY, Idempotent, TimeoutLayer};
    let timer = TokioTimer::new();
    let charges = Arc::new(AtomicU32::new(0));
    let c = charges.clone();
    // The upstream takes every request and never answers in time.
    let svc = tower::ServiceBuilder::new()
        .layer(RetryLayer::http(http_policy(), timer))
        .layer(TimeoutLayer::new(Duration::from_millis(100), timer))
        .service(tower::service_fn(move |_: http::Request<String>| {
            c.fetch_add(1, Ordering::Relaxed);
            std::future::pending::<Result<http::Response<()>, BoxError>>()
        }));
    let send = |req: http::Request<String>| {
        let svc = svc.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(60), svc.oneshot(req))
                .await
                .expect("no hang")
        }
    };
    let post = || {
        http::Request::post("/charges")
            .body("card".to_owned())
            .unwrap()
    };
    assert!(matches!(send(post()).await, Err(Error::Elapsed(_))));
    assert_eq!(
        charges.swap(0, Ordering::Relaxed),
        1,
        "a plain POST: charged once"
    );
    let mut keyed = post();
    keyed
        .headers_mut()
        .insert(IDEMPOTENCY_KEY, "charge-7".parse().unwrap());
    let _ = send(keyed).await;
    assert_eq!(
        charges.swap(0, Ordering::Relaxed),
        3,
        "with an Idempotency-Key"
    );
    let mut marked = post();
    marked.extensions_mut().insert(Idempotent);
    let _ = send(marked).await;
    assert_eq!(
        charges.swap(0, Ordering::Relaxed),
        3,
        "with the caller's say-so"
    );
    for method in [http::Method::GET, http::Method::PUT, http::Method::DELETE] {
        let mut req = post();
        *req.method_mut() = method.clone();
        let _ = send(req).await;
        assert_eq!(
            charges.swap(0, Ordering::Relaxed),
            3,
            "{method} is idempotent"
        );
    }
}

/// Which answers to a POST are retried: a 429 / 503 with Retry-After (the
/// server did not take it) and a refusal by our own layers (never sent)
/// are; a 502, a 504 and a 503 without Retry-After (it may have been
/// taken) are not.
#[tokio::test(start_paused = true)]
async fn a_post_is_retried_when_it_was_not_taken() {
    hang_guard(a_post_is_retried_when_it_was_not_taken_body()).await
}

async fn a_post_is_retried_when_it_was_not_taken_body() {
    use async_patterns::Overloaded;
    // The first answer, then 200s; how many calls a POST got.
    async fn calls(first: Result<(u16, Option<&'static str>), Error>) -> u32 {
        let timer = TokioTimer::new();
        let n = Arc::new(AtomicU32::new(0));
        let (c, first) = (n.clone(), Arc::new(Mutex::new(Some(first))));
        let svc = RetryLayer::http(http_policy(), timer).layer(tower::service_fn(
            move |_: http::Request<String>| {
                c.fetch_add(1, Ordering::Relaxed);
                let out = match first.lock().unwrap().take() {
                    Some(Err(e)) => Err(e),
                    Some(Ok((status, retry_after))) => {
                        let mut r = http::Response::new(());
                        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        if let Some(s) = retry_after {
                            r.headers_mut()
                                .insert(http::header::RETRY_AFTER, s.parse().unwrap());
                        }
                        Ok(r)
                    }
                    None => Ok(http::Response::new(())),
                };
                std::future::ready(out)
            },
        ));
        let req = http::Request::post("/orders").body(String::new()).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(60), svc.oneshot(req))
            .await
            .expect("no hang");
        n.load(Ordering::Relaxed)
    }
    assert_eq!(calls(Ok((503, Some("1")))).await, 2);
    assert_eq!(calls(Ok((429, Some("0")))).await, 2);
    assert_eq!(
        calls(Err(Error::Overloaded(Overloaded { limit: 4 }))).await,
        2
    );
    assert_eq!(calls(Ok((503, None))).await, 1);
    assert_eq!(calls(Ok((502, None))).await, 1);
    assert_eq!(calls(Ok((504, Some("1")))).await, 1);
    assert_eq!(calls(Err(Error::Inner("connection reset".into()))).await, 1);
}

/// The error responses a server stack gives (`respond`): statuses and a
/// Retry-After of whole seconds, rounded up, never 0.
#[test]
fn errors_become_the_http_answers_a_client_can_act_on() {
    use async_patterns::{
        AcquireError, Deadline, Elapsed, ManualClock, Overloaded, Quota, RateLimiter, Refused,
    };
    use async_patterns_tower::respond::error_response;
    let clock = ManualClock::new();
    let answer = |e: Error| {
        let r = error_response(&e, &clock);
        let retry_after = r
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), retry_after)
    };
    let limiter = RateLimiter::new(Quota::per_second(1).unwrap(), clock.clone());
    limiter.check().unwrap();
    let not_until = limiter.check().unwrap_err();
    clock.advance(Duration::from_millis(200)); // 0.8 s left: rounds up to 1
    assert_eq!(
        answer(Error::RateLimited(not_until)),
        (429, Some("1".into()))
    );
    let until = clock.now().saturating_add(Duration::from_millis(2_500));
    assert_eq!(
        answer(Error::Refused(Refused::Open(until))),
        (503, Some("3".into()))
    );
    assert_eq!(
        answer(Error::Refused(Refused::ProbesBusy)),
        (503, Some("1".into()))
    );
    assert_eq!(
        answer(Error::Overloaded(Overloaded { limit: 8 })),
        (503, Some("1".into()))
    );
    let elapsed = Elapsed {
        deadline: Deadline::at(clock.now()),
    };
    assert_eq!(answer(Error::Elapsed(elapsed)), (504, None));
    assert_eq!(answer(Error::Acquire(AcquireError::Closed)), (503, None));
    assert_eq!(answer(Error::Inner("boom".into())), (500, None));
    // Exactly two seconds is 2, not 3.
    let two = clock.now().saturating_add(Duration::from_secs(2));
    assert_eq!(
        answer(Error::Refused(Refused::Open(two))),
        (503, Some("2".into()))
    );
    // A refusal whose instant has passed still says 1, not 0.
    let past = clock.now();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        answer(Error::Refused(Refused::Open(past))),
        (503, Some("1".into()))
    );
}

/// Walking an inner error's chain names each cause once: our `Error` is
/// transparent (its Display is the inner error's, its source the inner
/// error's source), so `client error (Connect)` is not printed twice.
#[test]
fn an_inner_errors_chain_names_each_cause_once() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let cause = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connecting to server:8080: connection refused",
    );
    let e = Error::from_inner(Outer(cause));
    let mut chain = vec![e.to_string()];
    let mut next = std::error::Error::source(&e);
    while let Some(c) = next {
        chain.push(c.to_string());
        next = c.source();
    }
    assert_eq!(
        chain.join(": "),
        "client error (Connect): connecting to server:8080: connection refused"
    );
}

/// The default `may_have_applied` (any classifier that does not say): a
/// refusal by our own layers did not happen, anything else may have. Seen
/// through a request hook that says nothing may be repeated.
#[tokio::test(start_paused = true)]
async fn by_default_only_our_refusals_did_not_happen() {
    hang_guard(by_default_only_our_refusals_did_not_happen_body()).await
}

async fn by_default_only_our_refusals_did_not_happen_body() {
    use async_patterns::Overloaded;
    use async_patterns_tower::RetryRequest;
    #[derive(Clone)]
    struct NeverRepeat;
    impl RetryRequest<u32> for NeverRepeat {
        fn clone_request(&self, req: &u32) -> Option<u32> {
            Some(*req)
        }
        fn replayable(&self, _: &u32) -> bool {
            false
        }
    }
    async fn calls(first: Error) -> u32 {
        let timer = TokioTimer::new();
        let n = Arc::new(AtomicU32::new(0));
        let (c, first) = (n.clone(), Arc::new(Mutex::new(Some(first))));
        let svc = RetryLayer::new(http_policy(), timer)
            .requests(NeverRepeat)
            .layer(tower::service_fn(move |x: u32| {
                c.fetch_add(1, Ordering::Relaxed);
                let out = match first.lock().unwrap().take() {
                    Some(e) => Err(e),
                    None => Ok(x),
                };
                std::future::ready(out)
            }));
        let _ = tokio::time::timeout(Duration::from_secs(60), svc.oneshot(7))
            .await
            .expect("no hang");
        n.load(Ordering::Relaxed)
    }
    assert_eq!(calls(Error::Overloaded(Overloaded { limit: 1 })).await, 2);
    assert_eq!(calls(Error::Inner("reset".into())).await, 1);
}
