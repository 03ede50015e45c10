//! A bounded pipeline: producer → stages → consumer, each stage with its
//! own concurrency, inside the caller's task (no spawning, any runtime).
//!
//! ```text
//! source ──▶ stage 1 (≤ c₁ at once) ──▶ stage 2 (≤ c₂ at once) ──▶ consumer
//! ```
//!
//! Items are pulled, never pushed: a stage takes a new item only when it has
//! a free slot, and the source is read only when the first stage has one,
//! so the items in flight never exceed `c₁ + c₂ + …` (backpressure) and
//! nothing queues without bound. [`Order::Ordered`] delivers items in source
//! order (a stage's finished items wait, within its `c` slots, for earlier
//! ones); [`Order::Unordered`] delivers them as they finish.
//!
//! A stage returns `Result`; an error skips the later stages and reaches the
//! end of the pipeline, where [`OnError`] delivers it to the consumer,
//! counts and drops it, or hands it to a dead-letter sink.
//!
//! Stopping: a [`Shutdown`] ends the source, and the pipeline *drains* —
//! every item already taken goes through to the consumer, then
//! [`run`](Pipeline::run) returns. Cancelling is dropping the `run` future:
//! every item in flight is dropped with it, at once.
//!
//! Stages are built on futures-util's `buffered` / `buffer_unordered`
//! streams (what they do, they do well); this module adds the error
//! policies, the drain, the report, and the proofs.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | no loss, no duplication: every source item ends exactly once, as a delivered value or an error handled by the policy | proptest `pipeline_delivers_every_item_exactly_once` (`tests/pipeline_model.rs`) |
//! | ordered mode keeps source order | proptest `pipeline_delivers_every_item_exactly_once` |
//! | items in flight (taken from the source, not yet consumed) never exceed the sum of the stages' concurrency | proptest `pipeline_delivers_every_item_exactly_once` (a gauge checked at every pull) |
//! | shutdown drains: every item taken before it is delivered, none after | proptest `shutdown_drains_what_was_taken` (items counted as the source itself yields them, beneath the guard); unit test `an_item_read_as_the_signal_arrives_is_delivered` (the signal given inside the read) |
//! | the report counts every end by its kind | proptest `pipeline_delivers_every_item_exactly_once` |
//! | cancel stops at once: dropping `run` drops every item in flight | proptest `cancel_drops_everything_in_flight` |
//! | a shared signal holds wakers only for live sources (no growth across many pipelines) | unit test `finished_and_dropped_sources_free_their_waker_slots`; loom `loom_shutdown_wakes_a_pending_source` (no lost wake-up) |
//! | the event order of a fixed run does not change unnoticed | insta snapshot `pipeline_event_order` (`tests/pipeline.rs`, in `snapshots/`) |
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroUsize;
//! use async_patterns::pipeline::{pipeline, OnError, Order};
//!
//! let four = NonZeroUsize::new(4).unwrap();
//! let source = futures::stream::iter(1..=6);
//! let mut out = Vec::new();
//! let report = futures::executor::block_on(
//!     pipeline(source, Order::Ordered)
//!         .stage(four, |x: u32| async move { if x == 3 { Err("three") } else { Ok(x * 10) } })
//!         .stage(four, |x| async move { Ok(x + 1) })
//!         .run(OnError::Skip, |item| out.push(item.unwrap())),
//! );
//! assert_eq!(out, [11, 21, 41, 51, 61]);
//! assert_eq!((report.delivered, report.skipped), (5, 1));
//! ```

use std::fmt;
use std::future::{Future, ready};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::future::Either;
use futures_util::stream::{Stream, StreamExt};
use pin_project_lite::pin_project;

use slab::Slab;

use crate::events::emit;
use crate::sync::{Arc, Mutex, lock};

/// Whether the pipeline keeps source order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Deliver in source order.
    Ordered,
    /// Deliver as items finish.
    Unordered,
}

/// What happens to an item whose stage failed.
pub enum OnError<E> {
    /// The consumer receives the `Err`.
    Deliver,
    /// Counted in the report, then dropped.
    Skip,
    /// Handed to this sink (a dead-letter queue), counted in the report.
    DeadLetter(Box<dyn FnMut(E) + Send>),
}

impl<E> fmt::Debug for OnError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::Deliver => "Deliver",
            OnError::Skip => "Skip",
            OnError::DeadLetter(_) => "DeadLetter",
        })
    }
}

/// How a run ended, item by item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Values the consumer received.
    pub delivered: u64,
    /// Errors the consumer received ([`OnError::Deliver`]).
    pub errors_delivered: u64,
    /// Errors dropped ([`OnError::Skip`]).
    pub skipped: u64,
    /// Errors handed to the dead-letter sink.
    pub dead_lettered: u64,
}

/// A pipeline under construction: a stream of `Result`s.
#[must_use = "a pipeline does nothing until it is run"]
pub struct Pipeline<S> {
    stream: S,
    order: Order,
    capacity: usize,
}

/// Starts a pipeline reading `source`.
pub fn pipeline<S, E>(source: S, order: Order) -> Pipeline<impl Stream<Item = Result<S::Item, E>>>
where
    S: Stream,
{
    Pipeline {
        stream: source.map(Ok),
        order,
        capacity: 0,
    }
}

impl<S, T, E> Pipeline<S>
where
    S: Stream<Item = Result<T, E>>,
{
    /// Adds a stage running `f` on at most `concurrency` items at once.
    pub fn stage<U, F, Fut>(
        self,
        concurrency: NonZeroUsize,
        mut f: F,
    ) -> Pipeline<impl Stream<Item = Result<U, E>>>
    where
        F: FnMut(T) -> Fut,
        Fut: Future<Output = Result<U, E>>,
    {
        let calls = self.stream.map(move |item| match item {
            Ok(value) => Either::Left(f(value)),
            // An earlier stage failed: pass the error through untouched.
            Err(e) => Either::Right(ready(Err(e))),
        });
        let stream = match self.order {
            Order::Ordered => Either::Left(calls.buffered(concurrency.get())),
            Order::Unordered => Either::Right(calls.buffer_unordered(concurrency.get())),
        };
        Pipeline {
            stream,
            order: self.order,
            capacity: self.capacity.saturating_add(concurrency.get()),
        }
    }

    /// The most items that can be in flight at once: the sum of the
    /// stages' concurrency.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The pipeline's output as a stream (errors included), for callers
    /// that consume it their own way.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Runs the pipeline to the end of its source, handing every value (and,
    /// with [`OnError::Deliver`], every error) to `consume`.
    pub async fn run(
        self,
        mut on_error: OnError<E>,
        mut consume: impl FnMut(Result<T, E>),
    ) -> Report {
        let mut report = Report::default();
        let mut stream = std::pin::pin!(self.stream);
        while let Some(item) = stream.next().await {
            match (item, &mut on_error) {
                (Ok(value), _) => {
                    report.delivered += 1;
                    consume(Ok(value));
                }
                (Err(e), OnError::Deliver) => {
                    report.errors_delivered += 1;
                    consume(Err(e));
                }
                (Err(_), OnError::Skip) => report.skipped += 1,
                (Err(e), OnError::DeadLetter(sink)) => {
                    report.dead_lettered += 1;
                    async_patterns_assert::reachable!(crate::points::DEAD_LETTER);
                    emit!(
                        target: "async_patterns::pipeline",
                        tracing::Level::WARN,
                        dead_lettered = report.dead_lettered,
                        "error dead-lettered"
                    );
                    sink(e);
                }
            }
        }
        report
    }
}

impl<S> fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("order", &self.order)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Ends the sources it [`guard`](Shutdown::guard)s: they yield nothing more
/// once [`shutdown`](Shutdown::shutdown) is called (a pending read is woken
/// and ends), so the pipelines reading them drain and return. Clones share
/// the signal.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Mutex<ShutdownState>>,
}

/// The signal, and one waker slot per live guarded source (a source frees
/// its slot when it ends or is dropped, so a long-lived signal shared by
/// many short pipelines holds only the wakers of those still running).
#[derive(Default)]
struct ShutdownState {
    down: bool,
    wakers: Slab<Waker>,
}

impl Shutdown {
    /// A signal not yet given.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Gives the signal: guarded sources end.
    pub fn shutdown(&self) {
        let wakers = {
            let mut state = lock(&self.inner);
            state.down = true;
            std::mem::take(&mut state.wakers)
        };
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Whether the signal was given.
    pub fn is_shut_down(&self) -> bool {
        lock(&self.inner).down
    }

    /// `source`, ending at the signal.
    pub fn guard<S: Stream>(&self, source: S) -> Guarded<S> {
        Guarded {
            source,
            shutdown: self.clone(),
            slot: None,
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("down", &self.is_shut_down())
            .finish()
    }
}

pin_project! {
    /// A source that ends at a [`Shutdown`] signal.
    #[must_use = "streams do nothing unless polled"]
    pub struct Guarded<S> {
        #[pin]
        source: S,
        shutdown: Shutdown,
        // This source's waker slot in the signal, while it has one.
        slot: Option<usize>,
    }

    impl<S> PinnedDrop for Guarded<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            release(this.shutdown, this.slot);
        }
    }
}

/// Frees a guarded source's waker slot, if it holds one.
fn release(shutdown: &Shutdown, slot: &mut Option<usize>) {
    if let Some(key) = slot.take() {
        let mut state = lock(&shutdown.inner);
        // After a shutdown the slab was emptied (and may hold new keys).
        if !state.down {
            state.wakers.try_remove(key);
        }
    }
}

impl<S: Stream> Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        {
            let mut state = lock(&this.shutdown.inner);
            if state.down {
                *this.slot = None; // the shutdown took every waker
                return Poll::Ready(None);
            }
            match this.slot.and_then(|key| state.wakers.get_mut(key)) {
                Some(waker) => waker.clone_from(cx.waker()),
                None => *this.slot = Some(state.wakers.insert(cx.waker().clone())),
            }
        }
        let item = this.source.poll_next(cx);
        if let Poll::Ready(None) = item {
            release(this.shutdown, this.slot);
        }
        item
    }
}

impl<S> fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;

    /// The signal racing a read: the source yields item 1 in the very poll
    /// in which the signal is given (as when another thread signals while
    /// the read completes). Item 1 was read, so it must come out the other
    /// end; item 2 must never be read.
    #[test]
    fn an_item_read_as_the_signal_arrives_is_delivered() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_shut_down());
        let signal = shutdown.clone();
        let mut next = 0u32;
        // Ten items at most, so a signal that ends nothing fails the test
        // instead of hanging it.
        let source = futures::stream::poll_fn(move |_| {
            next += 1;
            if next == 2 {
                signal.shutdown();
            }
            Poll::Ready((next <= 10).then_some(next))
        });
        let mut out = Vec::new();
        let report = futures::executor::block_on(
            pipeline(shutdown.guard(source), Order::Ordered)
                .stage(NonZeroUsize::MIN, |x: u32| ready(Ok::<_, ()>(x)))
                .run(OnError::Deliver, |item| out.push(item.unwrap())),
        );
        assert!(shutdown.is_shut_down());
        assert_eq!(out, [1, 2], "the item read with the signal was lost");
        assert_eq!(report.delivered, 2);
    }

    /// A signal shared by many short-lived pipelines holds wakers only for
    /// the sources still alive.
    #[test]
    fn finished_and_dropped_sources_free_their_waker_slots() {
        let shutdown = Shutdown::new();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut pending = Box::pin(shutdown.guard(futures::stream::pending::<u8>()));
            assert!(pending.as_mut().poll_next(&mut cx).is_pending());
            let mut ended = Box::pin(shutdown.guard(futures::stream::iter([1u8])));
            assert_eq!(ended.as_mut().poll_next(&mut cx), Poll::Ready(Some(1)));
            assert_eq!(ended.as_mut().poll_next(&mut cx), Poll::Ready(None));
            assert_eq!(
                lock(&shutdown.inner).wakers.len(),
                1,
                "only the pending source"
            );
        }
        assert_eq!(lock(&shutdown.inner).wakers.len(), 0);
        let mut last = Box::pin(shutdown.guard(futures::stream::pending::<u8>()));
        assert!(last.as_mut().poll_next(&mut cx).is_pending());
        shutdown.shutdown();
        assert_eq!(last.as_mut().poll_next(&mut cx), Poll::Ready(None));
    }
}
