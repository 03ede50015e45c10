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

/// A crash of the server that outlasts the workload (from 200 ms to
/// 8.2 s: every order of the workload has ended by then): the recovery
/// phase's probe places an order of its own, which is stored within the
/// bound, and the run passes.
#[test]
fn orders_go_through_again_after_a_crash_that_outlasts_the_workload() {
    use async_patterns_sim::{Fault, FaultKind, FaultPlan, run};
    use example_orders::sim::RECOVERY_BOUND;
    let plan = FaultPlan {
        faults: vec![Fault::new(FaultKind::Crash, "server", 200, 8_000)],
        ..FaultPlan::default()
    };
    let out = run(&Orders, 1, &plan).unwrap();
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    let r = &out.recoveries[0];
    assert_eq!(r.name, "orders go through again");
    assert!(r.judged);
    let after = r.after.expect("held");
    assert!(after <= RECOVERY_BOUND, "{after:?}");
    assert!(
        out.trace
            .iter()
            .any(|e| e.contains("server: stored order 4 for key probe-0")),
        "the workload was over: only the probe can place an order"
    );
}
