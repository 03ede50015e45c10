//! The pipeline in virtual time against what must come out of it: each
//! item has a delay and a fate per stage, so the set of values and errors
//! that must reach the end is known in advance, and so is the order in
//! ordered mode. A gauge on the source counts the items taken and not yet
//! finished, checked at every pull against the pipeline's capacity.
//! Failing cases persist in `pipeline_model.proptest-regressions`.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use async_patterns::pipeline::{OnError, Order, Report, Shutdown, pipeline};
use async_patterns::time::{Clock, ManualClock, Timer};
use futures::StreamExt;
use proptest::prelude::*;

/// Per item, per stage: (delay in ms, fails).
type Item = [(u64, bool); 2];

fn items() -> impl Strategy<Value = Vec<Item>> {
    let stage = (0u64..=10, prop::bool::weighted(0.15));
    prop::collection::vec([stage.clone(), stage], 0..=40)
}

fn order() -> impl Strategy<Value = Order> {
    prop_oneof![Just(Order::Ordered), Just(Order::Unordered)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Deliver,
    Skip,
    DeadLetter,
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Deliver),
        Just(Policy::Skip),
        Just(Policy::DeadLetter)
    ]
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// Live stage futures (cancel must drop them all).
#[derive(Default)]
struct Gauge(AtomicUsize);

struct Alive(Arc<Gauge>);

impl Alive {
    fn new(g: &Arc<Gauge>) -> Self {
        g.0.fetch_add(1, Ordering::SeqCst);
        Alive(g.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What reached the end: (item index, Ok or Err with the failing stage).
type End = (usize, Result<(), usize>);

struct Run {
    ends: Vec<End>,
    report: Report,
    skipped: u64,
    /// Items read from the source itself (counted beneath the shutdown
    /// guard, so an item the guard read and then dropped still counts).
    taken: usize,
    /// Items taken from the source when the shutdown was given.
    taken_at_shutdown: Option<usize>,
    max_in_flight: usize,
    elapsed: Duration,
}

fn run_pipeline(
    items: &[Item],
    c: (usize, usize),
    order: Order,
    policy: Policy,
    stop_after: Option<usize>,
) -> (Run, usize) {
    let clock = ManualClock::new();
    let shutdown = Shutdown::new();
    let finished = Rc::new(RefCell::new(0usize));
    let taken = Rc::new(RefCell::new(0usize));
    let max_in_flight = Rc::new(RefCell::new(0usize));
    let ends: Rc<RefCell<Vec<End>>> = Rc::default();
    let dead: Arc<Mutex<Vec<End>>> = Arc::default();
    let source = {
        let (taken, finished, max, dead) = (
            taken.clone(),
            finished.clone(),
            max_in_flight.clone(),
            dead.clone(),
        );
        shutdown.guard(futures::stream::iter(0..items.len()).inspect(move |_| {
            *taken.borrow_mut() += 1;
            let done = *finished.borrow() + dead.lock().unwrap().len();
            let in_flight = *taken.borrow() - done;
            let mut max = max.borrow_mut();
            *max = (*max).max(in_flight);
        }))
    };
    let stage = |k: usize| {
        let clock = clock.clone();
        move |i: usize| {
            let (ms, fails) = items[i][k];
            let sleep = clock.sleep(Duration::from_millis(ms));
            async move {
                sleep.await;
                if fails { Err((i, k)) } else { Ok(i) }
            }
        }
    };
    let on_error = match policy {
        Policy::Deliver => OnError::Deliver,
        Policy::Skip => OnError::Skip,
        Policy::DeadLetter => OnError::DeadLetter(Box::new({
            let dead = dead.clone();
            move |(i, k)| dead.lock().unwrap().push((i, Err(k)))
        })),
    };
    let p = pipeline(source, order)
        .stage(nz(c.0), stage(0))
        .stage(nz(c.1), stage(1));
    let capacity = p.capacity();
    let at_shutdown: Rc<RefCell<Option<usize>>> = Rc::default();
    let consumer = {
        let (ends, finished, shutdown) = (ends.clone(), finished.clone(), shutdown.clone());
        let (taken, at_shutdown) = (taken.clone(), at_shutdown.clone());
        move |item: Result<usize, (usize, usize)>| {
            ends.borrow_mut().push(match item {
                Ok(i) => (i, Ok(())),
                Err((i, k)) => (i, Err(k)),
            });
            *finished.borrow_mut() += 1;
            if stop_after.is_some_and(|n| ends.borrow().len() >= n) && !shutdown.is_shut_down() {
                *at_shutdown.borrow_mut() = Some(*taken.borrow());
                shutdown.shutdown();
            }
        }
    };
    // Skipped items are not observable while running, so with Skip the
    // gauge above over-counts (it is checked for the other policies).
    let (report, elapsed) = virtual_time::run(&clock, p.run(on_error, consumer));
    let mut all = ends.borrow().clone();
    all.extend(dead.lock().unwrap().iter().copied());
    let run = Run {
        ends: all,
        report,
        skipped: report.skipped,
        taken: *taken.borrow(),
        taken_at_shutdown: *at_shutdown.borrow(),
        max_in_flight: *max_in_flight.borrow(),
        elapsed,
    };
    (run, capacity)
}

fn expected_end(items: &[Item], i: usize) -> End {
    match items[i].iter().position(|&(_, fails)| fails) {
        Some(k) => (i, Err(k)),
        None => (i, Ok(())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pipeline_delivers_every_item_exactly_once(items in items(), c1 in 1usize..=4, c2 in 1usize..=4, order in order(), policy in policy()) {
        let (run, capacity) = run_pipeline(&items, (c1, c2), order, policy, None);
        prop_assert_eq!(capacity, c1 + c2);
        prop_assert_eq!(run.taken, items.len());
        let mut expected: Vec<End> = (0..items.len()).map(|i| expected_end(&items, i)).collect();
        let mut got = run.ends.clone();
        if policy == Policy::Skip {
            expected.retain(|(_, r)| r.is_ok());
            prop_assert_eq!(run.skipped as usize, items.len() - expected.len());
        }
        if order == Order::Ordered && policy == Policy::Deliver {
            prop_assert_eq!(&got, &expected, "order lost");
        }
        got.sort();
        expected.sort();
        prop_assert_eq!(got, expected, "lost or duplicated");
        // The report counts what happened, each kind of end by its own.
        let ok = run.ends.iter().filter(|e| e.1.is_ok()).count() as u64;
        let failed = run.ends.len() as u64 - ok;
        let r = run.report;
        prop_assert_eq!(r.delivered, ok);
        prop_assert_eq!(r.errors_delivered, if policy == Policy::Deliver { failed } else { 0 });
        prop_assert_eq!(r.dead_lettered, if policy == Policy::DeadLetter { failed } else { 0 });
        prop_assert_eq!(r.skipped, if policy == Policy::Skip { items.len() as u64 - ok } else { 0 });
        if policy != Policy::Skip {
            prop_assert!(run.max_in_flight <= capacity, "{} in flight, capacity {}", run.max_in_flight, capacity);
        }
        let _ = run.elapsed;
    }

    #[test]
    fn shutdown_drains_what_was_taken(items in items(), c1 in 1usize..=4, c2 in 1usize..=4, order in order(), k in 1usize..=40) {
        let (run, capacity) = run_pipeline(&items, (c1, c2), order, Policy::Deliver, Some(k));
        prop_assert_eq!(run.ends.len(), run.taken, "an item taken before the shutdown was not delivered");
        match run.taken_at_shutdown {
            Some(at) => {
                prop_assert_eq!(run.taken, at, "items were taken after the shutdown");
                prop_assert!(at <= k + capacity, "took {} by the {}th delivery, capacity {}", at, k, capacity);
            }
            None => prop_assert_eq!(run.taken, items.len()),
        }
        let mut got: Vec<usize> = run.ends.iter().map(|e| e.0).collect();
        got.sort();
        got.dedup();
        prop_assert_eq!(got.len(), run.ends.len(), "duplicated");
    }

    #[test]
    fn cancel_drops_everything_in_flight(items in items(), c1 in 1usize..=4, c2 in 1usize..=4, order in order(), stop_ms in 0u64..=30) {
        let clock = ManualClock::new();
        let gauge = Arc::new(Gauge::default());
        let stage = |k: usize| {
            let (clock, gauge, items) = (clock.clone(), gauge.clone(), items.clone());
            move |i: usize| {
                let alive = Alive::new(&gauge);
                let sleep = clock.sleep(Duration::from_millis(items[i][k].0));
                async move {
                    let _alive = alive;
                    sleep.await;
                    Ok::<_, ()>(i)
                }
            }
        };
        {
            let run = pipeline(futures::stream::iter(0..items.len()), order)
                .stage(nz(c1), stage(0))
                .stage(nz(c2), stage(1))
                .run(OnError::Deliver, |_| {});
            let mut run = pin!(run);
            let mut cx = Context::from_waker(Waker::noop());
            while run.as_mut().poll(&mut cx).is_pending() {
                let Some(next) = clock.next_deadline() else { break };
                if next.as_nanos() > stop_ms * 1_000_000 { break; }
                clock.advance_to(next);
            }
            prop_assert!(gauge.0.load(Ordering::SeqCst) <= c1 + c2);
        } // dropped: cancelled
        prop_assert_eq!(gauge.0.load(Ordering::SeqCst), 0, "a stage future outlived the cancelled run");
        let _ = clock.now();
    }
}
