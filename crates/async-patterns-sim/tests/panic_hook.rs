//! The command line's panic hook (`run::quiet_panics_in_runs`): silent for
//! a panic inside a run (it becomes a violation with its message), the
//! hook as before for any other. Its own test binary: a panic hook is
//! process-wide.

use std::sync::atomic::{AtomicU32, Ordering};

use async_patterns_sim::run::quiet_panics_in_runs;
use async_patterns_sim::{Ctx, FaultPlan, RunInfo, Scenario, Violation, run};

static PRINTED: AtomicU32 = AtomicU32::new(0);

struct Panics;

impl Scenario for Panics {
    type Record = ();
    fn name(&self) -> &str {
        "panics"
    }
    fn about(&self) -> &str {
        ""
    }
    fn build(&self, _: &Ctx<()>, _: &mut turmoil::Sim<'_>) {
        panic!("a bug in build");
    }
    fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
        Vec::new()
    }
}

#[test]
fn panics_inside_runs_are_quiet_and_others_are_not() {
    std::panic::set_hook(Box::new(|_| {
        PRINTED.fetch_add(1, Ordering::SeqCst);
    }));
    quiet_panics_in_runs();
    let out = run(&Panics, 0, &FaultPlan::default()).unwrap();
    assert_eq!(out.violations[0].detail, "a bug in build");
    assert_eq!(
        PRINTED.load(Ordering::SeqCst),
        0,
        "a panic inside a run was printed"
    );
    // After the run, this thread is outside one again.
    let _ = std::panic::catch_unwind(|| panic!("outside"));
    assert_eq!(
        PRINTED.load(Ordering::SeqCst),
        1,
        "a panic outside a run was silenced"
    );
}
