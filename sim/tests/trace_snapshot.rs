//! A fixed seed's event trace, kept as an insta snapshot in `snapshots/`:
//! any change in what the simulated client, servers and patterns do (or in
//! the order they do it) shows up as a diff in review.

use sim::{FaultPlan, aggregator};

#[test]
fn aggregator_seed_4_trace() {
    let out = (aggregator::SCENARIO.run)(4, &FaultPlan::from_seed(4));
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots")}, {
        insta::assert_snapshot!(out.trace.join("\n"));
    });
}
