//! One fixed seed per scenario has its event trace kept as an insta
//! snapshot in `snapshots/`: any change in what the simulated clients,
//! servers and patterns do (or in the order they do it) shows up as a diff
//! in review. Seed 4's plan has one fault of every kind.

use sim::{FaultKind, FaultPlan, scenarios};

#[test]
fn seed_4_trace_of_every_scenario() {
    let plan = FaultPlan::from_seed(4);
    for kind in FaultKind::ALL {
        assert_eq!(plan.of(kind).count(), 1, "{plan:?}");
    }
    for s in scenarios() {
        let out = (s.run)(4, &plan, None);
        assert!(
            out.violations.is_empty(),
            "{}: {:?}",
            s.name,
            out.violations
        );
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("sim_{}_seed_4", s.name), out.trace.join("\n"));
        });
    }
}
