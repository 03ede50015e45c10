//! The recovery phase (see `src/liveness.rs`'s table): a server crashes
//! from 0.5 s to 1.5 s; the client's one request goes out at 0.1 s, so the
//! workload is over long before the heal; only the probe, run from the heal
//! by the harness, can show the service answers again.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use async_patterns_sim::{
    Ctx, Eventually, Fault, FaultKind, FaultPlan, RunInfo, Scenario, Targets, Violation, now, run,
};

const MS: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Seen {
    /// When a connection was answered, and by whom ("client" / "probe").
    answers: Vec<(Duration, &'static str)>,
}

struct Crashy {
    /// The server stays down once it has crashed (its restart binds
    /// nothing): a service that never recovers.
    stays_down: bool,
    /// A bound read from the record, if any (see `Eventually::bound_by`).
    bound: Option<Duration>,
}

/// The property's own bound (`within`), unless a test says otherwise.
const WITHIN: Duration = Duration::from_secs(1);

thread_local! {
    /// A test's own `within` for `Crashy` (this thread's runs only).
    static WITHIN_HERE: Cell<Duration> = const { Cell::new(WITHIN) };
}

impl Scenario for Crashy {
    type Record = Seen;
    fn name(&self) -> &str {
        "crashy"
    }
    fn about(&self) -> &str {
        "a server that crashes once"
    }
    fn targets(&self) -> Targets {
        Targets::new().host("server", "nothing")
    }
    fn eventually(&self) -> Vec<Eventually<Seen>> {
        let property = Eventually::new(
            "answers again",
            "a connection is answered after the crash",
            WITHIN_HERE.with(Cell::get),
            |seen: &Seen, heal| seen.answers.iter().any(|(at, _)| *at >= heal),
        );
        match self.bound {
            Some(bound) => vec![property.bound_by(move |_, _| bound)],
            None => vec![property],
        }
    }
    fn probe(&self, ctx: &Ctx<Seen>) -> Option<std::pin::Pin<Box<dyn Future<Output = ()>>>> {
        let ctx = ctx.clone();
        Some(Box::pin(async move {
            ctx.log("probe: started");
            loop {
                if turmoil::net::TcpStream::connect(("server", 80))
                    .await
                    .is_ok()
                {
                    ctx.log("probe: answered");
                    ctx.record().answers.push((now(), "probe"));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
    }
    fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
        let starts = Rc::new(Cell::new(0u32));
        let stays_down = self.stays_down;
        sim.host("server", move || {
            starts.set(starts.get() + 1);
            let restarted = starts.get() > 1;
            async move {
                if restarted && stays_down {
                    std::future::pending::<()>().await;
                }
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 80)).await?;
                loop {
                    let _ = listener.accept().await?;
                }
            }
        });
        let ctx = ctx.clone();
        sim.client("client", async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            turmoil::net::TcpStream::connect(("server", 80)).await?;
            ctx.record().answers.push((now(), "client"));
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, _: &Seen) -> Vec<Violation> {
        Vec::new()
    }
}

fn crash() -> FaultPlan {
    FaultPlan {
        faults: vec![Fault::new(FaultKind::Crash, "server", 500, 1_000)],
        ..FaultPlan::default()
    }
}

#[test]
fn a_service_that_recovers_passes_with_its_recovery_time() {
    let out = run(
        &Crashy {
            stays_down: false,
            bound: None,
        },
        0,
        &crash(),
    )
    .unwrap();
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    assert_eq!(out.recoveries.len(), 1);
    let r = &out.recoveries[0];
    assert_eq!(r.name, "answers again");
    let after = r.after.expect("it recovered");
    // The probe connects within a few ticks of the restart.
    assert!(after < 50 * MS, "{after:?}");
}

#[test]
fn a_service_that_never_recovers_fails_the_liveness_phase() {
    let out = run(
        &Crashy {
            stays_down: true,
            bound: None,
        },
        0,
        &crash(),
    )
    .unwrap();
    let got: Vec<String> = out.violations.iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]
            == "answers again: a connection is answered after the crash: not within 1s of the \
                last fault's end at 1.5s (watched for 1s, until 2.5s) (at 2.5s)",
        "{}",
        got[0]
    );
    assert_eq!(out.violations[0].at, Some(Duration::from_millis(2_500)));
    assert_eq!(out.recoveries[0].after, None);
}

#[test]
fn the_phase_outlives_the_workload_and_runs_the_probe_from_the_heal() {
    let out = run(
        &Crashy {
            stays_down: false,
            bound: None,
        },
        0,
        &crash(),
    )
    .unwrap();
    // The client's one request ended at 0.1 s; the run went on, and the
    // probe started at the heal (1.5 s) and was answered after it.
    let at = |what: &str| -> f64 {
        let line = out.trace.iter().find(|e| e.ends_with(what)).expect(what);
        line.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(at("probe: started"), 1_500.0, "{:?}", out.trace);
    assert!(at("probe: answered") >= 1_500.0, "{:?}", out.trace);
    // No faults: the phase starts at 0, the client's answer (0.1 s) holds.
    let calm = run(
        &Crashy {
            stays_down: false,
            bound: None,
        },
        0,
        &FaultPlan::default(),
    )
    .unwrap();
    assert!(calm.violations.is_empty(), "{:?}", calm.violations);
    assert_eq!(calm.recoveries[0].after.map(|d| d <= 150 * MS), Some(true));
    // A crash that outlasts the run: no phase, nothing judged.
    let forever = FaultPlan {
        faults: vec![Fault::new(FaultKind::Crash, "server", 500, u64::MAX)],
        ..FaultPlan::default()
    };
    let out = run(
        &Crashy {
            stays_down: true,
            bound: None,
        },
        0,
        &forever,
    )
    .unwrap();
    assert!(out.recoveries.is_empty());
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}

/// A bound read from the record tightens the property (a recovery in a
/// few milliseconds is late against 1 ms), and never loosens it past
/// `within` (an hour still watches 1 s).
#[test]
fn a_bound_from_the_record_tightens_and_never_loosens() {
    let tight = Crashy {
        stays_down: false,
        bound: Some(MS),
    };
    let out = run(&tight, 0, &crash()).unwrap();
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    let v = out.violations[0].to_string();
    assert!(v.contains("past its bound of 1ms"), "{v}");
    assert_eq!(out.violations[0].at, Some(Duration::from_millis(1_501)));
    let loose = Crashy {
        stays_down: true,
        bound: Some(Duration::from_secs(3_600)),
    };
    let out = run(&loose, 0, &crash()).unwrap();
    let v = out.violations[0].to_string();
    assert!(v.contains("not within 1s of the last fault's end"), "{v}");
}

/// Properties are read from the heal on, never before: one true only
/// before the heal (no answer yet, true until the client's at 0.1 s) never
/// holds; one true from the start holds at the heal itself (recovery 0).
#[test]
fn properties_are_read_from_the_heal_on() {
    struct Quiet {
        inner: Crashy,
        already: bool,
    }
    impl Scenario for Quiet {
        type Record = Seen;
        fn name(&self) -> &str {
            "quiet"
        }
        fn about(&self) -> &str {
            ""
        }
        fn targets(&self) -> Targets {
            self.inner.targets()
        }
        fn eventually(&self) -> Vec<Eventually<Seen>> {
            let already = self.already;
            vec![Eventually::new(
                "quiet",
                "no answer at all",
                Duration::from_secs(1),
                move |seen: &Seen, _| already || seen.answers.is_empty(),
            )]
        }
        fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
            self.inner.build(ctx, sim)
        }
        fn check(&self, _: &RunInfo, _: &Seen) -> Vec<Violation> {
            Vec::new()
        }
    }
    let inner = || Crashy {
        stays_down: false,
        bound: None,
    };
    let before = Quiet {
        inner: inner(),
        already: false,
    };
    let out = run(&before, 0, &crash()).unwrap();
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    assert_eq!(out.recoveries[0].after, None);
    let always = Quiet {
        inner: inner(),
        already: true,
    };
    let out = run(&always, 0, &crash()).unwrap();
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    assert_eq!(out.recoveries[0].after, Some(Duration::ZERO));
}

/// A property first holding exactly at its bound holds in time (it is read
/// at the phase's last instant); one tick tighter, it does not.
#[test]
fn a_property_holding_exactly_at_its_bound_is_in_time() {
    let up = Crashy {
        stays_down: false,
        bound: None,
    };
    let after = run(&up, 0, &crash()).unwrap().recoveries[0]
        .after
        .expect("it recovers");
    WITHIN_HERE.with(|w| w.set(after));
    let exact = run(&up, 0, &crash()).unwrap();
    WITHIN_HERE.with(|w| w.set(after - 2 * MS));
    let tighter = run(&up, 0, &crash()).unwrap();
    WITHIN_HERE.with(|w| w.set(WITHIN));
    assert!(exact.violations.is_empty(), "{:?}", exact.violations);
    assert_eq!(exact.recoveries[0].after, Some(after));
    assert_eq!(tighter.violations.len(), 1, "{:?}", tighter.violations);
}
