//! When the two runs of a seed differ, the report is the first differing
//! event of each run (index, virtual time, both lines) with the lines
//! before it, the second run stops there, and `replay --twice` shows the
//! same.

// The bug under test: a HashMap's order in the trace.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_patterns_sim::{Ctx, FaultPlan, RunInfo, Scenario, Violation, run_checked};

/// How many events `Hashy` logged, over every run in this process.
static LOGGED: AtomicUsize = AtomicUsize::new(0);

/// Logs a tick every 10 ms for 10 s (1,000 events); at 50 ms it logs the
/// keys of a `HashMap` in iteration order, which a fresh `RandomState`
/// makes differ from run to run (the bug a `HashMap` in a trace is).
struct Hashy;

impl Scenario for Hashy {
    type Record = ();
    fn name(&self) -> &str {
        "hashy"
    }
    fn about(&self) -> &str {
        "a HashMap's order in the trace"
    }
    fn build(&self, ctx: &Ctx<()>, sim: &mut turmoil::Sim<'_>) {
        let ctx = ctx.clone();
        sim.client("c", async move {
            for tick in 0..1_000u32 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if tick == 4 {
                    let map: HashMap<u32, ()> = (0..32).map(|k| (k, ())).collect();
                    let keys: Vec<u32> = map.keys().copied().collect();
                    ctx.log(format!("keys {keys:?}"));
                } else {
                    ctx.log(format!("tick {tick}"));
                }
                LOGGED.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> {
        Vec::new()
    }
}

#[test]
fn the_first_differing_event_is_shown_and_the_second_run_stops_there() {
    // 32 keys in one of 32! orders: two runs agree by chance about never.
    let before = LOGGED.load(Ordering::Relaxed);
    let checked = run_checked(&Hashy, 0, &FaultPlan::default(), true).unwrap();
    let logged = LOGGED.load(Ordering::Relaxed) - before;
    assert!(!checked.deterministic());
    let d = checked.divergence.as_ref().unwrap();
    assert_eq!(d.index, 4);
    assert_eq!(d.at, Some(Duration::from_millis(50)));
    assert!(d.first.as_ref().unwrap().contains("keys ["), "{d:?}");
    assert!(d.second.as_ref().unwrap().contains("keys ["), "{d:?}");
    assert_ne!(d.first, d.second);
    assert_eq!(d.before.len(), 2);
    assert!(d.before[0].ends_with("tick 2") && d.before[1].ends_with("tick 3"));
    // The first run logged all 1,000; the second stopped at the fifth.
    assert!((1_000..1_010).contains(&logged), "{logged} events logged");
    let v = &checked.outcome.violations[0];
    assert_eq!(v.invariant, "deterministic");
    assert_eq!(v.at, Some(Duration::from_millis(50)));
    let text = v.to_string();
    assert!(
        text.starts_with(
            "deterministic: the two runs of the seed first differ at event 4 (virtual time 50ms):\n  both runs:  \"30.000 ms  tick 2\"\n              \"40.000 ms  tick 3\"\n  first run:  \"50.000 ms  keys ["
        ),
        "{text}"
    );
    assert!(
        text.contains("\n  second run: \"50.000 ms  keys ["),
        "{text}"
    );
    // The first run's whole trace is kept.
    assert_eq!(checked.outcome.trace.len(), 1_000);
}

#[test]
fn a_run_that_ends_early_or_goes_on_is_a_divergence_too() {
    use async_patterns_sim::Divergence;
    let lines = |n: usize| (0..n).map(|i| format!("e{i}")).collect::<Vec<_>>();
    let d = Divergence::between(&lines(5), &lines(3)).unwrap();
    assert_eq!(
        (d.index, d.first.as_deref(), d.second.as_deref()),
        (3, Some("e3"), None)
    );
    assert_eq!(d.before, ["e1", "e2"]);
    assert!(d.to_string().contains("second run: (its trace had ended)"));
    let d = Divergence::between(&lines(1), &lines(2)).unwrap();
    assert_eq!(
        (d.index, d.first, d.second.as_deref()),
        (1, None, Some("e1"))
    );
    assert_eq!(d.before, ["e0"]);
    assert_eq!(Divergence::between(&lines(2), &lines(2)), None);
    let d = Divergence::between(&lines(2), &["x".to_string()]).unwrap();
    assert_eq!((d.index, d.before.len()), (0, 0));
}

/// `replay --twice` in a child process (this test binary again, with the
/// command line in `SIM_ARGS`), its output read back.
#[test]
fn replay_twice_shows_the_divergence() {
    if let Ok(args) = std::env::var("SIM_ARGS") {
        let args = std::iter::once("sim")
            .chain(args.split(' '))
            .map(OsString::from);
        let code = async_patterns_sim::cli::App::new(&[&Hashy]).main_from(args);
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
    let sim = |args: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "replay_twice_shows_the_divergence",
                "--exact",
                "--nocapture",
            ])
            .env("SIM_ARGS", args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = sim("replay hashy --seed 3 --twice");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("VIOLATION: deterministic: the two runs of the seed first differ at event 4 (virtual time 50ms):"),
        "{text}"
    );
    assert!(text.contains("  first run:  \"50.000 ms  keys ["), "{text}");
    assert!(
        text.contains("FAIL: hashy seed 3, 1 violation(s)"),
        "{text}"
    );
    // Once, it cannot tell.
    let (code, text) = sim("replay hashy --seed 3");
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("ran twice"), "{text}");
    // Shrinking works on single runs, which pass: it says so, and fails.
    let out = std::env::temp_dir().join(format!("hashy-{}.json", std::process::id()));
    let (code, text) = sim(&format!("shrink hashy --seed 3 --out {}", out.display()));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("breaks no invariant in one run, but two runs differ")
            && text.contains("FAIL: hashy seed 3 is nondeterministic: nothing to shrink"),
        "{text}"
    );
    assert!(!out.exists(), "nothing saved");
    // A sweep's replay line for it runs it twice.
    let (code, text) = sim("sweep --seeds 1 --from 3");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("replay: sim replay hashy --seed 3 --twice --trace"),
        "{text}"
    );
}
