//! Fan-out against a model: list scheduling with `L` slots in input order
//! (each input starts the instant a slot frees) gives every input's finish
//! time, and from those the expected outcomes, their order, the first error
//! and the virtual time taken. A gauge counts the input futures alive (from
//! creation to drop) and records its maximum, so "at most L in flight" and
//! "nothing alive after return" are checked directly. Failing cases persist
//! in `fan_out_model.proptest-regressions`.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_patterns::deadline::{Deadline, Elapsed};
use async_patterns::fan_out::{gather, gather_until, try_gather, try_gather_until};
use async_patterns::time::{ManualClock, Timer};
use proptest::prelude::*;

#[derive(Default)]
struct Gauge {
    alive: AtomicUsize,
    max: AtomicUsize,
    created: AtomicUsize,
}

struct Alive(Arc<Gauge>);

impl Alive {
    fn new(g: &Arc<Gauge>) -> Self {
        g.created.fetch_add(1, Ordering::SeqCst);
        let now = g.alive.fetch_add(1, Ordering::SeqCst) + 1;
        g.max.fetch_max(now, Ordering::SeqCst);
        Alive(g.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Inputs: (duration in ms, succeeds).
type Inputs = Vec<(u64, bool)>;

fn inputs() -> impl Strategy<Value = (Inputs, usize)> {
    (
        prop::collection::vec((0u64..=20, prop::bool::weighted(0.8)), 0..=40),
        1usize..=8,
    )
}

/// Each input's finish time under list scheduling with `limit` slots.
fn finish_times(inputs: &Inputs, limit: usize) -> Vec<u64> {
    let mut free: BinaryHeap<Reverse<u64>> = (0..limit).map(|_| Reverse(0)).collect();
    inputs
        .iter()
        .map(|&(ms, _)| {
            let Reverse(start) = free.pop().unwrap();
            free.push(Reverse(start + ms));
            start + ms
        })
        .collect()
}

/// The input futures, each holding a gauge guard from creation to drop.
fn futures<'a>(
    clock: &'a ManualClock,
    inputs: &'a Inputs,
    gauge: &'a Arc<Gauge>,
) -> impl Iterator<Item = impl Future<Output = Result<usize, usize>> + use<'a>> + 'a {
    inputs.iter().enumerate().map(move |(i, &(ms, ok))| {
        let alive = Alive::new(gauge);
        let sleep = clock.sleep(Duration::from_millis(ms));
        async move {
            let _alive = alive;
            sleep.await;
            if ok { Ok(i) } else { Err(i) }
        }
    })
}

fn limit(l: usize) -> NonZeroUsize {
    NonZeroUsize::new(l).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn gather_keeps_order_and_count((inputs, l) in inputs()) {
        let (clock, gauge) = (ManualClock::new(), Arc::new(Gauge::default()));
        let (out, elapsed) = virtual_time::run(&clock, gather(futures(&clock, &inputs, &gauge), limit(l)));
        let expected: Vec<Result<usize, usize>> = inputs
            .iter()
            .enumerate()
            .map(|(i, &(_, ok))| if ok { Ok(i) } else { Err(i) })
            .collect();
        prop_assert_eq!(out, expected);
        let makespan = finish_times(&inputs, l).into_iter().max().unwrap_or(0);
        prop_assert_eq!(elapsed, Duration::from_millis(makespan));
        prop_assert!(gauge.max.load(Ordering::SeqCst) <= l, "more than L alive");
        prop_assert_eq!(gauge.alive.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn try_gather_cancels_the_rest((inputs, l) in inputs()) {
        let (clock, gauge) = (ManualClock::new(), Arc::new(Gauge::default()));
        let (out, elapsed) = virtual_time::run(&clock, try_gather(futures(&clock, &inputs, &gauge), limit(l)));
        let finish = finish_times(&inputs, l);
        let first_error = inputs
            .iter()
            .zip(&finish)
            .filter(|((_, ok), _)| !ok)
            .map(|(_, &t)| t)
            .min();
        match (out, first_error) {
            (Err(j), Some(t)) => {
                prop_assert!(!inputs[j].1, "returned a success as the error");
                prop_assert_eq!(finish[j], t, "not the first error to finish");
                prop_assert_eq!(elapsed, Duration::from_millis(t));
            }
            (Ok(values), None) => {
                prop_assert_eq!(values, (0..inputs.len()).collect::<Vec<_>>());
                prop_assert_eq!(elapsed, Duration::from_millis(finish.into_iter().max().unwrap_or(0)));
            }
            (out, expected) => prop_assert!(false, "got {:?}, first error at {:?}", out, expected),
        }
        prop_assert!(gauge.max.load(Ordering::SeqCst) <= l, "more than L alive");
        prop_assert_eq!(gauge.alive.load(Ordering::SeqCst), 0, "a future outlived try_gather");
    }

    #[test]
    fn gather_until_marks_exactly_the_late_ones((inputs, l) in inputs(), deadline_ms in 0u64..=60, fail_fast: bool) {
        let (clock, gauge) = (ManualClock::new(), Arc::new(Gauge::default()));
        let deadline = Deadline::after(&clock, Duration::from_millis(deadline_ms));
        let finish = finish_times(&inputs, l);
        let makespan = finish.iter().copied().max().unwrap_or(0);
        if fail_fast {
            let (out, elapsed) = virtual_time::run(&clock, try_gather_until(&clock, deadline, futures(&clock, &inputs, &gauge), limit(l)));
            let first_error = inputs.iter().zip(&finish).filter(|((_, ok), t)| !ok && **t <= deadline_ms).map(|(_, &t)| t).min();
            match (out, first_error) {
                (Err(j), Some(t)) => {
                    prop_assert_eq!(finish[j], t);
                    prop_assert_eq!(elapsed, Duration::from_millis(t));
                }
                (Ok(values), None) => {
                    for (i, v) in values.iter().enumerate() {
                        let expected = if finish[i] <= deadline_ms { Ok(i) } else { Err(Elapsed { deadline }) };
                        prop_assert_eq!(v, &expected, "input {}", i);
                    }
                    prop_assert_eq!(values.len(), inputs.len());
                    prop_assert_eq!(elapsed, Duration::from_millis(makespan.min(deadline_ms)));
                }
                (out, expected) => prop_assert!(false, "got {:?}, first error at {:?}", out, expected),
            }
        } else {
            let (out, elapsed) = virtual_time::run(&clock, gather_until(&clock, deadline, futures(&clock, &inputs, &gauge), limit(l)));
            let expected: Vec<_> = inputs
                .iter()
                .enumerate()
                .map(|(i, &(_, ok))| {
                    if finish[i] > deadline_ms { Err(Elapsed { deadline }) } else if ok { Ok(Ok(i)) } else { Ok(Err(i)) }
                })
                .collect();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(elapsed, Duration::from_millis(makespan.min(deadline_ms)));
        }
        prop_assert!(gauge.max.load(Ordering::SeqCst) <= l, "more than L alive");
        prop_assert_eq!(gauge.alive.load(Ordering::SeqCst), 0, "a late future is still alive");
        // Inputs that would start after the deadline are never created
        // (the inputs here have an exact size hint).
        let started_by_deadline = {
            let mut free: BinaryHeap<Reverse<u64>> = (0..l).map(|_| Reverse(0)).collect();
            inputs.iter().take_while(|&&(ms, _)| {
                let Reverse(start) = free.pop().unwrap();
                free.push(Reverse(start + ms));
                start <= deadline_ms
            }).count()
        };
        prop_assert!(gauge.created.load(Ordering::SeqCst) <= started_by_deadline + l, "inputs created after the deadline");
    }
}
