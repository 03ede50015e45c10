//! Behaviour snapshot of a pipeline run: six items through two stages of
//! concurrency 2 in ordered mode, with fixed delays and one failure, in
//! virtual time. The event order (stage starts and ends, deliveries) is
//! kept in `snapshots/`, so a change in scheduling or backpressure shows
//! up as a diff.

#[path = "support/virtual_time.rs"]
mod virtual_time;

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::Duration;

use async_patterns::pipeline::{OnError, Order, pipeline};
use async_patterns::time::{Clock, ManualClock, Timer};

#[test]
fn pipeline_event_order() {
    const DELAYS: [[u64; 2]; 6] = [[30, 10], [10, 10], [20, 40], [10, 10], [50, 10], [10, 20]];
    let clock = ManualClock::new();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let stage = |k: usize| {
        let (clock, log) = (clock.clone(), log.clone());
        move |i: usize| {
            let (clock, log) = (clock.clone(), log.clone());
            async move {
                let t = |c: &ManualClock| c.now().as_duration().as_millis();
                log.borrow_mut().push(format!(
                    "t={:>3} ms  stage {} starts item {i}",
                    t(&clock),
                    k + 1
                ));
                clock.sleep(Duration::from_millis(DELAYS[i][k])).await;
                log.borrow_mut().push(format!(
                    "t={:>3} ms  stage {} ends item {i}",
                    t(&clock),
                    k + 1
                ));
                if k == 0 && i == 2 {
                    Err(format!("item {i} failed in stage 1"))
                } else {
                    Ok(i)
                }
            }
        }
    };
    let two = NonZeroUsize::new(2).unwrap();
    let sink_log = log.clone();
    let sink_clock = clock.clone();
    let (report, elapsed) = virtual_time::run(
        &clock,
        pipeline(futures::stream::iter(0..DELAYS.len()), Order::Ordered)
            .stage(two, stage(0))
            .stage(two, stage(1))
            .run(OnError::Deliver, move |item| {
                sink_log.borrow_mut().push(format!(
                    "t={:>3} ms  consumer gets {item:?}",
                    sink_clock.now().as_duration().as_millis()
                ))
            }),
    );
    let out = format!("{}\n\n{report:?} in {elapsed:?}", log.borrow().join("\n"));
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots")}, {
        insta::assert_snapshot!(out);
    });
}
