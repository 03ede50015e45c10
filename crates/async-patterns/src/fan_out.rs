//! Fan-out with a concurrency limit and error isolation: run many futures,
//! at most `L` at a time, inside the caller's task (no spawning, so any
//! runtime, or none, will do).
//!
//! * [`gather`] — every input yields exactly one outcome, in input order;
//!   one failure cancels nothing (Python's `gather(return_exceptions=True)`).
//! * [`try_gather`] — the first error cancels the rest and is returned;
//!   nothing keeps running once it returns, because the futures live inside
//!   it (Python's `TaskGroup`, Go's `errgroup`).
//! * [`gather_until`] / [`try_gather_until`] — the same with a
//!   [`Deadline`]: what finished is returned, the rest is marked
//!   [`Elapsed`] (and dropped, started or not).
//! * [`gather_stream`] — outcomes as they complete, with their input index.
//!
//! Inputs are pulled from the iterator only when a slot is free, so at most
//! `L` futures exist at once, not just run. Inputs must be finite: the
//! deadline forms mark the inputs never started as `Elapsed` too, counting
//! them from the iterator's size hint when it is exact (no future created),
//! or else by pulling them (each created and dropped unpolled — so with such
//! an iterator, do not make creating an input start work, e.g. spawn).
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | `gather` yields one outcome per input, in input order, whatever the completion order | proptest `gather_keeps_order_and_count` (`tests/fan_out_model.rs`) |
//! | never more than `L` futures in flight (or even created) | proptest `gather_keeps_order_and_count` (a shared gauge checked at every poll); loom is not needed: the futures never leave the caller's task |
//! | `try_gather` returns the first error in completion order and drops every other future, so none is alive after it returns | proptest `try_gather_cancels_the_rest` (counts live futures) |
//! | with a deadline, outcomes finished by the deadline are kept and exactly the others are `Elapsed` | proptest `gather_until_marks_exactly_the_late_ones` (virtual time) |
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroUsize;
//! use async_patterns::fan_out::gather;
//!
//! let inputs = (1..=5).map(|i| async move { if i == 3 { Err(i) } else { Ok(i * 10) } });
//! let out = futures::executor::block_on(gather(inputs, NonZeroUsize::new(2).unwrap()));
//! assert_eq!(out, [Ok(10), Ok(20), Err(3), Ok(40), Ok(50)]);
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use pin_project_lite::pin_project;

use crate::deadline::{Deadline, Elapsed};
use crate::time::Timer;

pin_project! {
    /// A future tagged with its input index.
    struct Indexed<F> {
        index: usize,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Indexed<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.fut.poll(cx).map(|out| (index, out))
    }
}

pin_project! {
    /// Outcomes in completion order, each with its input's index; at most
    /// `limit` inputs in flight. Returned by [`gather_stream`].
    #[must_use = "streams do nothing unless polled"]
    pub struct GatherStream<I: Iterator> {
        inputs: std::iter::Enumerate<I>,
        running: FuturesUnordered<Indexed<I::Item>>,
        limit: usize,
        started: usize,
    }
}

/// Runs `inputs` at most `limit` at a time; yields `(index, outcome)` as
/// each completes.
pub fn gather_stream<I>(inputs: I, limit: NonZeroUsize) -> GatherStream<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Future,
{
    GatherStream {
        inputs: inputs.into_iter().enumerate(),
        running: FuturesUnordered::new(),
        limit: limit.get(),
        started: 0,
    }
}

impl<I: Iterator> GatherStream<I>
where
    I::Item: Future,
{
    /// Futures started and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }
}

impl<I: Iterator> Stream for GatherStream<I>
where
    I::Item: Future,
{
    type Item = (usize, <I::Item as Future>::Output);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        while this.running.len() < *this.limit {
            match this.inputs.next() {
                Some((index, fut)) => {
                    this.running.push(Indexed { index, fut });
                    *this.started += 1;
                }
                None => break,
            }
        }
        // Empty only once the inputs are exhausted too: then it ends.
        this.running.poll_next_unpin(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, hi) = self.inputs.size_hint();
        let n = self.running.len();
        (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
    }
}

impl<I: Iterator> fmt::Debug for GatherStream<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherStream")
            .field("in_flight", &self.running.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// How a drive over the stream ended.
enum Ended<E> {
    /// Every input finished.
    Done,
    /// The deadline came first.
    Elapsed,
    /// `stop` asked to stop, with this.
    Stopped(E),
}

/// Polls `stream` to the end, handing each outcome to `each` (which may
/// stop the drive), or until `deadline` comes on `timer`. Outcomes ready
/// at the deadline's own instant are taken first.
async fn drive<I, T, E>(
    stream: &mut GatherStream<I>,
    deadline: Option<(&T, Deadline)>,
    mut each: impl FnMut(usize, <I::Item as Future>::Output) -> Result<(), E>,
) -> Ended<E>
where
    I: Iterator,
    I::Item: Future,
    T: Timer,
{
    let mut sleep = pin!(deadline.map(|(timer, at)| timer.sleep_until(at.instant())));
    poll_fn(|cx| {
        loop {
            match Pin::new(&mut *stream).poll_next(cx) {
                Poll::Ready(Some((index, out))) => {
                    if let Err(e) = each(index, out) {
                        return Poll::Ready(Ended::Stopped(e));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(Ended::Done),
                Poll::Pending => break,
            }
        }
        if let Some(sleep) = sleep.as_mut().as_pin_mut()
            && sleep.poll(cx).is_ready()
        {
            return Poll::Ready(Ended::Elapsed);
        }
        Poll::Pending
    })
    .await
}

/// Collects outcomes by index; `None` where none came.
fn slots<O>(n: usize) -> Vec<Option<O>> {
    std::iter::repeat_with(|| None).take(n).collect()
}

fn place<O>(slots: &mut Vec<Option<O>>, index: usize, out: O) {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots[index] = Some(out);
}

/// Runs every input, at most `limit` at a time, and returns every outcome in
/// input order. One failing input cancels nothing.
pub async fn gather<I>(inputs: I, limit: NonZeroUsize) -> Vec<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    let mut stream = gather_stream(inputs, limit);
    let mut out = slots(stream.size_hint().0);
    // Without a deadline or a stop, the drive ends when every input has.
    let _: Ended<std::convert::Infallible> = drive::<_, NoTimer, _>(&mut stream, None, |i, o| {
        place(&mut out, i, o);
        Ok(())
    })
    .await;
    out.into_iter().flatten().collect()
}

/// [`gather`] with a deadline: outcomes finished by `deadline` (on `timer`)
/// are `Ok`; the others are `Err(Elapsed)` and their futures are dropped.
pub async fn gather_until<I, T>(
    timer: &T,
    deadline: Deadline,
    inputs: I,
    limit: NonZeroUsize,
) -> Vec<Result<<I::Item as Future>::Output, Elapsed>>
where
    I: IntoIterator,
    I::Item: Future,
    T: Timer,
{
    let mut stream = gather_stream(inputs, limit);
    let mut out = slots(stream.size_hint().0);
    let _: Ended<std::convert::Infallible> = drive(&mut stream, Some((timer, deadline)), |i, o| {
        place(&mut out, i, o);
        Ok(())
    })
    .await;
    finish(out, stream, deadline)
}

/// Marks every missing outcome `Elapsed`: those still running (dropped
/// here) and those never started (counted, never run).
fn finish<I: Iterator, O>(
    mut out: Vec<Option<O>>,
    stream: GatherStream<I>,
    deadline: Deadline,
) -> Vec<Result<O, Elapsed>> {
    let GatherStream {
        inputs,
        running,
        started,
        ..
    } = stream;
    drop(running);
    // Inputs never started are counted from the iterator's size hint when
    // it is exact (vectors, ranges, maps over them), so none is created;
    // otherwise they must be pulled to be counted (created, never polled).
    let never_started = match inputs.size_hint() {
        (lo, Some(hi)) if lo == hi => lo,
        _ => inputs.count(),
    };
    let total = started + never_started;
    // An input is left unstarted only while every slot holds one still
    // running: a missing outcome among the started says it all.
    if out.iter().any(Option::is_none) {
        async_patterns_assert::reachable!(crate::points::FAN_OUT_PARTIAL);
    }
    out.resize_with(total, || None);
    out.into_iter()
        .map(|o| o.ok_or(Elapsed { deadline }))
        .collect()
}

/// Runs every input, at most `limit` at a time, until the first error:
/// that error is returned and every other input is dropped (cancelled, or
/// never started). Otherwise every value, in input order.
pub async fn try_gather<I, V, E>(inputs: I, limit: NonZeroUsize) -> Result<Vec<V>, E>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<V, E>>,
{
    let mut stream = gather_stream(inputs, limit);
    let mut out = slots(stream.size_hint().0);
    match drive::<_, NoTimer, _>(&mut stream, None, |i, o| o.map(|v| place(&mut out, i, v))).await {
        Ended::Stopped(e) => Err(e),
        Ended::Done | Ended::Elapsed => Ok(out.into_iter().flatten().collect()),
    }
}

/// [`try_gather`] with a deadline: the first error if one came in time;
/// otherwise the values finished by `deadline`, the others `Elapsed`.
pub async fn try_gather_until<I, T, V, E>(
    timer: &T,
    deadline: Deadline,
    inputs: I,
    limit: NonZeroUsize,
) -> Result<Vec<Result<V, Elapsed>>, E>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<V, E>>,
    T: Timer,
{
    let mut stream = gather_stream(inputs, limit);
    let mut out = slots(stream.size_hint().0);
    match drive(&mut stream, Some((timer, deadline)), |i, o| {
        o.map(|v| place(&mut out, i, v))
    })
    .await
    {
        Ended::Stopped(e) => Err(e),
        Ended::Done | Ended::Elapsed => Ok(finish(out, stream, deadline)),
    }
}

/// The timer type of a drive without a deadline (never used to sleep).
type NoTimer = crate::time::ManualClock;
