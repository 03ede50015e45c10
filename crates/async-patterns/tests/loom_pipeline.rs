//! loom model check of the one piece of the pipeline shared across threads:
//! the `Shutdown` signal. (The stages, their buffers and the fan-out's
//! in-flight set live inside the caller's task, so no other thread can
//! touch them; their bounds are proven by the proptests.) Run with
//! `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use async_patterns::pipeline::Shutdown;
use futures::StreamExt;
use loom::future::block_on;
use loom::thread;

/// A pipeline's source is waiting for an item that never comes while
/// another thread shuts it down: the read is woken and ends, whichever
/// runs first (a lost wake-up would leave `block_on` asleep forever, which
/// loom reports as a deadlock).
#[test]
fn loom_shutdown_wakes_a_pending_source() {
    loom_model::check("shutdown_wakes_a_pending_source", || {
        let shutdown = Shutdown::new();
        let signal = shutdown.clone();
        let t = thread::spawn(move || signal.shutdown());
        let mut source = shutdown.guard(futures::stream::pending::<u32>());
        assert_eq!(block_on(source.next()), None);
        t.join().unwrap();
    });
}
