//! Disk faults (see `src/disk.rs`): a host writes a synced line and an
//! unsynced one to its simulated disk, crashes, and reads back what
//! survived.

use std::io::Write;
use std::time::Duration;

use async_patterns_sim::shrink::{Keep, shrink_keeping};
use async_patterns_sim::{
    Ctx, Disk, DiskProfile, Fault, FaultKind, FaultPlan, RunInfo, Scenario, Swarm, Targets,
    Violation, run,
};
use turmoil::fs::shim::std::fs::{self, OpenOptions};

const LOG: &str = "/log";

#[derive(Default)]
struct Seen {
    /// What each start read back from the log ("" when it was not there).
    read: Vec<String>,
    /// The errors the writes met.
    errors: Vec<String>,
}

/// On its first start, writes a synced line and then an unsynced one; on
/// each start, reads the log back. Its check fails if a restart read back
/// less than the synced line.
struct Log {
    disk: Disk,
    /// Also fails when a restart reads back more than the synced line.
    strict: bool,
}

impl Log {
    fn lenient() -> Self {
        Log {
            disk: all_faults(),
            strict: false,
        }
    }

    fn strict() -> Self {
        Log {
            disk: all_faults(),
            strict: true,
        }
    }
}

impl Scenario for Log {
    type Record = Seen;
    fn name(&self) -> &str {
        "log"
    }
    fn about(&self) -> &str {
        "a synced line and an unsynced one, a crash"
    }
    fn targets(&self) -> Targets {
        Targets::new()
            .host("store", "its synced writes")
            .disk(self.disk.clone())
    }
    fn build(&self, ctx: &Ctx<Seen>, sim: &mut turmoil::Sim<'_>) {
        let c = ctx.clone();
        sim.host("store", move || {
            let ctx = c.clone();
            async move {
                let text = fs::read(LOG)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let first = ctx.record().read.is_empty();
                ctx.log(format!("store: read {text:?}"));
                ctx.record().read.push(text);
                if first {
                    let written = (|| -> std::io::Result<()> {
                        let mut f = OpenOptions::new().append(true).create(true).open(LOG)?;
                        f.write_all(b"synced line\n")?;
                        f.sync_all()?;
                        fs::sync_dir("/")?;
                        f.write_all(b"an unsynced line that is long enough to tear\n")?;
                        Ok(())
                    })();
                    if let Err(e) = written {
                        ctx.log(format!("store: error {e}"));
                        ctx.record().errors.push(e.to_string());
                    }
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        sim.client("clock", async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        });
    }
    fn check(&self, _: &RunInfo, seen: &Seen) -> Vec<Violation> {
        let restarts = || seen.read.iter().skip(1);
        let mut v = Vec::new();
        if seen.errors.is_empty() && restarts().any(|r| !r.starts_with("synced line\n")) {
            v.push(Violation::new(
                "synced survives",
                format!("{:?}", seen.read),
            ));
        }
        if self.strict && restarts().any(|r| r.len() > "synced line\n".len()) {
            v.push(Violation::new(
                "unsynced is lost",
                format!("{:?}", seen.read),
            ));
        }
        v
    }
}

fn all_faults() -> Disk {
    Disk::new("a log").io_errors().early_syncs().torn_writes()
}

fn crash_at_100() -> Fault {
    Fault::new(FaultKind::Crash, "store", 100, 50)
}

/// What each start read back, and the errors met, under `plan`.
fn reads(scenario: &Log, seed: u64, plan: &FaultPlan) -> (Vec<String>, Vec<String>) {
    let out = run(scenario, seed, plan).unwrap();
    let field = |tag: &str| -> Vec<String> {
        out.trace
            .iter()
            .filter_map(|e| e.split_once(tag).map(|(_, t)| t.to_string()))
            .collect()
    };
    (field("store: read "), field("store: error "))
}

fn with_disk(disk: Option<DiskProfile>) -> FaultPlan {
    FaultPlan {
        faults: vec![crash_at_100()],
        disk,
        ..FaultPlan::default()
    }
}

const SYNCED: &str = "\"synced line\\n\"";
const BOTH: &str = "\"synced line\\nan unsynced line that is long enough to tear\\n\"";

#[test]
fn a_crash_keeps_what_was_synced_and_drops_the_rest() {
    let (read, errors) = reads(&Log::lenient(), 1, &with_disk(None));
    assert_eq!(read, ["\"\"", SYNCED]);
    assert!(errors.is_empty());
    // Without the crash, nothing is read back but the empty start.
    let (read, _) = reads(&Log::lenient(), 1, &FaultPlan::default());
    assert_eq!(read, ["\"\""]);
}

#[test]
fn early_syncs_keep_unsynced_writes_and_torn_writes_keep_a_prefix() {
    let early = DiskProfile {
        early_sync_percent: 100,
        ..DiskProfile::default()
    };
    let (read, _) = reads(&Log::lenient(), 1, &with_disk(Some(early)));
    assert_eq!(read[1], BOTH);
    let torn = DiskProfile {
        torn_writes: true,
        ..DiskProfile::default()
    };
    let mut partial = 0;
    for seed in 0..30 {
        let (read, _) = reads(&Log::lenient(), seed, &with_disk(Some(torn.clone())));
        let back = &read[1];
        assert!(
            back.starts_with(SYNCED.trim_end_matches('"')),
            "seed {seed}: {back}"
        );
        if back.len() > SYNCED.len() && back.len() < BOTH.len() {
            partial += 1;
        }
    }
    assert!(partial > 0, "no seed tore the unsynced write");
}

#[test]
fn corrupt_reads_change_what_a_restart_reads() {
    let scenario = Log {
        disk: all_faults().corrupt_reads(),
        strict: false,
    };
    let corrupt = DiskProfile {
        corrupt_read_permille: 1_000,
        ..DiskProfile::default()
    };
    let (read, errors) = reads(&scenario, 1, &with_disk(Some(corrupt)));
    assert!(errors.is_empty());
    assert_ne!(read[1], SYNCED, "the synced line read back intact");
    let out = run(
        &scenario,
        1,
        &with_disk(Some(DiskProfile {
            corrupt_read_permille: 1_000,
            ..DiskProfile::default()
        })),
    )
    .unwrap();
    assert_eq!(out.violations[0].invariant, "synced survives");
}

#[test]
fn io_errors_fail_the_writes() {
    let errors = DiskProfile {
        io_error_permille: 1_000,
        ..DiskProfile::default()
    };
    let (read, errors) = reads(&Log::lenient(), 1, &with_disk(Some(errors)));
    assert_eq!(errors.len(), 1, "{read:?}");
    // The first write fails: nothing was written, nothing to read back.
    assert_eq!(errors[0], "I/O error");
    assert_eq!(read, ["\"\"", "\"\""]);
}

#[test]
fn a_shrink_keeps_only_the_disk_fault_the_failure_needs() {
    let plan = FaultPlan {
        faults: vec![
            crash_at_100(),
            Fault::new(FaultKind::Crash, "store", 300, 20),
        ],
        disk: Some(DiskProfile {
            early_sync_percent: 100,
            torn_writes: true,
            ..DiskProfile::default()
        }),
        ..FaultPlan::default()
    };
    let small = shrink_keeping(&Log::strict(), 2, &plan, &Keep::Original).unwrap();
    assert_eq!(
        small.plan.disk,
        Some(DiskProfile {
            early_sync_percent: 100,
            ..DiskProfile::default()
        })
    );
    assert_eq!(small.plan.faults.len(), 1);
    // Without the disk profile the same crash keeps only the synced line.
    let (read, _) = reads(&Log::strict(), 2, &with_disk(None));
    assert_eq!(read[1], SYNCED);
}

#[test]
fn plans_name_only_the_disk_faults_the_scenario_declares() {
    let targets = Targets::new()
        .host("store", "x")
        .disk(Disk::new("a log").io_errors());
    let check = |json: &str, targets: &Targets| {
        let plan: FaultPlan = serde_json::from_str(json).unwrap();
        plan.validate(targets, &[]).map_err(|e| e.to_string())
    };
    assert_eq!(
        check(
            r#"{"faults": [], "disk": {"io_error_permille": 1000}}"#,
            &targets
        ),
        Ok(())
    );
    assert_eq!(check(r#"{"faults": [], "disk": {}}"#, &targets), Ok(()));
    assert_eq!(
        check(
            r#"{"faults": [], "disk": {"io_error_permille": 1001}}"#,
            &targets
        ),
        Err("disk: io_error_permille 1001 is above 1000".to_string())
    );
    assert_eq!(
        check(r#"{"faults": [], "disk": {"torn_writes": true}}"#, &targets),
        Err(
            "disk: torn writes are not among the faults the scenario's disk declares (io errors)"
                .to_string()
        )
    );
    assert_eq!(
        check(
            r#"{"faults": [], "disk": {"early_sync_percent": 10}}"#,
            &Targets::new().host("store", "x")
        ),
        Err("disk: the scenario declares no disk".to_string())
    );
    let err =
        serde_json::from_str::<FaultPlan>(r#"{"faults": [], "disk": {"fsync": 1}}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `fsync`"), "{err}");
}

#[test]
fn the_swarm_draws_a_disk_profile_for_half_the_seeds_from_its_own_stream() {
    let targets = Targets::new()
        .host("store", "x")
        .disk(Disk::new("a log").io_errors().torn_writes());
    let with = Swarm::over(&targets);
    let without = Swarm::over(&Targets::new().host("store", "x"));
    let mut drawn = 0;
    for seed in 0..400 {
        let (p, q) = (with.plan(seed), without.plan(seed));
        assert_eq!(p.faults, q.faults, "seed {seed}");
        assert_eq!(q.disk, None);
        if let Some(d) = &p.disk {
            drawn += 1;
            assert!(!d.is_none());
            assert_eq!((d.early_sync_percent, d.corrupt_read_permille), (0, 0));
            p.validate(&targets, &[]).unwrap();
        }
    }
    // Half the seeds draw one; of those, 3 in 4 turn on at least one of
    // the two faults declared.
    assert!((120..=180).contains(&drawn), "{drawn}");
    // A fault the disk does not declare is never drawn.
    let io_only = Targets::new()
        .host("store", "x")
        .disk(Disk::new("a log").io_errors());
    let swarm = Swarm::over(&io_only);
    let profiles: Vec<DiskProfile> = (0..200).filter_map(|s| swarm.plan(s).disk).collect();
    assert!(profiles.len() > 30);
    assert!(
        profiles
            .iter()
            .all(|d| d.io_error_permille > 0 && !d.torn_writes)
    );
}

#[test]
fn a_profile_writes_only_the_faults_it_has_and_a_disk_says_what_it_allows() {
    let profile = DiskProfile {
        io_error_permille: 5,
        ..DiskProfile::default()
    };
    assert_eq!(
        serde_json::to_string(&profile).unwrap(),
        r#"{"io_error_permille":5}"#
    );
    let all = DiskProfile {
        io_error_permille: 1,
        corrupt_read_permille: 2,
        early_sync_percent: 3,
        torn_writes: true,
    };
    assert_eq!(
        serde_json::to_string(&all).unwrap(),
        r#"{"io_error_permille":1,"corrupt_read_permille":2,"early_sync_percent":3,"torn_writes":true}"#
    );
    assert_eq!(
        all.to_string(),
        "io errors 1‰, corrupt reads 2‰, early syncs 3%, torn writes"
    );
    assert_eq!(DiskProfile::default().to_string(), "no disk faults");
    assert!(DiskProfile::default().is_none() && !profile.is_none());
    let disk = all_faults().corrupt_reads();
    assert_eq!(disk.about(), "a log");
    assert_eq!(
        disk.allows(),
        ["io errors", "corrupt reads", "early syncs", "torn writes"]
    );
    assert!(Disk::new("x").allows().is_empty());
}

#[test]
fn the_shrinkers_disk_moves_turn_off_one_fault_each() {
    use async_patterns_sim::moves::Move;
    let all = DiskProfile {
        io_error_permille: 1,
        corrupt_read_permille: 2,
        early_sync_percent: 3,
        torn_writes: true,
    };
    let plan = FaultPlan {
        disk: Some(all.clone()),
        ..FaultPlan::default()
    };
    let off = |k: usize, p: &FaultPlan| Move::DiskOff(k).apply(p).disk;
    let expect = [
        DiskProfile {
            io_error_permille: 0,
            ..all.clone()
        },
        DiskProfile {
            corrupt_read_permille: 0,
            ..all.clone()
        },
        DiskProfile {
            early_sync_percent: 0,
            ..all.clone()
        },
        DiskProfile {
            torn_writes: false,
            ..all.clone()
        },
    ];
    for (k, e) in expect.into_iter().enumerate() {
        assert_eq!(off(k, &plan), Some(e.clone()), "fault {k}");
        // Off already: nothing changes.
        let again = FaultPlan {
            disk: Some(e.clone()),
            ..FaultPlan::default()
        };
        assert_eq!(off(k, &again), Some(e), "fault {k} again");
    }
    assert_eq!(off(4, &plan), Some(all));
}

#[test]
fn each_disk_fault_must_be_declared() {
    let none = Targets::new().host("store", "x").disk(Disk::new("a log"));
    for (json, fault) in [
        (r#"{"io_error_permille": 1}"#, "io errors"),
        (r#"{"corrupt_read_permille": 1}"#, "corrupt reads"),
        (r#"{"early_sync_percent": 1}"#, "early syncs"),
        (r#"{"torn_writes": true}"#, "torn writes"),
    ] {
        let plan: FaultPlan =
            serde_json::from_str(&format!(r#"{{"faults": [], "disk": {json}}}"#)).unwrap();
        assert_eq!(
            plan.validate(&none, &[]).unwrap_err().to_string(),
            format!("disk: {fault} are not among the faults the scenario's disk declares (none)")
        );
    }
    for (json, says) in [
        (
            r#"{"corrupt_read_permille": 1001}"#,
            "corrupt_read_permille 1001 is above 1000",
        ),
        (
            r#"{"early_sync_percent": 101}"#,
            "early_sync_percent 101 is above 100",
        ),
    ] {
        let plan: FaultPlan =
            serde_json::from_str(&format!(r#"{{"faults": [], "disk": {json}}}"#)).unwrap();
        let all = Targets::new()
            .host("store", "x")
            .disk(all_faults().corrupt_reads());
        assert_eq!(
            plan.validate(&all, &[]).unwrap_err().to_string(),
            format!("disk: {says}")
        );
    }
}
