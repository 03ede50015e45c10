//! One fixed seed per scenario has its event trace kept as an insta
//! snapshot in `snapshots/`: any change in what the simulated clients,
//! servers and patterns do (or in the order they do it) shows up as a diff
//! in review. Seed 4's plan has one fault of every kind the classic swarm
//! draws (and at least one fault where a scenario draws its own).

use async_patterns_sim::FaultKind;
use sim::CATALOGUE;

#[test]
fn seed_4_trace_of_every_scenario() {
    for s in CATALOGUE {
        let info = s.info();
        let plan = info.swarm.plan(4);
        let classic = [
            FaultKind::Partition,
            FaultKind::Hold,
            FaultKind::Crash,
            FaultKind::Loss,
        ];
        let kinds: Vec<FaultKind> = info.swarm.menu().iter().map(|(k, _)| *k).collect();
        if kinds == classic {
            for kind in classic {
                assert_eq!(plan.of(kind).count(), 1, "{plan:?}");
            }
        } else {
            assert!(!plan.faults.is_empty(), "{}: {plan:?}", info.name);
        }
        let out = s.run_plan(4, &plan).unwrap();
        assert!(
            out.violations.is_empty(),
            "{}: {:?}",
            info.name,
            out.violations
        );
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("sim_{}_seed_4", info.name), out.trace.join("\n"));
        });
    }
}
