//! Runs a future to completion on a `ManualClock`, moving time only when
//! the future can make no progress without it: to the next sleep's deadline.

#![allow(dead_code)] // each test binary uses only some of these

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_patterns::time::{Clock, ManualClock};

/// The future's output and the virtual time it took. Panics if the future
/// is stuck: pending with no sleep left to wake it.
pub fn run<F: Future>(clock: &ManualClock, fut: F) -> (F::Output, Duration) {
    let start = clock.now();
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return (out, clock.now().saturating_duration_since(start));
        }
        let next = clock
            .next_deadline()
            .expect("the future is stuck: pending with no sleep to wake it");
        clock.advance_to(next);
    }
}
