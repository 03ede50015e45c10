//! The orders scenario under `cargo test`: seeds, the regressions folder,
//! and the meta-tests that show each invariant catches a planted bug.

use async_patterns_sim::testing::{Checker, replay_regressions};
use example_orders::sim::Orders;

const REPLAY: &str = "cargo run -p example-orders --release --bin orders-sim --";

/// Seeds 0..64, each under its swarm plan, each run twice (traces
/// compared); a failure prints the shrunk plan and the line that replays it.
#[test]
fn seeds_keep_every_invariant() {
    Checker::new(&Orders).replay_command(REPLAY).seeds(0..64);
}

/// Every plan in `regressions/` once broke an invariant; none may again.
#[test]
fn regressions_replay_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions");
    let replayed = replay_regressions(&[&Orders], dir);
    assert!(replayed >= 1, "no regression replayed from {dir}");
}

/// The planted bug of the walkthrough: a fresh idempotency key per retry.
/// Some seed of the same 64 that pass above must catch it.
#[test]
fn a_retry_without_the_idempotency_key_is_caught() {
    let caught = Checker::new(&Orders)
        .sabotage("retry-without-idempotency-key")
        .once()
        .caught(0..64);
    assert_eq!(caught, Ok(true));
}

/// The deadline invariant can fail: attempts with fresh timeouts and
/// retries past the deadline are caught.
#[test]
fn ignoring_the_deadline_is_caught() {
    let caught = Checker::new(&Orders)
        .sabotage("no-deadline")
        .once()
        .caught(0..16);
    assert_eq!(caught, Ok(true));
}

/// The breaker invariant can fail: sending what the breaker refused is
/// caught.
#[test]
fn bypassing_the_open_breaker_is_caught() {
    let caught = Checker::new(&Orders)
        .sabotage("bypass-open-breaker")
        .once()
        .caught(0..16);
    assert_eq!(caught, Ok(true));
}
